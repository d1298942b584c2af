"""Stops: ending a lead's sequences, at once, when the lead or the world says so.

Inbound sync (a reply, an out-of-office, a bounce report, a complaint), the
unsubscribe endpoint and people call :func:`stop_lead`; it changes the store in
the caller's session, so the stop is committed with whatever observed it and
holds before the next tick — the engine plans only active enrollments, and a
send claimed before the stop is dropped when it would be submitted.

What each reason does (:data:`RULES`):

================  ==============  ========  ===============================================
reason            status          suppress  which sequences end
================  ==============  ========  ===============================================
reply             replied         no        all of the lead's, in every campaign
hard_bounce       bounced         yes       all of the lead's
complaint         stopped         yes       all of the lead's
unsubscribe       unsubscribed    yes       all of the lead's
manual            stopped         no        ``campaign_id``'s, else all of the lead's
auto_reply        stopped         no        those whose campaign stops ``on_auto_reply``
soft_bounce       bounced         no        those whose campaign stops ``on_bounce: any``
================  ==============  ========  ===============================================

Suppression is per workspace: the address is refused by every campaign, by
lead imports and by the engine at claim time. A reply also ends, with reason
``company_reply``, the sequences of the replier's colleagues — leads of the
workspace at the same company domain (free-mail domains are no company) —
in every campaign whose stop rules say ``on_company_reply``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.campaigns import StopRules
from mailfleet.limits import company_domain
from mailfleet.store import Campaign, Enrollment, EnrollmentStatus, Lead, Suppression
from mailfleet.store import repository as repo


class StopReason(enum.StrEnum):
    """Why a lead's sequence ends."""

    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    MANUAL = "manual"
    COMPANY_REPLY = "company_reply"  # a colleague replied (set by stop_lead itself)


@dataclass(frozen=True, slots=True)
class StopRule:
    """What one reason does: the status it leaves, whether it suppresses, which campaigns."""

    status: EnrollmentStatus
    suppress: bool
    applies: Callable[[StopRules], bool] | None = None  # None: every campaign


RULES: dict[StopReason, StopRule] = {
    StopReason.REPLY: StopRule(EnrollmentStatus.REPLIED, suppress=False),
    StopReason.HARD_BOUNCE: StopRule(EnrollmentStatus.BOUNCED, suppress=True),
    StopReason.COMPLAINT: StopRule(EnrollmentStatus.STOPPED, suppress=True),
    StopReason.UNSUBSCRIBE: StopRule(EnrollmentStatus.UNSUBSCRIBED, suppress=True),
    StopReason.MANUAL: StopRule(EnrollmentStatus.STOPPED, suppress=False),
    StopReason.AUTO_REPLY: StopRule(
        EnrollmentStatus.STOPPED, suppress=False, applies=lambda r: r.on_auto_reply
    ),
    StopReason.SOFT_BOUNCE: StopRule(
        EnrollmentStatus.BOUNCED, suppress=False, applies=lambda r: r.on_bounce == "any"
    ),
    StopReason.COMPANY_REPLY: StopRule(
        EnrollmentStatus.STOPPED, suppress=False, applies=lambda r: r.on_company_reply
    ),
}


@dataclass(slots=True)
class StopResult:
    """What a stop changed."""

    lead_id: int | None
    stopped: list[int] = field(default_factory=list)  # enrollment ids of the lead
    company_stopped: list[int] = field(default_factory=list)  # colleagues' enrollment ids
    suppressed: bool = False  # a new suppression entry was written


