"""Turning one classified inbound message into store changes, exactly once per mailbox.

:func:`record_inbound` is called by the sync inside the transaction that also
moves the folder's high-water mark, so a message is either fully recorded (row,
event, stops, suppressions, pause) or not at all and read again. It:

1. skips a message this mailbox already recorded (same Message-ID, or same bytes
   when there is none) — a UIDVALIDITY resync or a Junk rescue sees it twice;
2. matches it to our send: by the ids it carries (the returned original's
   Message-ID, ``In-Reply-To``, ``References``) against ``Send.message_id``, then
   by the bounced or complaining address, then by the sender plus the thread's
   subject, then by the sender alone when it is a lead this mailbox wrote to;
3. applies :func:`mailfleet.inbox.decide`'s decision in :func:`apply_decision`:
   stops and suppressions through the sequencer's :func:`~mailfleet.services.stops.stop_lead`
   (its rules, with the campaign's ``stop`` settings, say which sequences end), and
   the out-of-office pause through :func:`pause_sequence`;
4. stores an ``inbound_message`` row and an ``inbound.<kind>`` event linked to the
   mailbox, campaign, enrollment, lead and send.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.inbound.result import Classification, Kind
from mailfleet.inbox import (
    Decision,
    FolderRole,
    InboxPolicy,
    candidate_ids,
    decide,
    dedupe_key,
    message_id_key,
    subject_key,
)
from mailfleet.inbox.threads import addresses_of
from mailfleet.services.stops import StopReason, stop_lead
from mailfleet.services.unsubscribe import unsubscribe_lead
from mailfleet.store import (
    Campaign,
    Enrollment,
    EnrollmentStatus,
    InboundMessage,
    Lead,
    Send,
)
from mailfleet.store import repository as repo


@dataclass(frozen=True, slots=True)
class MailboxRef:
    """The mailbox a message was read from (plain values, usable across sessions)."""

    id: int
    workspace_id: int
    address: str


@dataclass(frozen=True, slots=True)
class Match:
    """Our send, sequence and lead an inbound message belongs to, and how that was found."""

    how: str  # in-reply-to, references, original, recipient, sender-subject, sender
    send_id: int | None = None
    enrollment_id: int | None = None
    lead_id: int | None = None
    campaign_id: int | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording one message did."""

    inbound_id: int
    kind: Kind
    match: Match | None
    decision: Decision
    stopped: int
    suppressed: int


# -- matching ----------------------------------------------------------------------------------


async def _match_by_ids(
    session: AsyncSession, workspace_id: int, result: Classification
) -> Match | None:
    ids = candidate_ids(result)
    if not ids:
        return None
    rows = (
        await session.execute(
            select(Send.message_id, Send.id, Send.enrollment_id, Send.campaign_id).where(
                Send.workspace_id == workspace_id, Send.message_id.in_(ids)
            )
        )
    ).all()
    if not rows:
        return None
    by_id = {row[0]: row for row in rows}
    best = next(i for i in ids if i in by_id)
    _, send_id, enrollment_id, campaign_id = by_id[best]
    lead_id = None
    if enrollment_id is not None:
        lead_id = await session.scalar(
            select(Enrollment.lead_id).where(Enrollment.id == enrollment_id)
        )
    if best == message_id_key(result.original_message_id):
        how = "original"
    elif best == message_id_key(result.in_reply_to):
        how = "in-reply-to"
    else:
        how = "references"
    return Match(how, send_id, enrollment_id, lead_id, campaign_id)


async def _leads(session: AsyncSession, workspace_id: int, addresses: Sequence[str]) -> list[Lead]:
    if not addresses:
        return []
    found = (
        await session.scalars(
            select(Lead).where(
                Lead.workspace_id == workspace_id, Lead.email_normalized.in_(list(addresses))
            )
        )
    ).all()
    order = {address: i for i, address in enumerate(addresses)}
    return sorted(found, key=lambda lead: order.get(lead.email_normalized, len(order)))


async def _latest_send(
    session: AsyncSession, mailbox_id: int, lead: Lead
) -> tuple[int, int | None, int | None] | None:
    row = (
        await session.execute(
            select(Send.id, Send.enrollment_id, Send.campaign_id)
            .join(Enrollment, Enrollment.id == Send.enrollment_id)
            .where(Send.mailbox_id == mailbox_id, Enrollment.lead_id == lead.id)
            .order_by(Send.claimed_at.desc(), Send.id.desc())
            .limit(1)
        )
    ).first()
    return (row[0], row[1], row[2]) if row is not None else None


