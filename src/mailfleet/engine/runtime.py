"""The engine: ticks that plan, claim, send and record.

Each tick loads the running campaigns, their due enrollments, the usage of their
mailboxes and the caps those share, asks the planner what to send, then for
every planned send walks the durable state machine of
:class:`~mailfleet.store.SendStatus`:

1. ``claimed`` — the Send row with its Message-ID (and A/B variant) is committed
   and the enrollment is marked in flight before any connection opens;
2. ``submitting`` — committed just before this message's connection opens, and
   only while its enrollment is still active: a stop that landed after the claim
   wins, and the send is dropped unsent;
3. ``sent`` | ``deferred`` (retry at the enrollment's ``next_due_at``) | ``failed`` |
   ``unknown`` — recorded with the server's reply after its final answer, and the
   enrollment moves on.

After a crash, :meth:`Engine.recover` reconciles what was left in flight by
looking each Message-ID up in the mailbox's Sent folder over IMAP
(:mod:`mailfleet.engine.reconcile`): nothing is resent blindly.

Between ticks the engine (through :class:`~mailfleet.engine.cadence.Cadence`) keeps
the mailboxes (:class:`~mailfleet.engine.snapshot.FleetCache`,
re-loaded when a mailbox row changes) and what they sent
(:class:`~mailfleet.engine.ledger.UsageLedger`: every claim is recorded as it is made,
sends other processes wrote are read by id each tick, every ``resync`` of clock time the
sends it holds differently from the store are read again, and after :meth:`Engine.recover`
the whole ledger is re-loaded). A mailbox
the planner refused on its own account is left out of the ticks until the instant it
may send again, so a tick costs about the mailboxes that can send, not the fleet.
Another part of the process that sends through the same mailboxes (warmup) tells the
engine with :meth:`Engine.note_send` and reads the limits' view with
:meth:`Engine.mailbox_usage`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.clock import Clock
from mailfleet.content import MessageBuildError, SpintaxError, TemplateError
from mailfleet.engine.cadence import RESYNC, Cadence
from mailfleet.engine.compose import Composer
from mailfleet.engine.credentials import (
    CredentialCache,
    DatabaseCredentialStore,
)
from mailfleet.engine.ledger import LedgerSend, UsageLedger
from mailfleet.engine.reaction import react
from mailfleet.engine.reconcile import (
    ImapSentLookup,
    ReconcileReport,
    SentFolderLookup,
    reconcile_sends,
)
from mailfleet.engine.refusal import apply_refusal
from mailfleet.engine.sequence import advance
from mailfleet.engine.snapshot import FleetCache, mailbox_policy
from mailfleet.engine.submitter import PooledSubmitter
from mailfleet.engine.warmup import WarmupSender
from mailfleet.limits import (
    FleetPolicy,
    recipient_domain,
)
from mailfleet.planner import (
    HELD,
    DueEnrollment,
    PlannedSend,
    plan_sends,
)
from mailfleet.providers.outcomes import OutcomeKind
from mailfleet.services import sending
from mailfleet.store import (
    Campaign,
    Database,
    Enrollment,
    EnrollmentStatus,
    Lead,
    Mailbox,
    Send,
    SendKind,
    SendStatus,
    Step,
    Suppression,
)
from mailfleet.store import repository as repo
from mailfleet.store.repository import COUNTED
from mailfleet.transport.secrets import SecretBox
from mailfleet.transport.smtp import Delivery, SmtpPool, SubmitResult
from mailfleet.transport.submitter import Submitter
from mailfleet.warmup import WarmupConfig

__all__ = ["Engine", "TickReport", "mailbox_policy"]

FIRST_STEPS_PER_READY = 3
"""Due rows read per mailbox ready to send (the batch is at most ``batch``)."""
COMPOSE_RETRY = timedelta(hours=1)
"""A step that failed to compose through a bug of ours is tried again after this."""
READY_FILTER_MAX = 2000
"""Above this many ready mailboxes, due follow-ups are read for all and filtered here."""

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TickReport:
    """What one tick did."""

    at: datetime
    planned: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    stopped: int = 0
    warmup_sent: int = 0
    wake_at: datetime | None = None
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Claim:
    send_id: int
    planned: PlannedSend
    mailbox: Mailbox
    envelope_from: str
    recipient: str
    raw: bytes


class Engine(Cadence):
    """Runs campaigns on a clock against a store and the mailboxes' servers.

    ``batch`` caps the due rows read a tick (default: :data:`FIRST_STEPS_PER_READY` per
    mailbox ready to send, plus a few follow-ups per ready thread mailbox); ``resync`` is
    the clock time between two full re-loads of the usage ledger.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        box: SecretBox,
        *,
        public_url: str,
        unsubscribe_key: bytes,
        http: httpx.AsyncClient | None = None,
        batch: int | None = None,
        concurrency: int = 32,
        idle_wake: timedelta = timedelta(minutes=15),
        seed: int | None = None,
        fleet: FleetPolicy | None = None,
        sent_lookup: SentFolderLookup | None = None,
        resync: timedelta = RESYNC,
        warmup: WarmupConfig | None = None,
        submitter: Submitter | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.pool = SmtpPool(clock)
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=30)
        self._credentials = CredentialCache(
            box, clock, self.http, store=DatabaseCredentialStore(db, clock)
        )
        self.submitter: Submitter = submitter or PooledSubmitter(self._credentials, self.pool)
        self.composer = Composer(public_url, unsubscribe_key)
        self._batch = batch
        self._semaphore = asyncio.Semaphore(concurrency)
        self._idle_wake = idle_wake
        self._random = random.Random(seed)
        self._fleet = fleet or FleetPolicy()
        self.sent_lookup: SentFolderLookup = sent_lookup or ImapSentLookup(self.credentials)
        self.ledger = UsageLedger()
        self.mailboxes = FleetCache(self._fleet)
        self._resync = resync
        self._high_water = 0  # the highest send id the ledger has read from the store
        self._ready: dict[int, datetime] = {}  # mailbox id -> not before (planner's answer)
        self._future: tuple[datetime | None, datetime] = (None, datetime.min.replace(tzinfo=UTC))
        self.warmup: WarmupSender | None = None
        if warmup is not None:
            self.warmup = WarmupSender(
                db,
                clock,
                self.credentials,
                self.pool,
                config=warmup,
                fleet=self._fleet,
                usage=self.usage_for,
                submitter=self.submitter,
            )

    @property
    def credentials(self) -> CredentialCache:
        """Where every send of this process gets its mailbox's login."""
        return self._credentials

    @credentials.setter
    def credentials(self, cache: CredentialCache) -> None:
        self._credentials = cache
        if isinstance(self.submitter, PooledSubmitter):
            self.submitter.credentials = cache  # the default submitter follows it

    @property
    def fleet(self) -> FleetPolicy:
        """The caps the installation sets for its fleet."""
        return self._fleet

    @fleet.setter
    def fleet(self, policy: FleetPolicy) -> None:
        self._fleet = policy
        if self.warmup is not None:
            self.warmup.fleet = policy
        self.mailboxes = FleetCache(policy)  # policies are derived from it: derive again
        self._ready.clear()

    async def close(self) -> None:
        """Close every SMTP session and the HTTP client the engine made."""
        await self.pool.close_all()
        if self._own_http:
            await self.http.aclose()

    async def recover(self) -> int:
        """Reconcile sends a crash left in flight (and unknown ones never looked up).

        Each Message-ID is looked up in its mailbox's Sent folder: found means sent,
        a ``claimed`` one never reached a server and is planned again, anything else
        is left ``unknown`` for a person — never resent blindly. Returns how many
        sends were looked at.
        """
        return (await self.reconcile()).total

    async def reconcile(
        self, *, include_unknown: bool = True, unknown_checked_before: datetime | None = None
    ) -> ReconcileReport:
        """:meth:`recover` with the full report (found, released, unknown, errors).

        ``unknown_checked_before``: only re-check ``unknown`` sends last looked up before
        then (safe beside ticks: nothing in flight is touched).
        """
        report = await reconcile_sends(
            self.db,
            self.clock,
            self.sent_lookup,
            include_unknown=include_unknown,
            unknown_checked_before=unknown_checked_before,
        )
        self.ledger.loaded_at = None  # statuses changed under it: re-load at the next tick
        self._future = (None, datetime.min.replace(tzinfo=UTC))  # and steps may be due again
        return report

    # -- usage shared with the rest of the process ----------------------------------------------

    def next_wake(self, report: TickReport) -> datetime:
        """When the engine wants its next tick after ``report``.

        At the instant the tick asked for (a mailbox ready, a hold ending, a step
        falling due), never later than ``idle_wake`` after it (new work may arrive), and
        at least a second after a tick that planned nothing.
        """
        now = report.at
        wake = report.wake_at or now + self._idle_wake
        if report.planned == 0:
            wake = max(wake, now + timedelta(seconds=1))
        return min(wake, now + self._idle_wake)

    async def run_until(
        self, end: datetime, progress: Callable[[TickReport], None] | None = None
    ) -> list[TickReport]:
        """Tick until the clock reaches ``end``, sleeping on the clock between ticks."""
        reports: list[TickReport] = []
        while self.clock.now() < end:
            report = await self.tick()
            reports.append(report)
            if progress is not None:
                progress(report)
            now = self.clock.now()
            wake = min(self.next_wake(report), end)
            if wake > now:
                await self.pool.close_idle()
                await self.clock.sleep((wake - now).total_seconds())
        return reports

    async def tick(self) -> TickReport:
        """Make the warmup sends due now (when warmup runs here), then plan and make cold sends.

        Warmup goes first through the same transport and provider limits; the rows it
        records are read into the usage ledger before cold sends are admitted, so the
        2:1 ratio and the per-minute and rolling limits count both kinds.
        """
        now = self.clock.now()
        warm = None
        if self.warmup is not None:
            await self.sync_usage(now)  # warmup admits from the ledger, as cold does
            warm = await self.warmup.tick(now)
            for sent in warm.sent:
                self.note_send(
                    sent.mailbox_id, sent.at, SendKind.WARMUP, sent.recipients, send_id=sent.send_id
                )
        report = await self._tick_cold(now)
        if warm is not None and self.warmup is not None:
            report.warmup_sent = len(warm.sent)
            report.errors.extend(warm.errors)
            due = self.warmup.next_due(now)
            if due is not None and (report.wake_at is None or due < report.wake_at):
                report.wake_at = due
        return report

    async def _tick_cold(self, now: datetime) -> TickReport:
        """Plan and make the cold sends that are due at ``now``."""
        report = TickReport(at=now)
        async with self.db.session() as session:
            campaigns = await repo.active_campaigns(session)
            if not campaigns:
                return report
            workspace_ids = {c.workspace_id for c in campaigns}
            for mailbox_id in await self._resume_expired(session, workspace_ids, now):
                self._ready.pop(mailbox_id, None)  # changed: its old answer may not hold
            await self._sync_usage(session, now)
            fleet = self.mailboxes
            ready = self._ready_mailboxes(now)
            holds = [until for until in fleet.holds if until > now]
            steps = max(len(c.steps) for c in campaigns)
            campaign_ids = [c.id for c in campaigns]
            shut = self._all_windows_shut(campaigns, now)
            if shut is not None or not ready:
                # Nothing can go out: wake when a window opens, a mailbox is ready, a hold ends.
                later = [t for t in self._ready.values() if now < t < HELD]
                report.wake_at = min(
                    (t for t in (shut, *holds, *later) if t is not None), default=None
                )
                return report
            # A mailbox makes at most one send a tick: a few candidates per ready mailbox
            # leave room for recipient-domain skips, and every extra row costs each tick.
            limit = min(self._batch or 10**9, max(200, FIRST_STEPS_PER_READY * len(ready)))
            rows: Sequence[Any] = (
                await session.execute(
                    repo.due_enrollments_query(
                        campaign_ids,
                        now,
                        limit,
                        steps=steps,
                        mailbox_ids=ready if len(ready) <= READY_FILTER_MAX else None,
                        flat=True,
                    )
                )
            ).all()
            ready_set = set(ready)
            due = [
                DueEnrollment(
                    enrollment_id=eid,
                    campaign_id=cid,
                    step=step,
                    due_at=due_at or now,
                    mailbox_id=thread,
                    lead_timezone=zone,
                    recipient_domain=domain or recipient_domain(address),
                )
                for eid, cid, step, due_at, thread, zone, domain, address in rows
                if thread is None or thread in ready_set
            ]
            states, fleet_state = fleet.states(
                ready, self.ledger, {d.recipient_domain for d in due}, now
            )
            campaign_states = [fleet.campaign_state(c, self.ledger, now) for c in campaigns]
            future = await self._next_due(session, campaign_ids, steps, now)
        plan = plan_sends(now, campaign_states, states, due, fleet_state)
        self._ready.update(plan.ready_at)
        report.planned = len(plan.sends)
        boxes = fleet.by_id
        candidates = [plan.wake_at, future, *holds]
        for item in plan.sends:
            # The plan says when the mailbox is free again at the earliest (gap, cap, pace).
            free = plan.ready_at.get(item.mailbox_id)
            if free is None:
                free = now + fleet.policy(boxes[item.mailbox_id], now).min_gap
            self._ready[item.mailbox_id] = free
            candidates.append(free)
        candidates.extend(t for t in self._ready.values() if now < t < HELD)
        report.wake_at = min((t for t in candidates if t is not None), default=None)
        if not plan.sends:
            return report
        by_id = {c.id: c for c in campaigns}
        claims = await self._claim(plan.sends, by_id, boxes, now, report)
        results = await asyncio.gather(*(self._deliver(c) for c in claims))
        submitted = [(c, r) for c, r in zip(claims, results, strict=True) if r is not None]
        report.stopped += len(claims) - len(submitted)
        await self._record(submitted, by_id, report)
        if report.deferred or report.failed or report.stopped:
            # A refusal moved a retry, a hold or a mailbox's usage: plan again at once.
            report.wake_at = now
        return report

    async def _claim(
        self,
        planned: list[PlannedSend],
        campaigns: dict[int, Campaign],
        boxes: dict[int, Mailbox],
        now: datetime,
        report: TickReport,
    ) -> list[_Claim]:
        """Write each send with its Message-ID and mark its enrollment in flight, then commit.

        The rows the claims read (enrollments, leads, earlier sends of the steps,
        suppressions) are read in a few batched queries, and the claims are flushed
        together; the transaction commits before this returns, so every claim is
        durable before any connection opens.
        """
        claims: list[_Claim] = []
        async with self.db.session() as session:
            enrollments = {
                e.id: e
                for e in await _by_ids(session, Enrollment, [p.enrollment_id for p in planned])
            }
            leads = {
                lead.id: lead
                for lead in await _by_ids(
                    session, Lead, sorted({e.lead_id for e in enrollments.values()})
                )
            }
            earlier = await _step_sends(session, list(enrollments))
            blocked = await _suppressions(session, list(leads.values()))
            made: list[tuple[Send, PlannedSend, Mailbox, Lead, bytes, Campaign]] = []
            for item in planned:
                enrollment = enrollments.get(item.enrollment_id)
                if enrollment is None or enrollment.status != EnrollmentStatus.ACTIVE:
                    continue
                lead = leads.get(enrollment.lead_id)
                campaign = campaigns[item.campaign_id]
                mailbox = boxes[item.mailbox_id]
                assert lead is not None
                domain = lead.email_normalized.rpartition("@")[2]
                if (lead.workspace_id, "email", lead.email_normalized) in blocked or (
                    lead.workspace_id,
                    "domain",
                    domain,
                ) in blocked:
                    enrollment.status = EnrollmentStatus.STOPPED
                    enrollment.stop_reason = "suppressed"
                    enrollment.next_due_at = None
                    enrollment.updated_at = now
                    report.stopped += 1
                    continue
                step = next((s for s in campaign.steps if s.position == item.step), None)
                if step is None:
                    enrollment.status = EnrollmentStatus.COMPLETED
                    enrollment.next_due_at = None
                    continue
                send = self._send_row(
                    session, earlier, enrollment, step, mailbox, campaign, lead, now
                )
                try:
                    composed = self.composer.compose(
                        campaign=campaign,
                        step=step,
                        enrollment=enrollment,
                        lead=lead,
                        mailbox=mailbox,
                        message_id=send.message_id,
                        at=now,
                    )
                except (TemplateError, SpintaxError, MessageBuildError) as exc:
                    # This lead's data cannot make this step (a header it would break, a
                    # value the template refuses): its sequence stops, visibly.
                    self._not_composed(session, report, send, enrollment, lead, step, exc, now)
                    continue
                except Exception as exc:  # a bug of ours: the lead keeps its place
                    log.exception("engine: composing step %s for %s failed", step.position, lead.id)
                    self._not_composed(
                        session, report, send, enrollment, lead, step, exc, now, retry=True
                    )
                    continue
                send.subject = composed.subject
                send.in_reply_to = composed.in_reply_to
                send.variant = composed.variant
                send.status = SendStatus.CLAIMED
                send.claimed_at = now
                send.finished_at = None
                send.attempts += 1
                enrollment.next_due_at = None  # in flight: never planned twice
                enrollment.mailbox_id = mailbox.id
                enrollment.updated_at = now
                made.append((send, item, mailbox, lead, composed.raw, campaign))
            await session.flush()  # every send row gets its id
            for send, item, mailbox, lead, raw, campaign in made:
                claims.append(_Claim(send.id, item, mailbox, mailbox.address, lead.email, raw))
                self.ledger.record(
                    LedgerSend(
                        mailbox.id,
                        now,
                        SendKind.COLD,
                        1,
                        send.id,
                        campaign.id,
                        campaign.workspace_id,
                        send.recipient_domain or "",
                    )
                )
        return claims

    def _send_row(
        self,
        session: AsyncSession,
        earlier: dict[tuple[int, int], Send],
        enrollment: Enrollment,
        step: Step,
        mailbox: Mailbox,
        campaign: Campaign,
        lead: Lead,
        now: datetime,
    ) -> Send:
        """The Send row of this step: a retry reuses it, and with it the Message-ID.

        ``earlier`` holds the step sends already in the store (read by
        :func:`_step_sends`); a new row is added to it and to the session.
        """
        existing = earlier.get((enrollment.id, step.position))
        if existing is not None:
            if existing.mailbox_id != mailbox.id:
                # A first step moved to another mailbox: new sender, new Message-ID domain.
                existing.mailbox_id = mailbox.id
                existing.from_address = mailbox.address
                existing.message_id = self.composer.new_message_id(mailbox)
            existing.recipient_domain = recipient_domain(lead.email)
            return existing
        send = Send(
            workspace_id=campaign.workspace_id,
            kind=SendKind.COLD,
            mailbox_id=mailbox.id,
            enrollment_id=enrollment.id,
            campaign_id=campaign.id,
            step_position=step.position,
            message_id=self.composer.new_message_id(mailbox),
            from_address=mailbox.address,
            to_address=lead.email,
            recipient_domain=recipient_domain(lead.email),
            recipients=1,
            subject="",
            status=SendStatus.CLAIMED,
            attempts=0,
            claimed_at=now,
        )
        session.add(send)
        earlier[(enrollment.id, step.position)] = send
        return send

    def _not_composed(
        self,
        session: AsyncSession,
        report: TickReport,
        send: Send,
        enrollment: Enrollment,
        lead: Lead,
        step: Step,
        exc: Exception,
        now: datetime,
        *,
        retry: bool = False,
    ) -> None:
        """A step that could not be rendered: stop the lead, or (``retry``) hold it an hour."""
        why = f"{type(exc).__name__}: {exc}"[:500]
        report.errors.append(f"{lead.email} step {step.position}: {why}")
        send.status = SendStatus.FAILED
        send.error = why
        if retry:
            enrollment.next_due_at = now + COMPOSE_RETRY
            message = f"step {step.position} could not be composed ({why}); retried at " + (
                f"{enrollment.next_due_at:%Y-%m-%d %H:%M} UTC, the lead keeps its place"
            )
        else:
            enrollment.status = EnrollmentStatus.STOPPED
            enrollment.stop_reason = f"cannot render step {step.position}: {exc}"
            enrollment.next_due_at = None
            message = enrollment.stop_reason
        enrollment.updated_at = now
        repo.add_event(
            session,
            workspace_id=lead.workspace_id,
            at=now,
            kind="send.not_composed",
            message=message,
            campaign_id=enrollment.campaign_id,
            enrollment_id=enrollment.id,
            lead_id=lead.id,
        )

    async def _mark_submitting(self, claim: _Claim) -> bool:
        """Commit ``submitting`` just before the connection opens, if the lead is still active.

        One conditional UPDATE, so a stop committed after the claim always wins: the
        send is then dropped, unsent, with the reason.
        """
        async with self.db.session() as session:
            if await sending.mark_submitting(
                session, claim.send_id, enrollment_id=claim.planned.enrollment_id
            ):
                return True
            self.ledger.forget(claim.send_id)
            send = await session.get(Send, claim.send_id)
            enrollment = await session.get(Enrollment, claim.planned.enrollment_id)
            if send is not None and send.status == SendStatus.CLAIMED:
                why = (enrollment.stop_reason or enrollment.status) if enrollment else "removed"
                send.status = SendStatus.FAILED
                send.outcome = "stopped"
                send.finished_at = self.clock.now()
                send.error = f"not submitted: the lead's sequence ended before it ({why})"
                repo.add_event(
                    session,
                    workspace_id=send.workspace_id,
                    at=send.finished_at,
                    kind="send.stopped",
                    message=send.error,
                    mailbox_id=send.mailbox_id,
                    campaign_id=send.campaign_id,
                    enrollment_id=send.enrollment_id,
                    send_id=send.id,
                )
            return False

    async def _deliver(self, claim: _Claim) -> SubmitResult | None:
        """Submit one claimed message on its mailbox's session (None: stopped before it)."""
        async with self._semaphore:
            if not await self._mark_submitting(claim):
                return None
            return await sending.submit(
                self.submitter,
                claim.mailbox,
                claim.mailbox.provider,
                claim.envelope_from,
                [claim.recipient],
                claim.raw,
            )

    async def _record(
        self,
        outcomes: list[tuple[_Claim, SubmitResult]],
        campaigns: dict[int, Campaign],
        report: TickReport,
    ) -> None:
        """Store each outcome with the server's reply and move its enrollment on."""
        now = self.clock.now()
        async with self.db.session() as session:
            # Read the rows in a few batched queries: each get below is then answered
            # from the session's identity map.
            await _by_ids(session, Send, [c.send_id for c, _ in outcomes])
            await _by_ids(session, Enrollment, [c.planned.enrollment_id for c, _ in outcomes])
            await _by_ids(session, Mailbox, sorted({c.mailbox.id for c, _ in outcomes}))
            for claim, result in outcomes:
                send = await session.get(Send, claim.send_id)
                enrollment = await session.get(Enrollment, claim.planned.enrollment_id)
                mailbox = await session.get(Mailbox, claim.mailbox.id)
                assert send is not None and enrollment is not None and mailbox is not None
                campaign = campaigns[claim.planned.campaign_id]
                reaction = react(result, mailbox.provider, mailbox.address)
                send.finished_at = now
                send.reply_code = result.code
                send.reply_text = result.text[:2000]
                send.reply_enhanced = reaction.enhanced
                send.outcome = reaction.outcome.kind.value
                links: dict[str, int | None] = {
                    "mailbox_id": mailbox.id,
                    "campaign_id": campaign.id,
                    "enrollment_id": enrollment.id,
                    "lead_id": enrollment.lead_id,
                    "send_id": send.id,
                }
                if result.delivery is Delivery.ACCEPTED:
                    send.status = SendStatus.SENT
                    report.sent += 1
                    mailbox.failure_streak = 0
                    advance(enrollment, campaign, send, now)
                    repo.add_event(
                        session,
                        workspace_id=campaign.workspace_id,
                        at=now,
                        kind="send.sent",
                        message=f"step {send.step_position} to {send.to_address}",
                        **links,
                    )
                elif (
                    result.delivery is Delivery.UNKNOWN
                    or reaction.outcome.kind is OutcomeKind.UNKNOWN
                ):
                    # Handed over, or an unreadable answer to DATA: it may have been
                    # accepted, so it is reconciled and never resent blindly.
                    send.status = SendStatus.UNKNOWN
                    send.error = (
                        "the server may have accepted it (connection lost or reply unreadable)"
                    )
                    report.unknown += 1
                    repo.add_event(
                        session,
                        workspace_id=campaign.workspace_id,
                        at=now,
                        kind="send.unknown",
                        message=f"{send.error}: {result.text}",
                        **links,
                    )
                else:
                    await apply_refusal(
                        session, reaction, send, enrollment, mailbox, campaign, now, self._random
                    )
                    if reaction.deferred:
                        report.deferred += 1
                    else:
                        report.failed += 1
                    report.errors.append(
                        f"{mailbox.address} -> {send.to_address}: {reaction.message}"
                    )
                self._due_moved(enrollment.next_due_at)
                if send.status == SendStatus.SENT:
                    self.ledger.accept(send.id)
                elif send.status not in COUNTED:
                    self.ledger.forget(send.id)
                    self._ready.pop(mailbox.id, None)  # its usage fell: look again
        return None