async def stop_lead(
    session: AsyncSession,
    *,
    workspace_id: int,
    reason: StopReason,
    at: datetime,
    lead_id: int | None = None,
    email: str | None = None,
    campaign_id: int | None = None,
    detail: str = "",
) -> StopResult:
    """End the sequences ``reason`` ends for a lead (by id or address) of ``workspace_id``.

    ``campaign_id`` is the campaign the observation belongs to (the thread replied
    to): rule-based reasons and ``manual`` then only end that campaign's sequence.
    ``detail`` (the bounce's status, the reply's subject…) goes into the reason and
    the event. Idempotent: stopping again changes nothing.
    """
    if (lead_id is None) == (email is None):
        raise ValueError("give exactly one of lead_id or email")
    rule = RULES[reason]
    query = select(Lead).where(Lead.workspace_id == workspace_id)
    if lead_id is not None:
        query = query.where(Lead.id == lead_id)
    else:
        assert email is not None
        query = query.where(Lead.email_normalized == email.strip().lower())
    lead = await session.scalar(query)
    address = lead.email_normalized if lead is not None else (email or "").strip().lower()
    result = StopResult(lead.id if lead is not None else None)
    if rule.suppress and address:
        result.suppressed = await _suppress(
            session, workspace_id, "email", address, reason.value, at
        )
    if lead is None:
        return result
    scoped = campaign_id if (rule.applies is not None or reason is StopReason.MANUAL) else None
    text = reason.value + (f": {detail}" if detail else "")
    result.stopped = await _end(
        session, [Enrollment.lead_id == lead.id], rule, scoped, text, at, workspace_id
    )
    if reason is StopReason.REPLY:
        company = lead.email_domain or company_domain(lead.email_normalized)
        if company is not None and company_domain(f"lead@{company}") is not None:
            colleague = (
                (Lead.workspace_id == workspace_id)
                & (Lead.id != lead.id)
                & or_(
                    Lead.email_domain == company,
                    # rows written before the column existed carry no domain
                    Lead.email_domain.is_(None) & Lead.email_normalized.like(f"%@{company}"),
                )
            )
            result.company_stopped = await _end(
                session,
                [Enrollment.lead_id.in_(select(Lead.id).where(colleague))],
                RULES[StopReason.COMPANY_REPLY],
                None,
                f"{StopReason.COMPANY_REPLY.value}: {lead.email} replied",
                at,
                workspace_id,
            )
    return result


async def suppress(
    session: AsyncSession,
    *,
    workspace_id: int,
    kind: Literal["email", "domain"],
    value: str,
    reason: str,
    at: datetime,
) -> StopResult:
    """Suppress an address or a whole domain (and its subdomains) and end every sequence to it."""
    value = value.strip().lower()
    result = StopResult(
        None, suppressed=await _suppress(session, workspace_id, kind, value, reason, at)
    )
    if kind == "email":
        match: ColumnElement[bool] = Lead.email_normalized == value
    else:
        match = or_(Lead.email_domain == value, Lead.email_domain.like(f"%.{value}"))
    result.stopped = await _end(
        session,
        [Enrollment.lead_id.in_(select(Lead.id).where(Lead.workspace_id == workspace_id, match))],
        StopRule(EnrollmentStatus.STOPPED, suppress=True),
        None,
        f"suppressed ({reason})",
        at,
        workspace_id,
    )
    return result


async def _end(
    session: AsyncSession,
    where: Sequence[ColumnElement[bool]],
    rule: StopRule,
    campaign_id: int | None,
    text: str,
    at: datetime,
    workspace_id: int,
) -> list[int]:
    """End the matching active enrollments of the workspace's campaigns that ``rule`` covers."""
    query = (
        select(Enrollment, Campaign.settings)
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .where(
            *where,
            Campaign.workspace_id == workspace_id,
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
        .order_by(Enrollment.id)
    )
    if campaign_id is not None:
        query = query.where(Enrollment.campaign_id == campaign_id)
    ended: list[int] = []
    for enrollment, settings in (await session.execute(query)).all():
        if rule.applies is not None and not rule.applies(StopRules.from_settings(settings)):
            continue
        enrollment.status = rule.status
        enrollment.stop_reason = text
        enrollment.next_due_at = None
        enrollment.updated_at = at
        ended.append(enrollment.id)
        repo.add_event(
            session,
            workspace_id=workspace_id,
            at=at,
            kind="enrollment.stopped",
            message=text,
            campaign_id=enrollment.campaign_id,
            enrollment_id=enrollment.id,
            lead_id=enrollment.lead_id,
        )
    return ended


async def _suppress(
    session: AsyncSession, workspace_id: int, kind: str, value: str, reason: str, at: datetime
) -> bool:
    """Add a suppression entry unless one exists; return whether it was new."""
    present = await session.scalar(
        select(Suppression.id).where(
            Suppression.workspace_id == workspace_id,
            Suppression.kind == kind,
            Suppression.value == value,
        )
    )
    if present is not None:
        return False
    session.add(
        Suppression(workspace_id=workspace_id, kind=kind, value=value, reason=reason, created_at=at)
    )
    repo.add_event(
        session,
        workspace_id=workspace_id,
        at=at,
        kind="suppression.added",
        message=f"{kind} {value}: {reason}",
    )
    await session.flush()
    return True