async def find_match(
    session: AsyncSession, mailbox: MailboxRef, result: Classification
) -> Match | None:
    """Our send, sequence and lead for ``result``, or None when nothing ties it to us."""
    by_ids = await _match_by_ids(session, mailbox.workspace_id, result)
    if by_ids is not None:
        return by_ids
    named: list[str] = []
    if result.kind in (Kind.BOUNCE, Kind.DELIVERED, Kind.COMPLAINT):
        complainant = result.complaint.original_recipient if result.complaint else None
        named = addresses_of([complainant, *(r.address for r in result.recipients)])
        for lead in await _leads(session, mailbox.workspace_id, named):
            send = await _latest_send(session, mailbox.id, lead)
            if send is not None:
                return Match("recipient", send[0], send[1], lead.id, send[2])
            return Match("recipient", lead_id=lead.id)
        return None
    senders = addresses_of([result.from_address])
    leads = await _leads(session, mailbox.workspace_id, senders)
    if not leads:
        return None
    lead = leads[0]
    enrollments = (
        await session.scalars(
            select(Enrollment)
            .where(Enrollment.lead_id == lead.id)
            .order_by(Enrollment.updated_at.desc(), Enrollment.id.desc())
        )
    ).all()
    wanted = subject_key(result.thread_subject or result.subject)
    if wanted:
        for enrollment in sorted(enrollments, key=lambda e: e.mailbox_id != mailbox.id):
            if subject_key(enrollment.thread_subject) == wanted:
                send = await session.scalar(
                    select(Send.id)
                    .where(Send.enrollment_id == enrollment.id)
                    .order_by(Send.claimed_at.desc(), Send.id.desc())
                    .limit(1)
                )
                return Match("sender-subject", send, enrollment.id, lead.id, enrollment.campaign_id)
    send = await _latest_send(session, mailbox.id, lead)
    if send is not None:
        return Match("sender", send[0], send[1], lead.id, send[2])
    return Match("sender", lead_id=lead.id)


# -- actions (the one place sequence state is changed from inbound mail) --------------------------


async def pause_sequence(
    session: AsyncSession, enrollment_id: int, until: datetime, now: datetime
) -> datetime | None:
    """Hold an active sequence's next step until ``until``; the planner resumes it then."""
    enrollment = await session.get(Enrollment, enrollment_id)
    if enrollment is None or enrollment.status != EnrollmentStatus.ACTIVE:
        return None
    if enrollment.next_due_at is None:
        return None  # in flight right now, or nothing left to send
    if enrollment.next_due_at >= until:
        return enrollment.next_due_at
    enrollment.next_due_at = until
    enrollment.updated_at = now
    return until


@dataclass(slots=True)
class Applied:
    """What applying a decision changed."""

    stopped: list[int]
    company_stopped: list[int]
    suppressed: int
    paused_until: datetime | None = None


async def apply_decision(
    session: AsyncSession,
    *,
    workspace_id: int,
    decision: Decision,
    match: Match | None,
    now: datetime,
) -> Applied:
    """Stop, suppress or pause through the one writer of stops (:mod:`mailfleet.services`)."""
    applied = Applied([], [], 0)
    if decision.stop is None:
        return applied
    reason = StopReason(decision.stop)
    lead_id = match.lead_id if match is not None else None
    campaign_id = match.campaign_id if match is not None else None
    targets: list[tuple[int | None, str | None]] = []
    if decision.token is not None:
        if decision.token.workspace_id != workspace_id:
            return applied  # signed for another workspace: not this mailbox's lead
        targets.append((decision.token.lead_id, None))
    elif lead_id is not None:
        targets.append((lead_id, None))
    targets += [(None, named) for named in decision.addresses]  # the report's own recipients
    for target_lead, address in targets:
        if reason is StopReason.UNSUBSCRIBE:
            done = await unsubscribe_lead(
                session,
                workspace_id=workspace_id,
                source="mailto" if decision.token is not None else "reply",
                at=now,
                lead_id=target_lead,
                email=address,
                campaign_id=campaign_id,
            )
            applied.stopped += [i for i in done.stopped if i not in applied.stopped]
            applied.suppressed += int(done.suppressed)
            continue
        result = await stop_lead(
            session,
            workspace_id=workspace_id,
            reason=reason,
            at=now,
            lead_id=target_lead,
            email=address,
            campaign_id=campaign_id,
            detail=decision.detail,
        )
        applied.stopped += [i for i in result.stopped if i not in applied.stopped]
        applied.company_stopped += result.company_stopped
        applied.suppressed += int(result.suppressed)
    if (
        reason is StopReason.AUTO_REPLY
        and decision.pause_until is not None
        and match is not None
        and match.enrollment_id is not None
        and match.enrollment_id not in applied.stopped
    ):
        applied.paused_until = await pause_sequence(
            session, match.enrollment_id, decision.pause_until, now
        )
    return applied


