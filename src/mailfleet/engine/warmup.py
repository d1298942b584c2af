"""The warmup sender: each tick, the warmup messages due, through the cold path's transport.

Contract with :class:`mailfleet.engine.runtime.Engine` (which owns the loop):

- ``report = await warmup_sender.tick(now)`` at the start of every engine tick,
  then ``engine.note_send(mailbox_id, at, SendKind.WARMUP, recipients)`` for each
  ``(mailbox_id, at, recipients)`` of ``report.sent`` so the engine's usage
  ledger counts them;
- ``warmup_sender.next_due(now)`` — when the next warmup send (or reply) is due,
  for the engine's wake-up.

Each tick, per mailbox whose warmup is on and not paused: the day's plan
(:func:`mailfleet.warmup.plan_day`, its size raised to the warmup ratio × the
cold planned that day), minus the slots already claimed, gives what is due;
replies the peers decided on (:mod:`mailfleet.engine.warmup_receiver`) are due
too. Every send passes :func:`mailfleet.limits.admit` with the mailbox's usage
and provider limits (``cold=False``), at most one per mailbox per tick (the
minimum gap would refuse a second), and walks the same durable states as a
cold send: ``claimed`` (with its Message-ID, committed before any connection) →
``submitting`` → ``sent`` | ``deferred`` | ``failed`` | ``unknown``. A deferred
slot is freed and retried; the mailbox backs off or pauses as
:mod:`mailfleet.engine.reaction` says, exactly as for cold mail.

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.campaigns import selects_mailbox
from mailfleet.clock import Clock
from mailfleet.content.mime import reply_subject, thread_references
from mailfleet.engine.compose import Composer
from mailfleet.engine.credentials import CredentialCache, CredentialError
from mailfleet.engine.reaction import react
from mailfleet.engine.refusal import stop_mailbox
from mailfleet.engine.snapshot import warmed_policy
from mailfleet.limits import FleetPolicy, MailboxPolicy, MailboxUsage, admit, cold_cap_for_day
from mailfleet.planner import local_day
from mailfleet.providers.outcomes import OutcomeKind, Stage
from mailfleet.store import (
    Campaign,
    CampaignStatus,
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

__all__ = ["WarmupConfig", "WarmupSender", "WarmupTickReport"]

log = logging.getLogger(__name__)
PLACEMENT_HISTORY = timedelta(days=28)
CAP_EVERY = timedelta(minutes=30)
"""How often placement is re-read to cut or restore cold caps (they move by the day)."""
FULL_EVERY = timedelta(minutes=5)
"""Longest wait between two full passes, though nothing was due: cold sends may have
raised a day's target, peers may have planned replies."""
DEFER_BACKOFF = timedelta(minutes=5)


