"""Sends a person must decide: list the ``unknown`` ones, resolve one.

A send is ``unknown`` when the server may have accepted it and its Message-ID was not
found in the mailbox's Sent folder (or the folder could not be read). mailfleet never
resends it by itself; a running process looks it up again every half hour. A person
resolves it with :func:`resolve`:

* ``sent`` — it did arrive: the lead's sequence continues as after any accepted send
  (the next step threaded to it, due after its delay);
* ``resend`` — it did not: it goes out again with the same Message-ID (receivers that
  got it after all see the same message twice at most once), when the lead is still active;
* ``skip`` — leave it: the step counts as not sent and the sequence moves to the next
  step, unthreaded to it.

Each decision records a ``send.resolved`` event with who decided and how.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from mailfleet.engine.sequence import advance, schedule_next
from mailfleet.services.errors import ServiceError
from mailfleet.store import (
    Campaign,
    Database,
    Enrollment,
    EnrollmentStatus,
    Mailbox,
    Send,
    SendKind,
    SendStatus,
    Workspace,
)
from mailfleet.store import repository as repo

Decision = Literal["sent", "resend", "skip"]


@dataclass(frozen=True, slots=True)
class UnknownSend:
    """One send whose fate is not known."""

    id: int
    workspace: str
    at: datetime
    mailbox: str
    to: str
    campaign: str | None
    step: int | None
    message_id: str
    reconciled_at: datetime | None
    why: str | None


@dataclass(frozen=True, slots=True)
class Resolved:
    """What resolving one send did."""

    send_id: int
    decision: Decision
    status: str  # the send's status now
    enrollment_status: str | None
    next_due_at: datetime | None  # when the lead's next step (or the resend) is due


async def unknown_sends(db: Database, workspace_slug: str | None = None) -> list[UnknownSend]:
    """Every ``unknown`` send, oldest first."""
    async with db.session() as session:
        query = (
            select(Send, Mailbox.address, Campaign.name, Workspace.slug)
            .join(Mailbox, Mailbox.id == Send.mailbox_id)
            .join(Workspace, Workspace.id == Send.workspace_id)
            .outerjoin(Campaign, Campaign.id == Send.campaign_id)
            .where(Send.status == SendStatus.UNKNOWN)
            .order_by(Send.claimed_at, Send.id)
        )
        if workspace_slug is not None:
            query = query.where(Workspace.slug == workspace_slug)
        return [
            UnknownSend(
                send.id,
                slug,
                send.claimed_at,
                address,
                send.to_address,
                name,
                send.step_position,
                send.message_id,
                send.reconciled_at,
                send.error,
            )
            for send, address, name, slug in (await session.execute(query)).all()
        ]


async def resolve(
    db: Database, send_id: int, decision: Decision, *, at: datetime, by: str = "cli"
) -> Resolved:
    """Settle an ``unknown`` send as ``decision`` says; the lead's sequence goes on."""
    async with db.session() as session:
        send = await session.get(Send, send_id)
        if send is None:
            raise ServiceError(f"no send {send_id}; `mailfleet sends unknown` lists them")
        if send.status != SendStatus.UNKNOWN:
            raise ServiceError(
                f"send {send_id} is {send.status}, not unknown: only unknown sends are resolved"
            )
        if decision == "resend" and send.kind == SendKind.WARMUP:
            raise ServiceError(
                f"send {send_id} is a warmup message: warmup is never resent; "
                "use --sent or --skip (its slot is planned again)"
            )
        enrollment = (
            await session.get(Enrollment, send.enrollment_id) if send.enrollment_id else None
        )
        campaign = None
        if send.campaign_id is not None:
            campaign = await session.scalar(
                select(Campaign)
                .where(Campaign.id == send.campaign_id)
                .options(selectinload(Campaign.steps))
            )
        _apply(send, enrollment, campaign, decision, at, by)
        repo.add_event(
            session,
            workspace_id=send.workspace_id,
            at=at,
            kind="send.resolved",
            message=f"{send.message_id} resolved as {decision} by {by}",
            mailbox_id=send.mailbox_id,
            campaign_id=send.campaign_id,
            enrollment_id=send.enrollment_id,
            lead_id=enrollment.lead_id if enrollment else None,
            send_id=send.id,
        )
        return Resolved(
            send.id,
            decision,
            str(send.status),
            str(enrollment.status) if enrollment else None,
            enrollment.next_due_at if enrollment else None,
        )


def _apply(
    send: Send,
    enrollment: Enrollment | None,
    campaign: Campaign | None,
    decision: Decision,
    at: datetime,
    by: str,
) -> None:
    send.reconciled_at = at
    if decision == "sent":
        send.status = SendStatus.SENT
        send.outcome = "accepted"
        send.error = f"marked sent by {by}"
        if enrollment is not None and campaign is not None:
            # It left about when it was claimed: the next step counts from then.
            advance(enrollment, campaign, send, send.claimed_at)
        return
    if decision == "resend":
        # The claim picks this row up again (same Message-ID) once the lead is due.
        send.status = SendStatus.DEFERRED
        send.error = f"resend decided by {by}; goes out again with the same Message-ID"
        if enrollment is not None and enrollment.status == EnrollmentStatus.ACTIVE:
            enrollment.next_due_at = at
            enrollment.updated_at = at
        return
    send.status = SendStatus.FAILED
    send.outcome = "skipped"
    send.error = f"skipped by {by}: counted as not sent, never resent"
    if enrollment is not None and campaign is not None:
        schedule_next(enrollment, campaign, send.step_position or enrollment.next_step, at)
