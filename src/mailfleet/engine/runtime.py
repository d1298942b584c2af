"""The engine: ticks that plan, claim, send and record.

Each tick loads the running campaigns, their due enrollments and the usage of
their mailboxes, asks the planner what to send, then for every planned send:

1. claims it durably — the Send row with its Message-ID is committed and the
   enrollment is marked in flight *before* any connection opens;
2. submits it on the mailbox's reused SMTP session;
3. records the outcome and the server's reply, and moves the enrollment on.

A crash between 1 and 3 leaves a ``claimed`` row: :meth:`Engine.recover` marks
it ``unknown`` for reconciliation instead of sending it again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.clock import Clock
from mailfleet.engine.compose import Composer
from mailfleet.engine.credentials import (
    CredentialCache,
    CredentialError,
    DatabaseCredentialStore,
)
from mailfleet.engine.reaction import classify, react
from mailfleet.engine.refusal import apply_refusal, resume_expired
from mailfleet.limits import MailboxPolicy, MailboxUsage
from mailfleet.planner import (
    CampaignState,
    DueEnrollment,
    MailboxState,
    PlannedSend,
    SendingWindow,
    add_delay,
    local_day,
    plan_sends,
)
from mailfleet.providers import get_preset
from mailfleet.providers.outcomes import OutcomeKind, Stage
from mailfleet.store import (
    Campaign,
    Database,
    Enrollment,
    EnrollmentStatus,
    Lead,
    Mailbox,
    MailboxStatus,
    Send,
    SendKind,
    SendStatus,
    Step,
    Suppression,
)
from mailfleet.store import repository as repo
from mailfleet.transport.oauth import TokenError
from mailfleet.transport.secrets import SecretBox
from mailfleet.transport.smtp import Delivery, SmtpPool, SubmitResult

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


def mailbox_policy(mailbox: Mailbox, now: datetime | None = None) -> MailboxPolicy:
    """The admission policy of a stored mailbox: provider limits plus its own knobs.

    While the mailbox is slowed (``rate_factor`` until ``slowed_until``, compared with
    ``now``), its per-minute limit is multiplied by the factor and its gap divided by it.
    """
    preset = get_preset(mailbox.provider)
    limits = preset.limits
    if mailbox.max_per_minute is not None and limits.messages_per_minute is not None:
        limits = replace(
            limits, messages_per_minute=min(limits.messages_per_minute, mailbox.max_per_minute)
        )
    policy = MailboxPolicy(
        mailbox_id=mailbox.id,
        limits=limits,
        ramp_start=mailbox.ramp_start,
        daily_cap=mailbox.daily_cap,
    )
    if mailbox.min_gap_seconds is not None:
        gap = timedelta(seconds=mailbox.min_gap_seconds)
        policy = replace(policy, min_gap=gap, max_jitter=gap * 0.5)
    factor = mailbox.rate_factor
    slowed = mailbox.slowed_until is not None and (now is None or mailbox.slowed_until > now)
    if factor is not None and 0 < factor < 1 and slowed:
        per_minute = limits.messages_per_minute
        if per_minute is not None:
            limits = replace(limits, messages_per_minute=max(1, int(per_minute * factor)))
        policy = replace(
            policy,
            limits=limits,
            min_gap=policy.min_gap / factor,
            max_jitter=policy.max_jitter / factor,
        )
    return policy


class Engine:
    """Runs campaigns on a clock against a store and the mailboxes' servers."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        box: SecretBox,
        *,
        public_url: str,
        unsubscribe_key: bytes,
        http: httpx.AsyncClient | None = None,
        batch: int = 2000,
        concurrency: int = 32,
        idle_wake: timedelta = timedelta(minutes=15),
        seed: int | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.pool = SmtpPool(clock)
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=30)
        self.credentials = CredentialCache(
            box, clock, self.http, store=DatabaseCredentialStore(db, clock)
        )
        self.composer = Composer(public_url, unsubscribe_key)
        self._batch = batch
        self._semaphore = asyncio.Semaphore(concurrency)
        self._idle_wake = idle_wake
        self._random = random.Random(seed)

    async def close(self) -> None:
        """Close every SMTP session and the HTTP client the engine made."""
        await self.pool.close_all()
        if self._own_http:
            await self.http.aclose()

    async def recover(self) -> int:
        """Mark sends left ``claimed`` by a crash as ``unknown``; never resend them blindly."""
        now = self.clock.now()
        async with self.db.session() as session:
            rows = (
                await session.scalars(select(Send).where(Send.status == SendStatus.CLAIMED))
            ).all()
            for send in rows:
                send.status = SendStatus.UNKNOWN
                send.finished_at = now
                send.error = "process stopped between claim and outcome; reconcile before resending"
                repo.add_event(
                    session,
                    workspace_id=send.workspace_id,
                    at=now,
                    kind="send.unknown",
                    message=send.error,
                    send_id=send.id,
                    mailbox_id=send.mailbox_id,
                    enrollment_id=send.enrollment_id,
                )
            return len(rows)

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
            wake = report.wake_at or (now + self._idle_wake)
            if report.planned == 0:
                wake = max(wake, now + timedelta(seconds=1))
            wake = min(wake, now + self._idle_wake, end)
            if wake > now:
                await self.pool.close_idle()
                await self.clock.sleep((wake - now).total_seconds())
        return reports

    async def tick(self) -> TickReport:
        """Plan and make the sends that are due now."""
        now = self.clock.now()
        report = TickReport(at=now)
        async with self.db.session() as session:
            campaigns = await repo.active_campaigns(session)
            if not campaigns:
                return report
            campaign_ids = [c.id for c in campaigns]
            workspace_ids = {c.workspace_id for c in campaigns}
            mailboxes = (
                await session.scalars(
                    select(Mailbox).where(Mailbox.workspace_id.in_(workspace_ids))
                )
            ).all()
            resume_expired(session, mailboxes, now)
            states: list[MailboxState] = []
            for box in mailboxes:
                day_start = local_day(now, box.timezone)[1] - timedelta(days=1)
                counts = await repo.usage_counts(session, box.id, now, day_start)
                states.append(
                    MailboxState(
                        mailbox_id=box.id,
                        policy=mailbox_policy(box, now),
                        usage=MailboxUsage(
                            cold_today=counts.cold_today,
                            messages_last_minute=counts.messages_last_minute,
                            oldest_in_last_minute=counts.oldest_in_last_minute,
                            messages_24h=counts.messages_24h,
                            recipients_24h=counts.recipients_24h,
                            oldest_in_24h=counts.oldest_in_24h,
                            last_send_at=counts.last_send_at,
                            last_send_id=counts.last_send_id,
                        ),
                        timezone=box.timezone,
                        active=box.status == MailboxStatus.ACTIVE
                        and (box.paused_until is None or box.paused_until <= now),
                    )
                )
            campaign_states = []
            for c in campaigns:
                window = SendingWindow(
                    timezone=c.timezone,
                    days=frozenset(c.window_days),
                    start_minute=c.window_start_minute,
                    end_minute=c.window_end_minute,
                )
                day_start = local_day(now, c.timezone)[1] - timedelta(days=1)
                campaign_states.append(
                    CampaignState(
                        campaign_id=c.id,
                        window=window,
                        step_count=len(c.steps),
                        use_lead_timezone=c.use_lead_timezone,
                        daily_cap=c.daily_cap,
                        sent_today=await repo.campaign_cold_today(session, c.id, day_start)
                        if c.daily_cap
                        else 0,
                        mailbox_ids=frozenset(
                            b.id
                            for b in mailboxes
                            if b.workspace_id == c.workspace_id
                            and (not c.mailbox_tags or set(c.mailbox_tags) & set(b.tags or []))
                        ),
                    )
                )
            rows = (
                await session.execute(repo.due_enrollments_query(campaign_ids, now, self._batch))
            ).all()
            due = [
                DueEnrollment(
                    enrollment_id=e.id,
                    campaign_id=e.campaign_id,
                    step=e.next_step,
                    due_at=e.next_due_at or now,
                    mailbox_id=e.mailbox_id,
                    lead_timezone=lead.timezone,
                )
                for e, lead in rows
            ]
            future = await repo.next_due_after(session, campaign_ids, now)
            # A held, slowed or paused mailbox changes the plan when that ends: wake then.
            for box in mailboxes:
                for until in (box.paused_until, box.slowed_until):
                    if until is not None and until > now and (future is None or until < future):
                        future = until
        plan = plan_sends(now, campaign_states, states, due)
        report.planned = len(plan.sends)
        report.wake_at = min((t for t in (plan.wake_at, future) if t is not None), default=None)
        if not plan.sends:
            return report
        by_id = {c.id: c for c in campaigns}
        boxes = {b.id: b for b in mailboxes}
        claims = await self._claim(plan.sends, by_id, boxes, now, report)
        results = await asyncio.gather(*(self._deliver(c) for c in claims))
        await self._record(list(zip(claims, results, strict=True)), by_id, report)
        return report

    async def _claim(
        self,
        planned: list[PlannedSend],
        campaigns: dict[int, Campaign],
        boxes: dict[int, Mailbox],
        now: datetime,
        report: TickReport,
    ) -> list[_Claim]:
        """Write each send with its Message-ID and mark its enrollment in flight, then commit."""
        claims: list[_Claim] = []
        async with self.db.session() as session:
            for item in planned:
                enrollment = await session.get(Enrollment, item.enrollment_id)
                if enrollment is None or enrollment.status != EnrollmentStatus.ACTIVE:
                    continue
                lead = await session.get(Lead, enrollment.lead_id)
                campaign = campaigns[item.campaign_id]
                mailbox = boxes[item.mailbox_id]
                assert lead is not None
                if await self._suppressed(session, lead):
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
                send = await self._send_row(session, enrollment, step, mailbox, campaign, now)
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
                except Exception as exc:  # a template that rendered at save time but not now
                    report.errors.append(f"{lead.email} step {step.position}: {exc}")
                    enrollment.status = EnrollmentStatus.STOPPED
                    enrollment.stop_reason = f"cannot render step {step.position}: {exc}"
                    enrollment.next_due_at = None
                    send.status = SendStatus.FAILED
                    send.error = str(exc)
                    continue
                send.subject = composed.subject
                send.in_reply_to = composed.in_reply_to
                send.status = SendStatus.CLAIMED
                send.claimed_at = now
                send.attempts += 1
                enrollment.next_due_at = None  # in flight: never planned twice
                enrollment.mailbox_id = mailbox.id
                enrollment.updated_at = now
                await session.flush()
                claims.append(
                    _Claim(send.id, item, mailbox, mailbox.address, lead.email, composed.raw)
                )
        return claims

    async def _send_row(
        self,
        session: AsyncSession,
        enrollment: Enrollment,
        step: Step,
        mailbox: Mailbox,
        campaign: Campaign,
        now: datetime,
    ) -> Send:
        """The Send row of this step: a retry reuses it, and with it the Message-ID."""
        existing = await session.scalar(
            select(Send).where(
                Send.enrollment_id == enrollment.id, Send.step_position == step.position
            )
        )
        if existing is not None:
            if existing.mailbox_id != mailbox.id:
                # A first step moved to another mailbox: new sender, new Message-ID domain.
                existing.mailbox_id = mailbox.id
                existing.from_address = mailbox.address
                existing.message_id = self.composer.new_message_id(mailbox)
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
            to_address="",
            recipients=1,
            subject="",
            status=SendStatus.CLAIMED,
            attempts=0,
            claimed_at=now,
        )
        lead = await session.get(Lead, enrollment.lead_id)
        assert lead is not None
        send.to_address = lead.email
        session.add(send)
        return send

    @staticmethod
    async def _suppressed(session: AsyncSession, lead: Lead) -> bool:
        domain = lead.email_normalized.rpartition("@")[2]
        hit = await session.scalar(
            select(Suppression.id)
            .where(
                Suppression.workspace_id == lead.workspace_id,
                ((Suppression.kind == "email") & (Suppression.value == lead.email_normalized))
                | ((Suppression.kind == "domain") & (Suppression.value == domain)),
            )
            .limit(1)
        )
        return hit is not None

    async def _deliver(self, claim: _Claim) -> SubmitResult:
        """Submit one claimed message on its mailbox's session."""
        async with self._semaphore:
            try:
                endpoint = self.credentials.endpoint(claim.mailbox)
                creds = self.credentials.credentials(claim.mailbox)
            except CredentialError as exc:
                return SubmitResult(Delivery.REFUSED, Stage.TOKEN, None, str(exc), error=exc)
            connection = self.pool.connection(claim.mailbox.id, endpoint, creds)
            result = await connection.submit(claim.envelope_from, [claim.recipient], claim.raw)
            outcome = classify(result, claim.mailbox.provider, claim.mailbox.address)
            if outcome.refresh_token_first and creds.tokens is not None:
                # 535 5.7.3 often means a token that just died: renew it and try once more.
                try:
                    await creds.tokens.access_token(force_refresh=True)
                except TokenError as exc:
                    return SubmitResult(Delivery.REFUSED, Stage.TOKEN, None, str(exc), error=exc)
                await connection.close()
                result = await connection.submit(claim.envelope_from, [claim.recipient], claim.raw)
            return result

    async def _record(
        self,
        outcomes: list[tuple[_Claim, SubmitResult]],
        campaigns: dict[int, Campaign],
        report: TickReport,
    ) -> None:
        """Store each outcome with the server's reply and move its enrollment on."""
        now = self.clock.now()
        async with self.db.session() as session:
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
                    self._advance(enrollment, campaign, send, now)
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
        return None

    def _advance(
        self, enrollment: Enrollment, campaign: Campaign, send: Send, now: datetime
    ) -> None:
        step_no = send.step_position or enrollment.next_step
        if step_no == 1 or enrollment.thread_message_id is None:
            enrollment.thread_message_id = send.message_id
            enrollment.thread_subject = send.subject
        references = list(enrollment.references or [])
        references.append(send.message_id)
        enrollment.references = references[-20:]
        enrollment.last_message_id = send.message_id
        enrollment.updated_at = now
        following = next((s for s in campaign.steps if s.position == step_no + 1), None)
        if following is None:
            enrollment.status = EnrollmentStatus.COMPLETED
            enrollment.next_due_at = None
            enrollment.next_step = step_no + 1
            return
        enrollment.next_step = following.position
        enrollment.next_due_at = add_delay(
            now, following.delay_days, business_days=following.business_days, tz=campaign.timezone
        )