@dataclass(slots=True)
class WarmupTickReport:
    """What one warmup tick did; ``sent`` is ``(mailbox_id, at, recipients)`` per accepted send."""

    at: datetime
    sent: list[tuple[int, datetime, int]] = field(default_factory=list)
    claimed: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    held: int = 0  # due but refused by admission this tick
    cap_changes: list[tuple[int, float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


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


def _peer(box: Mailbox, row: WarmupSettings | None) -> Peer:
    return Peer(
        mailbox_id=box.id,
        address=box.address,
        workspace_id=box.workspace_id,
        provider=box.provider,
        tenant=box.tenant,
        shared_pool=bool(row.shared_pool) if row is not None else False,
    )


def _usage(counts: repo.UsageCounts) -> MailboxUsage:
    return MailboxUsage(
        cold_today=counts.cold_today,
        messages_last_minute=counts.messages_last_minute,
        oldest_in_last_minute=counts.oldest_in_last_minute,
        messages_24h=counts.messages_24h,
        recipients_24h=counts.recipients_24h,
        oldest_in_24h=counts.oldest_in_24h,
        last_send_at=counts.last_send_at,
        last_send_id=counts.last_send_id,
        warmup_today=counts.warmup_today,
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
    ) -> None:
        self.db = db
        self.clock = clock
        self.credentials = credentials
        self.pool = pool
        self.config = config or WarmupConfig()
        self.fleet = fleet or FleetPolicy()
        self._random = rng or random.Random(self.config.seed)
        self._wake: datetime | None = None
        self._backoff: dict[int, datetime] = {}
        self._full_at: datetime | None = None  # the last full pass
        self._caps_at: datetime | None = None  # the last cold-cap update

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
        if (
            last is not None
            and last <= now < last + FULL_EVERY
            and (self._wake is None or now < self._wake)
        ):
            return report  # nothing due since the last full pass
        self._full_at = now
        wake: list[datetime] = []
        async with self.db.session() as session:
            boxes = list((await session.scalars(select(Mailbox).order_by(Mailbox.id))).all())
            enabled = [b for b in boxes if b.warmup_enabled is not False]
            if not enabled:
                self._wake = None
                return report
            settings = await wstore.settings_of(session, enabled, now)
            caps_at = self._caps_at
            if caps_at is None or not caps_at <= now < caps_at + CAP_EVERY:
                await self._update_caps(session, enabled, settings, now, report)
                self._caps_at = now
            running = [b for b in enabled if not settings[b.id].paused]
            # A peer must be able to act on what it receives: read over IMAP, still connected.
            pool = [
                _peer(b, settings[b.id])
                for b in running
                if b.imap_host and b.status != MailboxStatus.DISCONNECTED
            ]
            by_id = {b.id: b for b in boxes}
            campaigns = await repo.active_campaigns(session)
            usage = await repo.usage_by_mailbox(session, running, now)
            due: list[_Due] = []
            busy: set[int] = set()
            done_by_box = await wstore.done_slots_of(
                session, {b.id: local_day(now, b.timezone)[0] for b in running}
            )
            for box in running:
                if not self._may_send(box, now, wake):
                    continue
                row = settings[box.id]
                day, midnight = local_day(now, box.timezone)
                policy = warmed_policy(box, now, self.fleet, row.cold_cap_factor)
                plan = self._plan(box, row, pool, policy, campaigns, usage[box.id], day)
                done = done_by_box.get(box.id, set())
                pending = [p for p in plan if p.slot not in done]
                later = [p.at for p in pending if p.at > now]
                wake.append(min(later) if later else midnight)
                ready = [p for p in pending if p.at <= now]
                if not ready or len(due) >= self.config.max_per_tick:
                    continue
                if self._admitted(policy, usage[box.id], now, day, midnight, wake, report):
                    due.append(_Due(box, by_id[ready[0].peer_id], ready[0], day))
                    busy.add(box.id)
                    if len(ready) > 1:  # a backlog: the next one once the gap has passed
                        wake.append(now + policy.min_gap)
            running_ids = {b.id for b in running}
            for answered in await wstore.due_replies(session, now, self.config.max_per_tick):
                replier = by_id.get(answered.peer_mailbox_id)
                original = by_id.get(answered.sender_mailbox_id)
                if replier is None or original is None or replier.id not in running_ids:
                    continue
                if replier.id in busy or not self._may_send(replier, now, wake):
                    wake.append(now + timedelta(minutes=1))
                    continue
                day, midnight = local_day(now, replier.timezone)
                policy = warmed_policy(
                    replier, now, self.fleet, settings[replier.id].cold_cap_factor
                )
                if self._admitted(policy, usage[replier.id], now, day, midnight, wake, report):
                    due.append(_Due(replier, original, None, None, answered))
                    busy.add(replier.id)
            upcoming = await wstore.next_reply_due(session, now)
            if upcoming is not None:
                wake.append(upcoming)
            claims = [await self._claim(session, item, now) for item in due]
        self._wake = min(wake, default=None)
        report.claimed = len(claims)
        if not claims:
            return report
        results = await asyncio.gather(*(self._deliver(c) for c in claims))
        await self._record(list(zip(claims, results, strict=True)), now, report)
        return report

    def _may_send(self, box: Mailbox, now: datetime, wake: list[datetime]) -> bool:
        if box.status != MailboxStatus.ACTIVE:
            return False
        for until in (box.paused_until, self._backoff.get(box.id)):
            if until is not None and until > now:
                wake.append(until)
                return False
        return True

    def _plan(
        self,
        box: Mailbox,
        row: WarmupSettings,
        pool: list[Peer],
        policy: MailboxPolicy,
        campaigns: Sequence[Campaign],
        counts: repo.UsageCounts,
        day: date,
    ) -> list[PlannedWarmup]:
        in_campaign = any(
            c.workspace_id == box.workspace_id
            and selects_mailbox(
                c.mailbox_tags or [],
                list((c.settings or {}).get("mailboxes") or []),
                box.address,
                box.tags or [],
            )
            for c in campaigns
            if c.status == CampaignStatus.ACTIVE
        )
        cold = max(counts.cold_today, cold_cap_for_day(policy, day) if in_campaign else 0)
        ramp = wstore.ramp_of(row, self.config.ramp)
        target = daily_target(
            ramp,
            row.started_on,
            day,
            cold=cold,
            ratio=policy.warmup_ratio,
            seed=(self.config.seed, box.id),
        )
        me = next((p for p in pool if p.mailbox_id == box.id), None)
        me = me or _peer(box, row)
        return plan_day(me, pool, day, box.timezone, target, ramp, seed=self.config.seed)

    def _admitted(
        self,
        policy: MailboxPolicy,
        counts: repo.UsageCounts,
        now: datetime,
        day: date,
        midnight: datetime,
        wake: list[datetime],
        report: WarmupTickReport,
    ) -> bool:
        answer = admit(
            policy, _usage(counts), now, local_day=day, next_local_midnight=midnight, cold=False
        )
        if not answer.ok:
            report.held += 1
            if answer.retry_at is not None:
                wake.append(answer.retry_at)
        return answer.ok

    async def _update_caps(
        self,
        session: AsyncSession,
        boxes: list[Mailbox],
        settings: dict[int, WarmupSettings],
        now: datetime,
        report: WarmupTickReport,
    ) -> None:
        seen = await wstore.observations(session, [b.id for b in boxes], now - PLACEMENT_HISTORY)
        for box in boxes:
            row = settings[box.id]
            change = next_cold_cap_factor(
                row.cold_cap_factor, row.cap_changed_at, seen.get(box.id, []), now, self.config.caps
            )
            if not change.changed:
                continue
            row.cold_cap_factor = change.factor
            row.cap_changed_at = now
            row.updated_at = now
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
        return _Claim(send.id, sender, peer.address, raw)

    async def _deliver(self, claim: _Claim) -> SubmitResult:
        """Commit ``submitting``, then submit on the mailbox's pooled session."""
        async with self.db.session() as session:
            await session.execute(
                update(Send)
                .where(Send.id == claim.send_id, Send.status == SendStatus.CLAIMED)
                .values(status=SendStatus.SUBMITTING)
            )
        try:
            endpoint = self.credentials.endpoint(claim.mailbox)
            creds = self.credentials.credentials(claim.mailbox)
        except CredentialError as exc:
            return SubmitResult(Delivery.REFUSED, Stage.TOKEN, None, str(exc), error=exc)
        connection = self.pool.connection(claim.mailbox.id, endpoint, creds)
        return await connection.submit(claim.mailbox.address, [claim.recipient], claim.raw)

    async def _record(
        self,
        outcomes: list[tuple[_Claim, SubmitResult]],
        claimed_at: datetime,
        report: WarmupTickReport,
    ) -> None:
        """Store each outcome; a deferred one frees its slot (or its reply) for a later tick."""
        now = self.clock.now()
        async with self.db.session() as session:
            for claim, result in outcomes:
                send = await session.get(Send, claim.send_id)
                mailbox = await session.get(Mailbox, claim.mailbox.id)
                row = await session.scalar(
                    select(WarmupMessage).where(WarmupMessage.send_id == claim.send_id)
                )
                assert send is not None and mailbox is not None and row is not None
                reaction = react(result, mailbox.provider, mailbox.address)
                send.finished_at = now
                send.reply_code = result.code
                send.reply_text = result.text[:2000]
                send.reply_enhanced = reaction.enhanced
                send.outcome = reaction.outcome.kind.value
                if result.delivery is Delivery.ACCEPTED:
                    send.status = SendStatus.SENT
                    mailbox.failure_streak = 0
                    # Counted at its claim time, as the store's usage counts it.
                    report.sent.append((mailbox.id, claimed_at, send.recipients))
                    continue
                if (
                    result.delivery is Delivery.UNKNOWN
                    or reaction.outcome.kind is OutcomeKind.UNKNOWN
                ):
                    send.status = SendStatus.UNKNOWN
                    send.error = "the server may have accepted it (connection lost or unreadable)"
                    report.unknown += 1
                    continue
                send.error = reaction.message
                report.errors.append(
                    f"warmup {mailbox.address} -> {send.to_address}: {reaction.message}"
                )
                if reaction.deferred:
                    send.status = SendStatus.DEFERRED
                    report.deferred += 1
                    row.slot = None  # the plan's slot is free again
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