# -- recording ------------------------------------------------------------------------------------


async def already_recorded(session: AsyncSession, mailbox_id: int, key: str) -> bool:
    """Whether this mailbox already recorded the message with ``key``."""
    found = await session.scalar(
        select(InboundMessage.id).where(
            InboundMessage.mailbox_id == mailbox_id, InboundMessage.dedupe_key == key
        )
    )
    return found is not None


async def record_inbound(
    session: AsyncSession,
    *,
    mailbox: MailboxRef,
    folder: str,
    role: FolderRole,
    source: str,
    raw: bytes,
    result: Classification,
    received_at: datetime | None,
    now: datetime,
    policy: InboxPolicy | None = None,
) -> Recorded | None:
    """Record and act on one message; None when this mailbox has already seen it."""
    key = dedupe_key(result.message_id, raw)
    if await already_recorded(session, mailbox.id, key):
        return None
    match = await find_match(session, mailbox, result)
    campaign = (
        await session.get(Campaign, match.campaign_id)
        if match is not None and match.campaign_id is not None
        else None
    )
    decision = decide(
        result,
        now=now,
        folder=role,
        campaign_settings=dict(campaign.settings or {}) if campaign is not None else None,
        campaign_timezone=campaign.timezone if campaign is not None else "UTC",
        policy=policy,
    )
    applied = await apply_decision(
        session, workspace_id=mailbox.workspace_id, decision=decision, match=match, now=now
    )
    data: dict[str, Any] = {}
    if applied.stopped:
        data["stopped"] = applied.stopped
    if applied.company_stopped:
        data["company_stopped"] = applied.company_stopped
    if applied.paused_until is not None:
        data["paused_until"] = applied.paused_until.isoformat()
    if result.recipients:
        data["recipients"] = [
            {
                "address": r.address,
                "action": str(r.action),
                "status": r.status,
                "hard": r.hard,
                "reason": str(r.reason) if r.reason else None,
            }
            for r in result.recipients[:20]
        ]
    if decision.move_to_inbox:
        data["moved_to_inbox"] = True
    first = next((r for r in result.recipients if r.status), None)
    row = InboundMessage(
        workspace_id=mailbox.workspace_id,
        mailbox_id=mailbox.id,
        dedupe_key=key,
        message_id=result.message_id[:998] if result.message_id else None,
        folder=folder[:500],
        source=source[:200],
        kind=str(result.kind),
        from_address=(result.from_address or "")[:320],
        from_name=(result.from_name or "")[:200],
        subject=result.subject[:2000],
        text=result.text[:20_000],
        received_at=received_at or result.date or now,
        synced_at=now,
        send_id=match.send_id if match else None,
        enrollment_id=match.enrollment_id if match else None,
        lead_id=match.lead_id if match else None,
        campaign_id=match.campaign_id if match else None,
        matched_by=match.how if match else None,
        hard=decision.hard_bounce if result.kind is Kind.BOUNCE else None,
        status=first.status[:16] if first and first.status else None,
        return_date=result.return_date,
        data=data,
    )
    session.add(row)
    await session.flush()
    event = repo.add_event(
        session,
        workspace_id=mailbox.workspace_id,
        at=now,
        kind=f"inbound.{result.kind}",
        message=_describe(result, decision, match),
        mailbox_id=mailbox.id,
        campaign_id=row.campaign_id,
        enrollment_id=row.enrollment_id,
        lead_id=row.lead_id,
        send_id=row.send_id,
    )
    event.data = {"inbound_message_id": row.id, "folder": folder, **data}
    stopped = len(applied.stopped) + len(applied.company_stopped)
    return Recorded(row.id, result.kind, match, decision, stopped, applied.suppressed)


def _describe(result: Classification, decision: Decision, match: Match | None) -> str:
    who = result.from_address or "unknown sender"
    parts = [f"{result.kind} from {who}"]
    if decision.hard_bounce:
        parts.append("hard bounce: address suppressed")
    elif decision.soft_bounce:
        parts.append("soft bounce: counted")
    if decision.pause_until:
        parts.append(f"out of office until {decision.pause_until.date().isoformat()}")
    if match is None:
        parts.append("not matched to a send")
    return "; ".join(parts)
