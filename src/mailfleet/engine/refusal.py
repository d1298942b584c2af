"""Applying a refused submission's :class:`~mailfleet.engine.reaction.Reaction` to the store.

The engine's rows move together in the session of the tick that recorded the
outcome: the send (failed or deferred), its enrollment (ended, moved or waiting),
the mailbox (held, slowed or paused — or every mailbox of its tenant) and the
workspace's suppression list. :func:`resume_expired` undoes holds, slowdowns and
timed pauses once their time has come. What each outcome means is decided in
:mod:`mailfleet.engine.reaction`; this module only writes it down.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.engine.reaction import (
    ESCALATE_AFTER,
    ROLLING_WINDOW,
    SLOW_FOR,
    Reaction,
    backoff,
    lowered_rate,
    window_frees_at,
)
from mailfleet.store import (
    Campaign,
    Enrollment,
    EnrollmentStatus,
    Mailbox,
    MailboxStatus,
    Send,
    SendStatus,
    Suppression,
)
from mailfleet.store import repository as repo


async def apply_refusal(
    session: AsyncSession,
    reaction: Reaction,
    send: Send,
    enrollment: Enrollment,
    mailbox: Mailbox,
    campaign: Campaign,
    now: datetime,
    rng: random.Random,
) -> None:
    """Record a refused send and move its enrollment and mailbox as ``reaction`` says."""
    send.error = reaction.message
    links: dict[str, int | None] = {
        "mailbox_id": mailbox.id,
        "campaign_id": campaign.id,
        "enrollment_id": enrollment.id,
        "lead_id": enrollment.lead_id,
        "send_id": send.id,
    }
    if not reaction.deferred:
        send.status = SendStatus.FAILED
        enrollment.status = (
            EnrollmentStatus.BOUNCED if reaction.drop_recipient else EnrollmentStatus.STOPPED
        )
        enrollment.stop_reason = reaction.message
        enrollment.next_due_at = None
        if reaction.suppress:
            await _suppress(session, campaign.workspace_id, send.to_address, now)
    else:
        send.status = SendStatus.DEFERRED
        resume_at = await stop_mailbox(session, reaction, mailbox, send, now, rng)
        if not (reaction.hold_mailbox or reaction.pause_mailbox):
            # Only this message backs off (the recipient's side was at fault), from the same
            # mailbox: a greylisting server expects the same sender back.
            delay = reaction.retry_after or backoff(send.attempts, reaction.backoff_base, rng)
            enrollment.next_due_at = now + delay
        elif send.step_position == 1:
            # The mailbox stopped, not the message: another mailbox may open the thread now.
            enrollment.mailbox_id = None
            enrollment.next_due_at = now
        else:
            # A follow-up stays in its thread's mailbox and waits for it.
            enrollment.next_due_at = resume_at or now
    enrollment.updated_at = now
    repo.add_event(
        session,
        workspace_id=campaign.workspace_id,
        at=now,
        kind=f"send.{send.status}",
        message=reaction.message,
        **links,
    )


async def stop_mailbox(
    session: AsyncSession,
    reaction: Reaction,
    mailbox: Mailbox,
    send: Send,
    now: datetime,
    rng: random.Random,
) -> datetime | None:
    """Hold, slow or pause the mailbox (or its tenant); return when it may send again."""
    if reaction.pause_tenant and mailbox.tenant:
        targets = list(
            (
                await session.scalars(
                    select(Mailbox).where(
                        Mailbox.workspace_id == mailbox.workspace_id,
                        Mailbox.tenant == mailbox.tenant,
                    )
                )
            ).all()
        )
        oldest = await _oldest_counted(session, [m.id for m in targets], now)
        frees = window_frees_at(oldest, now, reaction.retry_after)
        for target in targets:
            await _pause(session, target, reaction.message, frees, now, send.id)
        return frees
    if reaction.pause_mailbox:
        until: datetime | None = None
        if reaction.until_window_frees:
            oldest = await _oldest_counted(session, [mailbox.id], now)
            until = window_frees_at(oldest, now, reaction.retry_after)
        await _pause(session, mailbox, reaction.message, until, now, send.id)
        return until
    if not reaction.hold_mailbox or mailbox.status != MailboxStatus.ACTIVE:
        return mailbox.paused_until
    mailbox.failure_streak = (mailbox.failure_streak or 0) + 1
    streak = mailbox.failure_streak
    if streak >= ESCALATE_AFTER:
        reason = f"{streak} transient failures in a row; the last: {reaction.message}"
        await _pause(session, mailbox, reason, None, now, send.id)
        return None
    if reaction.rate_factor < 1.0:
        mailbox.rate_factor = lowered_rate(mailbox.rate_factor, reaction.rate_factor)
        mailbox.slowed_until = now + SLOW_FOR
    hold = reaction.retry_after or backoff(streak, reaction.backoff_base, rng)
    current = mailbox.paused_until
    mailbox.paused_until = max(now + hold, current) if current is not None else now + hold
    detail = f"held until {mailbox.paused_until.isoformat()} (failure {streak} in a row)"
    if mailbox.rate_factor is not None:
        detail += f", rate × {mailbox.rate_factor:g} until {mailbox.slowed_until}"
    repo.add_event(
        session,
        workspace_id=mailbox.workspace_id,
        at=now,
        kind="mailbox.slowed" if reaction.rate_factor < 1.0 else "mailbox.backoff",
        message=f"{detail}: {reaction.message}",
        mailbox_id=mailbox.id,
        send_id=send.id,
    )
    return mailbox.paused_until


async def _pause(
    session: AsyncSession,
    mailbox: Mailbox,
    reason: str,
    until: datetime | None,
    now: datetime,
    send_id: int,
) -> None:
    """Pause ``mailbox`` (until a person acts when ``until`` is None); free its first steps."""
    if mailbox.status != MailboxStatus.ACTIVE:
        return
    mailbox.status = MailboxStatus.PAUSED
    mailbox.status_reason = reason
    mailbox.paused_until = until
    # First steps queued for this mailbox may open their thread from another one.
    await session.execute(
        update(Enrollment)
        .where(
            Enrollment.mailbox_id == mailbox.id,
            Enrollment.next_step == 1,
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
        .values(mailbox_id=None)
        .execution_options(synchronize_session="fetch")
    )
    repo.add_event(
        session,
        workspace_id=mailbox.workspace_id,
        at=now,
        kind="mailbox.paused",
        message=reason if until is None else f"until {until.isoformat()}: {reason}",
        mailbox_id=mailbox.id,
        send_id=send_id,
    )


async def _oldest_counted(
    session: AsyncSession, mailbox_ids: Sequence[int], now: datetime
) -> datetime | None:
    """The earliest send of these mailboxes still counted in the rolling 24 hours."""
    value = await session.scalar(
        select(func.min(Send.claimed_at)).where(
            Send.mailbox_id.in_(list(mailbox_ids)),
            Send.status.in_(repo.COUNTED),
            Send.claimed_at > now - ROLLING_WINDOW,
        )
    )
    if value is None:
        return None
    if isinstance(value, str):  # SQLite aggregates bypass the column type
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def _suppress(session: AsyncSession, workspace_id: int, address: str, now: datetime) -> None:
    value = address.strip().lower()
    exists = await session.scalar(
        select(Suppression.id).where(
            Suppression.workspace_id == workspace_id,
            Suppression.kind == "email",
            Suppression.value == value,
        )
    )
    if exists is None:
        session.add(
            Suppression(
                workspace_id=workspace_id,
                kind="email",
                value=value,
                reason="hard_bounce",
                created_at=now,
            )
        )


def resume_expired(session: AsyncSession, mailboxes: Sequence[Mailbox], now: datetime) -> None:
    """End holds, slowdowns and timed pauses whose time has come."""
    for box in mailboxes:
        if box.slowed_until is not None and box.slowed_until <= now:
            box.slowed_until = None
            box.rate_factor = None
            repo.add_event(
                session,
                workspace_id=box.workspace_id,
                at=now,
                kind="mailbox.rate_restored",
                message="the slowdown ended; full rate again",
                mailbox_id=box.id,
            )
        expired = box.paused_until is not None and box.paused_until <= now
        if not expired:
            continue
        box.paused_until = None
        if box.status == MailboxStatus.PAUSED:
            box.status = MailboxStatus.ACTIVE
            box.status_reason = None
            repo.add_event(
                session,
                workspace_id=box.workspace_id,
                at=now,
                kind="mailbox.resumed",
                message="pause expired",
                mailbox_id=box.id,
            )
