"""The warmup sender: each tick, the warmup messages due, through the cold path's transport.

Contract with :class:`mailfleet.engine.runtime.Engine` (which owns the loop):

- the engine builds the sender with ``usage=`` its ledger's answer (what a mailbox
  used, from memory); without it the sender counts usage in the store;
- ``report = await warmup_sender.tick(now)`` at the start of every engine tick, then
  ``engine.note_send(...)`` for each :class:`WarmupSent` of ``report.sent`` so the
  engine's usage ledger counts them;
- ``warmup_sender.next_due(now)`` — when the next warmup send (or reply) is due,
  for the engine's wake-up.

Per mailbox whose warmup is on and not paused: the day's plan
(:func:`mailfleet.warmup.plan_day`, its size raised to the warmup ratio × the cold
cap that day), minus the slots already claimed, gives what is due; replies the peers
decided on (:mod:`mailfleet.engine.warmup_receiver`) are due too. Every send passes
:func:`mailfleet.limits.admit` with the mailbox's usage and provider limits
(``cold=False``), at most one per mailbox per tick (the gap between any two sends
would refuse a second), and walks the same durable states as a cold send: ``claimed`` (with its
Message-ID, committed before any connection) → ``submitting`` → ``sent`` |
``deferred`` | ``failed`` | ``unknown``. A deferred slot is freed and retried; the
mailbox backs off or pauses as :mod:`mailfleet.engine.reaction` says, exactly as
for cold mail.

What a tick costs: the sender keeps the mailboxes, their settings, each day's plan
and its claimed slots in memory, and re-reads the rows only when their fingerprint
(:func:`mailfleet.store.warmup.fingerprint`: counts and revisions) changes. A tick
looks only at the mailboxes whose next slot, backoff or retry has come, and at the
replies once one is due; every ``FULL_EVERY`` it looks at all of them again (a cold
send may have raised a day's target, a campaign may have started). It assumes it is
the only warmup sender of the store, as the engine is the only cold one.

The cold-cap factors are updated at each tick from the peers' placement
observations (:func:`mailfleet.warmup.next_cold_cap_factor`); a change is an
event ``warmup.cold_cap``. The planner applies a factor with
:func:`mailfleet.engine.snapshot.warmed_policy`; :meth:`WarmupSender.cold_cap_factors`
and :func:`mailfleet.store.warmup.cold_cap_factors` read them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.clock import Clock
from mailfleet.content.mime import reply_subject, thread_references
from mailfleet.engine.compose import Composer
from mailfleet.engine.credentials import CredentialCache
from mailfleet.engine.reaction import react
from mailfleet.engine.refusal import stop_mailbox
from mailfleet.engine.snapshot import usage_of, warmed_policy
from mailfleet.engine.submitter import PooledSubmitter
from mailfleet.limits import (
    FleetPolicy,
    MailboxPolicy,
    MailboxUsage,
    admit,
    cold_cap_for_day,
    floor_gap,
)
from mailfleet.planner import local_day
from mailfleet.providers.outcomes import OutcomeKind
from mailfleet.services import sending
from mailfleet.store import (
    Database,
    Mailbox,
    MailboxStatus,
    Send,
    SendKind,
    SendStatus,
)
from mailfleet.store import repository as repo
from mailfleet.store import warmup as wstore
from mailfleet.store.models import WarmupMessage, WarmupSettings, WarmupThread
from mailfleet.transport.smtp import Delivery, SmtpPool, SubmitResult
from mailfleet.transport.submitter import Submitter
from mailfleet.warmup import (
    Peer,
    PlannedWarmup,
    continuation,
    daily_target,
    next_cold_cap_factor,
    opening,
    plan_day,
    topic_for,
    warmup_message,
)
from mailfleet.warmup.config import WarmupConfig

__all__ = ["UsageSource", "WarmupConfig", "WarmupSender", "WarmupSent", "WarmupTickReport"]

log = logging.getLogger(__name__)
PLACEMENT_HISTORY = timedelta(days=28)
CAP_EVERY = timedelta(minutes=30)
"""How often placement is re-read to cut or restore cold caps (they move by the day)."""
FULL_EVERY = timedelta(minutes=5)
"""Longest wait between two full passes, though nothing was due: cold sends may have
raised a day's target, peers may have planned replies."""
DEFER_BACKOFF = timedelta(minutes=5)