async def _by_ids(session: AsyncSession, entity: Any, ids: Sequence[int]) -> list[Any]:
    """The rows of ``entity`` with these ids, read :data:`~mailfleet.store.repository.CHUNK`
    at a time (they land in the session as if each were ``session.get``)."""
    out: list[Any] = []
    for offset in range(0, len(ids), repo.CHUNK):
        chunk = list(ids[offset : offset + repo.CHUNK])
        out.extend((await session.scalars(select(entity).where(entity.id.in_(chunk)))).all())
    return out


async def _step_sends(
    session: AsyncSession, enrollment_ids: Sequence[int]
) -> dict[tuple[int, int], Send]:
    """The send rows of these enrollments, by (enrollment, step position)."""
    out: dict[tuple[int, int], Send] = {}
    for offset in range(0, len(enrollment_ids), repo.CHUNK):
        chunk = list(enrollment_ids[offset : offset + repo.CHUNK])
        for send in (
            await session.scalars(select(Send).where(Send.enrollment_id.in_(chunk)))
        ).all():
            if send.enrollment_id is not None and send.step_position is not None:
                out[(send.enrollment_id, send.step_position)] = send
    return out


async def _suppressions(session: AsyncSession, leads: Sequence[Lead]) -> set[tuple[int, str, str]]:
    """(workspace, kind, value) of the suppressions that match any of ``leads``:
    their address (kind ``email``) or their address's domain (kind ``domain``)."""
    wanted: dict[str, set[str]] = {"email": set(), "domain": set()}
    workspaces = {lead.workspace_id for lead in leads}
    for lead in leads:
        wanted["email"].add(lead.email_normalized)
        wanted["domain"].add(lead.email_normalized.rpartition("@")[2])
    out: set[tuple[int, str, str]] = set()
    for kind, values in wanted.items():
        ordered = sorted(values)
        for offset in range(0, len(ordered), repo.CHUNK):
            rows = await session.execute(
                select(Suppression.workspace_id, Suppression.kind, Suppression.value).where(
                    Suppression.workspace_id.in_(workspaces),
                    Suppression.kind == kind,
                    Suppression.value.in_(ordered[offset : offset + repo.CHUNK]),
                )
            )
            out.update((int(w), str(k), str(v)) for w, k, v in rows.all())
    return out
