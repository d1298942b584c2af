"""The engine's cadence: what it keeps between ticks so that a tick costs little.

:class:`Cadence` is the part of :class:`~mailfleet.engine.runtime.Engine` that keeps
the mailboxes (:class:`~mailfleet.engine.snapshot.FleetCache`) and their usage
(:class:`~mailfleet.engine.ledger.UsageLedger`) current, knows which mailboxes may
send now (the planner's ready instants), and when a step next falls due. It is also
where the rest of the process meets the engine's limits: :meth:`Cadence.note_send`
and :meth:`Cadence.mailbox_usage`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.clock import Clock
from mailfleet.engine.ledger import HORIZON, LedgerSend, UsageLedger
from mailfleet.engine.refusal import resume_expired
from mailfleet.engine.snapshot import FleetCache, usage_of
from mailfleet.limits import MailboxUsage
from mailfleet.planner import HELD, SendingWindow, local_day
from mailfleet.store import Campaign, Database, Mailbox, Send, SendKind, SendStatus
from mailfleet.store import repository as repo
from mailfleet.store import warmup as warmup_store
from mailfleet.store.repository import COUNTED, CountedSend

RESYNC = timedelta(hours=1)
"""Clock time between two full re-loads of the usage ledger from the store."""
FOLLOW_UPS_LOOKED_AHEAD = 50
"""Future follow-ups read to find the next instant one can go (its mailbox ready by then)."""
DUE_RECHECK = timedelta(minutes=5)
"""Clock time the engine trusts its cached next due instant (see ``Cadence._next_due``)."""


class Cadence:
    """Mailboxes, usage, ready instants and the next due step, kept between ticks."""

    db: Database
    clock: Clock
    ledger: UsageLedger
    mailboxes: FleetCache
    _resync: timedelta
    _high_water: int
    _ready: dict[int, datetime]
    _future: tuple[datetime | None, datetime]

    async def load_usage(self) -> None:
        """Load the running campaigns' mailboxes and re-load the usage ledger from the store.

        The engine does both on its own when needed; calling this at start-up moves that
        work out of the first tick, and lets :meth:`mailbox_usage` answer at once.
        """
        now = self.clock.now()
        async with self.db.session() as session:
            campaigns = await repo.active_campaigns(session)
            await self.mailboxes.refresh(session, {c.workspace_id for c in campaigns})
            rows = await repo.counted_sends_since(session, now - HORIZON)
            top = await session.scalar(select(func.max(Send.id)))
        self.ledger.load(rows, now)
        self._high_water = max(self._high_water, int(top or 0))
        self._ready.clear()

    def note_send(
        self,
        mailbox_id: int,
        at: datetime,
        kind: SendKind,
        recipients: int = 1,
        *,
        send_id: int | None = None,
    ) -> None:
        """Count a send made outside the cold path (warmup) against the mailbox's limits.

        Call it once the server accepted the message. With ``send_id`` (the send's row,
        if it has one) the ledger counts it once however often it is noted or read back
        from the store; without it, note only sends that have no row in the store.
        """
        if recipients < 1:
            raise ValueError(f"note_send: {recipients} recipients; a send has at least one")
        box = self.mailboxes.by_id.get(mailbox_id)
        self.ledger.record(
            LedgerSend(
                mailbox_id,
                at,
                kind,
                recipients,
                send_id,
                workspace_id=box.workspace_id if box is not None else None,
                accepted=True,
            )
        )
        if kind != SendKind.COLD:
            self._warmed(mailbox_id)

    def _warmed(self, mailbox_id: int) -> None:
        """A warmup send of ``mailbox_id`` was counted: if the mailbox waited for warmup
        (its ratio), the planner may admit it again. A wait with a known end (gap, pace,
        a full day) is left alone: more usage can only make it longer, and the planner
        looks again when it ends."""
        if self._ready.get(mailbox_id) == HELD:
            del self._ready[mailbox_id]

    def mailbox_usage(self, mailbox_id: int, now: datetime) -> MailboxUsage:
        """What ``mailbox_id`` has used at ``now`` (rolling counts, per minute, today, gap).

        The same figures the planner admits cold sends with; the local day is the
        mailbox's. Raises :class:`LookupError` before the engine has loaded its
        mailboxes and usage (:meth:`load_usage` and a tick), or for an unknown mailbox.
        """
        box = self.mailboxes.by_id.get(mailbox_id)
        if self.ledger.loaded_at is None or box is None:
            raise LookupError(
                f"mailbox {mailbox_id}: the engine has not loaded it yet "
                "(await Engine.load_usage() and run a tick first)"
            )
        return self.usage_for(box, now)

    def usage_for(self, box: Mailbox, now: datetime) -> MailboxUsage:
        """:meth:`mailbox_usage` of a mailbox row the caller holds (any workspace's).

        The ledger must be loaded (:meth:`load_usage`, or :meth:`sync_usage`).
        """
        day_start = local_day(now, box.timezone)[1] - timedelta(days=1)
        counts = self.ledger.usage(box.id, now, day_start)
        return usage_of(counts, self.ledger.cold_by_recipient_domain(box.id, day_start))

    async def sync_usage(self, now: datetime) -> None:
        """Bring the usage ledger up to date with the store (loading it the first time)."""
        async with self.db.session() as session:
            await self._sync_usage(session, now)

    async def _resume_expired(
        self, session: AsyncSession, workspace_ids: set[int], now: datetime
    ) -> set[int]:
        """Load the mailboxes if they changed, end the holds whose time has come; return
        the ids of the mailboxes that changed."""
        changed = await self.mailboxes.refresh(session, workspace_ids)
        changed |= self.mailboxes.set_cap_factors(await warmup_store.reduced_cold_caps(session))
        expired = [mailbox_id for mailbox_id, until in self.mailboxes.expiring if until <= now]
        if not expired:
            return changed
        attached = (await session.scalars(select(Mailbox).where(Mailbox.id.in_(expired)))).all()
        resume_expired(session, attached, now)
        await session.flush()
        return changed | await self.mailboxes.refresh(session, workspace_ids)

    async def _sync_usage(self, session: AsyncSession, now: datetime) -> None:
        """Bring the ledger up to date: all of it every ``resync``, else the new send rows."""
        ledger = self.ledger
        if ledger.loaded_at is None or now < ledger.loaded_at:
            rows = await repo.counted_sends_since(session, now - HORIZON)
            top = await session.scalar(select(func.max(Send.id)))
            ledger.load(rows, now)
            self._high_water = max(self._high_water, int(top or 0))
            self._ready.clear()
            return
        if now - ledger.loaded_at >= self._resync:
            # The periodic re-sync: only the sends the ledger holds differently from the
            # store are read in full (the same counts as a re-load, at a fraction of it).
            top = await session.scalar(select(func.max(Send.id)))
            keys = await repo.counted_send_keys_since(session, now - HORIZON)
            changed = ledger.stale(keys, now)
            for counted in await repo.counted_sends_by_id(session, changed):
                ledger.record(_ledger_send(counted))
            self._high_water = max(self._high_water, int(top or 0))
            self._ready.clear()
            return
        added = await session.execute(
            select(
                Send.id,
                Send.mailbox_id,
                Send.claimed_at,
                Send.kind,
                Send.recipients,
                Send.campaign_id,
                Send.workspace_id,
                Send.recipient_domain,
                Send.status,
            ).where(Send.id > self._high_water)
        )
        for row in added.all():
            self._high_water = max(self._high_water, int(row[0]))
            claimed = row[2]
            if row[8] not in COUNTED or claimed is None or claimed < now - HORIZON:
                continue
            ledger.record(
                LedgerSend(
                    mailbox_id=int(row[1]),
                    at=claimed,
                    kind=str(row[3]),
                    recipients=int(row[4] or 1),
                    send_id=int(row[0]),
                    campaign_id=row[5],
                    workspace_id=int(row[6]),
                    recipient_domain=row[7] or "",
                    accepted=row[8] == SendStatus.SENT,
                )
            )
            if row[3] != SendKind.COLD:
                self._warmed(int(row[1]))

    def _ready_mailboxes(self, now: datetime) -> list[int]:
        """Mailboxes the planner may consider now (the others said when to ask again)."""
        ready: list[int] = []
        waits = self._ready
        for mailbox_id in self.mailboxes.ids:
            until = waits.get(mailbox_id)
            if until is None:
                ready.append(mailbox_id)
            elif until <= now:
                del waits[mailbox_id]
                ready.append(mailbox_id)
        return ready

    @staticmethod
    def _all_windows_shut(campaigns: Sequence[Campaign], now: datetime) -> datetime | None:
        """When the first campaign window opens, if every one is shut now (else None).

        Campaigns that follow each lead's timezone are always worth a look.
        """
        opens: list[datetime] = []
        for c in campaigns:
            if c.use_lead_timezone:
                return None
            window = SendingWindow(
                timezone=c.timezone,
                days=frozenset(c.window_days),
                start_minute=c.window_start_minute,
                end_minute=c.window_end_minute,
            )
            if window.open_span(now) is not None:
                return None
            opens.append(window.next_open(now))
        return min(opens, default=None)

    async def _next_due(
        self, session: AsyncSession, campaign_ids: list[int], steps: int, now: datetime
    ) -> datetime | None:
        """The next instant a step falls due that could go: a first step, or a follow-up
        whose thread's mailbox is ready by then.

        Kept for :data:`DUE_RECHECK` of clock time (or until it passes): the engine lowers
        it itself when it moves an enrollment (:meth:`_due_moved`), and a step that
        another process makes due later than that is seen at the next re-check.
        """
        cached, until = self._future
        if now < until and (cached is None or cached > now):
            return cached
        best = await self._query_next_due(session, campaign_ids, steps, now)
        self._future = (best, now + DUE_RECHECK)
        return best

    def _due_moved(self, due: datetime | None) -> None:
        """An enrollment the engine moved falls due at ``due``: wake for it if sooner."""
        cached, until = self._future
        if due is not None and (cached is None or due < cached):
            self._future = (due, until)

    async def _query_next_due(
        self, session: AsyncSession, campaign_ids: list[int], steps: int, now: datetime
    ) -> datetime | None:
        best = await repo.next_first_step_due(session, campaign_ids, now)
        for due, mailbox_id in await repo.next_follow_ups(
            session, campaign_ids, now, steps, FOLLOW_UPS_LOOKED_AHEAD
        ):
            if best is not None and due >= best:
                break
            ready = self._ready.get(mailbox_id, due) if mailbox_id is not None else due
            at = max(due, ready)
            if best is None or at < best:
                best = at
        return best


def _ledger_send(row: CountedSend) -> LedgerSend:
    """A counted send of the store as the ledger keeps it."""
    return LedgerSend(
        mailbox_id=row.mailbox_id,
        at=row.claimed_at,
        kind=row.kind,
        recipients=row.recipients,
        send_id=row.id,
        campaign_id=row.campaign_id,
        workspace_id=row.workspace_id,
        recipient_domain=row.recipient_domain or "",
        accepted=row.status == SendStatus.SENT,
    )