class WarmupSent(NamedTuple):
    """A warmup message the server accepted, counted at its claim time (as the store counts it)."""

    mailbox_id: int
    at: datetime
    recipients: int
    send_id: int


@dataclass(slots=True)
class WarmupTickReport:
    """What one warmup tick did; ``sent`` lists each accepted send."""

    at: datetime
    sent: list[WarmupSent] = field(default_factory=list)
    claimed: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    held: int = 0  # due but refused by admission this tick
    cap_changes: list[tuple[int, float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


UsageSource = Callable[[Mailbox, datetime], MailboxUsage]
"""What a mailbox has used at an instant; the engine's ledger answers it from memory."""


@dataclass(slots=True)
class _Box:
    """What the sender keeps about one mailbox between ticks (re-built when rows change)."""

    mailbox: Mailbox
    settings: WarmupSettings
    look_at: datetime | None = None  # when its plan next needs a look (None: at the next tick)
    plan_key: tuple[object, ...] | None = None
    plan: list[PlannedWarmup] = field(default_factory=list)
    done_day: date | None = None  # the local day ``done`` holds the claimed slots of
    done: set[int] = field(default_factory=set)
    running: bool = False  # warmup not paused and the mailbox active (as of the rows read)

    def __post_init__(self) -> None:
        self.running = not self.settings.paused and self.mailbox.status == MailboxStatus.ACTIVE


@dataclass(slots=True)
class _Due:
    sender: Mailbox
    peer: Mailbox
    planned: PlannedWarmup | None  # None: a reply
    day: date | None
    answering: WarmupMessage | None = None


@dataclass(slots=True)
class _Claim:
    send_id: int
    mailbox: Mailbox
    recipient: str
    raw: bytes
    slot: int | None


def _peer(box: Mailbox, row: WarmupSettings | None) -> Peer:
    return Peer(
        mailbox_id=box.id,
        address=box.address,
        workspace_id=box.workspace_id,
        provider=box.provider,
        tenant=box.tenant,
        shared_pool=bool(row.shared_pool) if row is not None else False,
    )


class WarmupSender:
    """Sends the fleet's warmup on the engine's clock; see the module docstring."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        credentials: CredentialCache,
        pool: SmtpPool,
        *,
        config: WarmupConfig | None = None,
        fleet: FleetPolicy | None = None,
        rng: random.Random | None = None,
        usage: UsageSource | None = None,
        submitter: Submitter | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.credentials = credentials
        self.pool = pool
        self.submitter: Submitter = submitter or PooledSubmitter(credentials, pool)
        self.config = config or WarmupConfig()
        self.fleet = fleet or FleetPolicy()
        self.usage = usage
        self._random = rng or random.Random(self.config.seed)
        self._wake: datetime | None = None
        self._backoff: dict[int, datetime] = {}
        self._full_at: datetime | None = None  # the last full pass
        self._caps_at: datetime | None = None  # the last cold-cap update
        self._fingerprint: tuple[int, ...] | None = None
        self._boxes: dict[int, _Box] = {}
        self._by_id: dict[int, Mailbox] = {}
        self._pool: list[Peer] = []
        self._pool_key = 0
        self._in_campaign: set[int] = set()
        self._reply_at: datetime | None = None  # the next reply due (None: read it again)

    def next_due(self, now: datetime) -> datetime | None:
        """When a warmup send is next due (``now`` if already), as of the last tick."""
        if self._wake is None:
            return None
        return max(self._wake, now)

    async def cold_cap_factors(self, mailbox_ids: list[int]) -> dict[int, float]:
        """The current cold-cap factor of each mailbox (1.0: not cut)."""
        async with self.db.session() as session:
            return await wstore.cold_cap_factors(session, mailbox_ids)

    async def tick(self, now: datetime) -> WarmupTickReport:
        """Send the warmup messages due at ``now``; see the module docstring."""
        report = WarmupTickReport(at=now)
        last = self._full_at
        full = last is None or not last <= now < last + FULL_EVERY
        if not full and (self._wake is None or now < self._wake):
            return report  # nothing due since the last pass
        async with self.db.session() as session:
            if await self._refresh(session, now):
                full = True  # a mailbox or its settings changed: look at every one again
            if not self._boxes:
                self._wake = None
                return report
            caps_at = self._caps_at
            if caps_at is None or not caps_at <= now < caps_at + CAP_EVERY:
                await self._update_caps(session, now, report)
                self._caps_at = now
            if full:
                self._full_at = now
                await self._read_campaigns(session)
                self._reply_at = None
                for entry in self._boxes.values():
                    entry.look_at = None
            looked = [
                e
                for e in self._boxes.values()
                if e.running and (e.look_at is None or e.look_at <= now)
            ]
            await self._read_done(session, looked, now)
            usage = await self._usage_of(session, [e.mailbox for e in looked], now)
            due: list[_Due] = []
            busy: set[int] = set()
            for entry in looked:
                entry.look_at = self._look(entry, now, usage[entry.mailbox.id], due, report)
                if due and due[-1].sender is entry.mailbox:
                    busy.add(entry.mailbox.id)
            if self._reply_at is None or self._reply_at <= now:
                await self._replies(session, now, busy, due, report)
            claims = [await self._claim(session, item, now) for item in due]
        wake = [e.look_at for e in self._boxes.values() if e.running and e.look_at is not None]
        if self._reply_at is not None:
            wake.append(self._reply_at)
        self._wake = min(wake, default=None)
        report.claimed = len(claims)
        if not claims:
            return report
        results = await asyncio.gather(*(self._deliver(c) for c in claims))
        outcomes = [(c, r) for c, r in zip(claims, results, strict=True) if r is not None]
        await self._record(outcomes, now, report)
        return report

    async def _refresh(self, session: AsyncSession, now: datetime) -> bool:
        """Re-read the mailboxes and their settings if any row changed; True when they did."""
        found = await wstore.fingerprint(session)
        if found == self._fingerprint:
            return False
        boxes = list((await session.scalars(select(Mailbox).order_by(Mailbox.id))).all())
        enabled = [b for b in boxes if b.warmup_enabled is not False]
        settings = await wstore.settings_of(session, enabled, now)  # creates what is missing
        before = self._boxes
        self._boxes = {}
        for box in enabled:
            entry = _Box(box, settings[box.id])
            kept = before.get(box.id)
            if kept is not None:  # the claimed slots and the plan stay true
                entry.done_day, entry.done = kept.done_day, kept.done
                entry.plan_key, entry.plan = kept.plan_key, kept.plan
            self._boxes[box.id] = entry
        self._by_id = {b.id: b for b in boxes}
        # A peer must be able to act on what it receives: read over IMAP, still connected.
        self._pool = [
            _peer(e.mailbox, e.settings)
            for e in self._boxes.values()
            if not e.settings.paused
            and e.mailbox.status != MailboxStatus.DISCONNECTED
            and e.mailbox.imap_host
        ]
        self._pool_key = hash(tuple(self._pool))
        self._fingerprint = await wstore.fingerprint(session)
        return True

    async def _read_campaigns(self, session: AsyncSession) -> None:
        """Which mailboxes a running campaign sends from (their warmup keeps up with cold)."""
        boxes = [entry.mailbox for entry in self._boxes.values()]
        self._in_campaign = await wstore.in_running_campaigns(session, boxes)

    async def _read_done(self, session: AsyncSession, looked: list[_Box], now: datetime) -> None:
        """Load the claimed slots of the mailboxes whose local day is not the one held."""
        days: dict[int, date] = {}
        for entry in looked:
            day = local_day(now, entry.mailbox.timezone)[0]
            if entry.done_day != day:
                days[entry.mailbox.id] = day
        if not days:
            return
        found = await wstore.done_slots_of(session, days)
        for mailbox_id, day in days.items():
            entry = self._boxes[mailbox_id]
            entry.done_day, entry.done = day, found.get(mailbox_id, set())

    async def _usage_of(
        self, session: AsyncSession, boxes: list[Mailbox], now: datetime
    ) -> dict[int, MailboxUsage]:
        if self.usage is not None:
            return {box.id: self.usage(box, now) for box in boxes}
        counts = await repo.usage_by_mailbox(session, boxes, now)
        return {box.id: usage_of(counts[box.id], {}) for box in boxes}

    def _look(
        self,
        entry: _Box,
        now: datetime,
        usage: MailboxUsage,
        due: list[_Due],
        report: WarmupTickReport,
    ) -> datetime | None:
        """Queue the mailbox's send if one is due and admitted; return when to look again."""
        box = entry.mailbox
        for until in (box.paused_until, self._backoff.get(box.id)):
            if until is not None and until > now:
                return until
        day, midnight = local_day(now, box.timezone)
        policy = warmed_policy(box, now, self.fleet, entry.settings.cold_cap_factor)
        pending = [p for p in self._plan(entry, policy, usage, day) if p.slot not in entry.done]
        later = min((p.at for p in pending if p.at > now), default=midnight)
        ready = [p for p in pending if p.at <= now]
        if not ready:
            return later
        if len(due) >= self.config.max_per_tick:
            return now  # the tick is full: the next one
        answer = admit(policy, usage, now, local_day=day, next_local_midnight=midnight, cold=False)
        if not answer.ok:
            report.held += 1
            return min(later, answer.retry_at) if answer.retry_at is not None else later
        first = ready[0]
        due.append(_Due(box, self._by_id[first.peer_id], first, day))
        entry.done.add(first.slot)
        if len(ready) > 1:  # a backlog: the next one once the gap has passed
            return min(later, now + floor_gap(policy))
        return later

    def _plan(
        self, entry: _Box, policy: MailboxPolicy, usage: MailboxUsage, day: date
    ) -> list[PlannedWarmup]:
        """The mailbox's plan for ``day``, re-made only when its size or the pool changes."""
        box, row = entry.mailbox, entry.settings
        cap = cold_cap_for_day(policy, day) if box.id in self._in_campaign else 0
        ramp = wstore.ramp_of(row, self.config.ramp)
        target = daily_target(
            ramp,
            row.started_on,
            day,
            cold=max(usage.cold_today, cap),
            ratio=policy.warmup_ratio,
            seed=(self.config.seed, box.id),
        )
        key = (day, target, self._pool_key, ramp, box.timezone)
        if entry.plan_key != key:
            me = next((p for p in self._pool if p.mailbox_id == box.id), None)
            me = me or _peer(box, row)
            entry.plan = plan_day(
                me, self._pool, day, box.timezone, target, ramp, seed=self.config.seed
            )
            entry.plan_key = key
        return entry.plan

    async def _replies(
        self,
        session: AsyncSession,
        now: datetime,
        busy: set[int],
        due: list[_Due],
        report: WarmupTickReport,
    ) -> None:
        """Queue the replies the peers decided on that are due; note when the next one is."""
        retry: datetime | None = None
        for answered in await wstore.due_replies(session, now, self.config.max_per_tick):
            entry = self._boxes.get(answered.peer_mailbox_id)
            original = self._by_id.get(answered.sender_mailbox_id)
            if entry is None or original is None or not entry.running:
                continue
            replier = entry.mailbox
            held = [u for u in (replier.paused_until, self._backoff.get(replier.id)) if u]
            if replier.id in busy or any(u > now for u in held):
                retry = now + timedelta(minutes=1)
                continue
            usage = (await self._usage_of(session, [replier], now))[replier.id]
            day, midnight = local_day(now, replier.timezone)
            policy = warmed_policy(replier, now, self.fleet, entry.settings.cold_cap_factor)
            answer = admit(
                policy, usage, now, local_day=day, next_local_midnight=midnight, cold=False
            )
            if not answer.ok:
                report.held += 1
                later = answer.retry_at or now + timedelta(minutes=1)
                retry = later if retry is None else min(retry, later)
                continue
            due.append(_Due(replier, original, None, None, answered))
            busy.add(replier.id)
        upcoming = await wstore.next_reply_due(session, now)
        self._reply_at = min((t for t in (upcoming, retry) if t is not None), default=None)

    async def _update_caps(
        self, session: AsyncSession, now: datetime, report: WarmupTickReport
    ) -> None:
        """Cut or restore each mailbox's cold cap from what its peers saw (an event each)."""
        ids = list(self._boxes)
        seen = await wstore.observations(session, ids, now - PLACEMENT_HISTORY)
        for mailbox_id in ids:
            box, row = self._boxes[mailbox_id].mailbox, self._boxes[mailbox_id].settings
            change = next_cold_cap_factor(
                row.cold_cap_factor, row.cap_changed_at, seen.get(box.id, []), now, self.config.caps
            )
            if not change.changed:
                continue
            await session.execute(
                update(WarmupSettings)
                .where(WarmupSettings.mailbox_id == box.id)
                .values(cold_cap_factor=change.factor, cap_changed_at=now, updated_at=now)
            )
            row.cold_cap_factor = change.factor  # the kept copy; the next tick re-reads the rows
            row.cap_changed_at = now
            report.cap_changes.append((box.id, change.factor, change.reason))
            repo.add_event(
                session,
                workspace_id=box.workspace_id,
                at=now,
                kind="warmup.cold_cap",
                message=f"{box.address}: {change.reason}",
                mailbox_id=box.id,
            ).data = {"factor": change.factor}

    async def _claim(self, session: AsyncSession, item: _Due, now: datetime) -> _Claim:
        """Write the Send (with its Message-ID) and its warmup row; committed with the session."""
        sender, peer = item.sender, item.peer
        message_id = Composer.new_message_id(sender)
        token = self.config.marker.token(message_id)
        seed = f"{self.config.seed}:{message_id}"
        thread: WarmupThread | None
        if item.answering is not None:
            thread = await session.get(WarmupThread, item.answering.thread_id)
        else:
            thread = await wstore.open_thread(
                session,
                sender.id,
                peer.id,
                max_messages=self.config.receiver.max_thread_messages,
                quiet_since=now - self.config.thread_quiet,
            )
        names = {
            "sender_name": sender.display_name,
            "sender": sender.address,
            "peer_name": peer.display_name,
            "peer": peer.address,
        }
        if thread is None:
            topic = topic_for((self.config.seed, sender.id, peer.id, message_id))
            text = opening(seed, topic, **names)
            subject, body, in_reply_to, references = text.subject, text.body, None, []
            thread = WarmupThread(
                workspace_id=sender.workspace_id,
                opener_mailbox_id=sender.id,
                peer_mailbox_id=peer.id,
                topic=topic,
                subject=subject,
                root_message_id=message_id,
                last_message_id=message_id,
                references=[],
                messages=1,
                started_at=now,
                last_at=now,
            )
            session.add(thread)
        else:
            reply = item.answering is not None or thread.opener_mailbox_id != sender.id
            body = continuation(seed, thread.topic, reply=reply, **names)
            subject = reply_subject(thread.subject)
            in_reply_to = thread.last_message_id
            references = thread_references(list(thread.references or []), thread.last_message_id)
            thread.references = references
            thread.last_message_id = message_id
            thread.messages += 1
            thread.last_at = now
        await session.flush()
        raw = warmup_message(
            self.config.marker,
            token,
            sender=sender.address,
            sender_name=sender.display_name,
            peer=peer.address,
            peer_name=peer.display_name,
            subject=subject,
            body=body,
            message_id=message_id,
            at=now,
            in_reply_to=in_reply_to,
            references=references,
        )
        send = Send(
            workspace_id=sender.workspace_id,
            kind=SendKind.WARMUP,
            mailbox_id=sender.id,
            message_id=message_id,
            in_reply_to=in_reply_to,
            from_address=sender.address,
            to_address=peer.address,
            recipients=1,
            subject=subject,
            status=SendStatus.CLAIMED,
            attempts=1,
            claimed_at=now,
        )
        session.add(send)
        await session.flush()
        session.add(
            WarmupMessage(
                send_id=send.id,
                thread_id=thread.id,
                sender_mailbox_id=sender.id,
                peer_mailbox_id=peer.id,
                message_id=message_id,
                token=token,
                origin="plan" if item.planned is not None else "reply",
                plan_day=item.day,
                slot=item.planned.slot if item.planned is not None else None,
                planned_at=now,
                flagged=False,
            )
        )
        if item.answering is not None:
            item.answering.reply_send_id = send.id
        await session.flush()
        slot = item.planned.slot if item.planned is not None else None
        return _Claim(send.id, sender, peer.address, raw, slot)

    async def _deliver(self, claim: _Claim) -> SubmitResult | None:
        """Commit ``submitting`` and submit, as every send does (:mod:`mailfleet.services.sending`).

        None when the send was no longer ``claimed`` (another process took it): nothing
        is submitted.
        """
        async with self.db.session() as session:
            if not await sending.mark_submitting(session, claim.send_id):
                log.warning("warmup: send %s was no longer claimed; not submitted", claim.send_id)
                return None
        return await sending.submit(
            self.submitter,
            claim.mailbox,
            claim.mailbox.provider,
            claim.mailbox.address,
            [claim.recipient],
            claim.raw,
        )

    async def _record(
        self,
        outcomes: list[tuple[_Claim, SubmitResult]],
        claimed_at: datetime,
        report: WarmupTickReport,
    ) -> None:
        """Store each outcome; a deferred one frees its slot (or its reply) for a later tick."""
        now = self.clock.now()
        ids = [claim.send_id for claim, _ in outcomes]
        async with self.db.session() as session:
            sends = {s.id: s for s in (await session.scalars(select(Send).where(Send.id.in_(ids))))}
            for claim, result in outcomes:
                send = sends[claim.send_id]
                provider, address = claim.mailbox.provider, claim.mailbox.address
                reaction = react(result, provider, address)
                send.finished_at = now
                send.reply_code = result.code
                send.reply_text = result.text[:2000]
                send.reply_enhanced = reaction.enhanced
                send.outcome = reaction.outcome.kind.value
                if result.delivery is Delivery.ACCEPTED:
                    send.status = SendStatus.SENT
                    if claim.mailbox.failure_streak:
                        mailbox = await session.get(Mailbox, claim.mailbox.id)
                        assert mailbox is not None
                        mailbox.failure_streak = 0
                    report.sent.append(
                        WarmupSent(claim.mailbox.id, claimed_at, send.recipients, send.id)
                    )
                    continue
                if (
                    result.delivery is Delivery.UNKNOWN
                    or reaction.outcome.kind is OutcomeKind.UNKNOWN
                ):
                    send.status = SendStatus.UNKNOWN
                    send.error = "the server may have accepted it (connection lost or unreadable)"
                    report.unknown += 1
                    continue
                mailbox = await session.get(Mailbox, claim.mailbox.id)
                assert mailbox is not None
                send.error = reaction.message
                report.errors.append(f"warmup {address} -> {send.to_address}: {reaction.message}")
                if reaction.deferred:
                    send.status = SendStatus.DEFERRED
                    report.deferred += 1
                    await session.execute(
                        update(WarmupMessage)
                        .where(WarmupMessage.send_id == send.id)
                        .values(slot=None)  # the plan's slot is free again
                    )
                    entry = self._boxes.get(mailbox.id)
                    if entry is not None and claim.slot is not None:
                        entry.done.discard(claim.slot)
                    await self._free_reply(session, send.id)
                    self._backoff[mailbox.id] = now + DEFER_BACKOFF
                    await stop_mailbox(session, reaction, mailbox, send, now, self._random)
                else:
                    send.status = SendStatus.FAILED
                    report.failed += 1
                repo.add_event(
                    session,
                    workspace_id=mailbox.workspace_id,
                    at=now,
                    kind=f"warmup.{send.status}",
                    message=reaction.message,
                    mailbox_id=mailbox.id,
                    send_id=send.id,
                )

    @staticmethod
    async def _free_reply(session: AsyncSession, send_id: int) -> None:
        answered = await session.scalar(
            select(WarmupMessage).where(WarmupMessage.reply_send_id == send_id)
        )
        if answered is not None:
            answered.reply_send_id = None
