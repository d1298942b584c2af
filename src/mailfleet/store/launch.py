"""Facts for the pre-launch gate, and the lead-validation record ``leads import`` writes.

:func:`gate_facts` extends :func:`mailfleet.store.repository.launch_facts` with
:class:`~mailfleet.readiness.GateFacts`: each selected mailbox's status and warmup
start (its first warmup send, else when it was added), each sending domain's DNS
domain to check (looked up afterwards, outside the transaction, by
:mod:`mailfleet.services.gate`), and the campaign's latest lead validation with the
enrollments made after it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.content.unsubscribe import is_loopback_url
from mailfleet.readiness import (
    DEFAULT_WARMUP_DAYS,
    GateDomain,
    GateFacts,
    GateMailbox,
    LaunchFacts,
    LeadCheck,
)
from mailfleet.store import repository as repo
from mailfleet.store.models import (
    Campaign,
    Domain,
    Enrollment,
    EnrollmentStatus,
    LeadValidation,
    Send,
    SendKind,
)


def record_validation(
    session: AsyncSession,
    campaign_id: int,
    at: datetime,
    *,
    source: str,
    rows: int,
    accepted: int,
    rejected: int,
    enrolled: int,
    skipped: int,
) -> LeadValidation:
    """Record that a lead file was validated and imported into the campaign at ``at``."""
    row = LeadValidation(
        campaign_id=campaign_id,
        validated_at=at,
        source=source[:1000],
        rows=rows,
        accepted=accepted,
        rejected=rejected,
        enrolled=enrolled,
        skipped=skipped,
    )
    session.add(row)
    return row


async def latest_validation(session: AsyncSession, campaign_id: int) -> LeadValidation | None:
    """The campaign's most recent lead validation, if any."""
    result = await session.scalars(
        select(LeadValidation)
        .where(LeadValidation.campaign_id == campaign_id)
        .order_by(LeadValidation.validated_at.desc(), LeadValidation.id.desc())
        .limit(1)
    )
    return result.first()


def _aware(value: datetime | str | None) -> datetime | None:
    # Aggregates bypass the column type on SQLite: re-attach UTC.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def gate_facts(
    session: AsyncSession,
    campaign: Campaign,
    now: datetime,
    *,
    warmup_days: int = DEFAULT_WARMUP_DAYS,
    public_url: str | None = None,
) -> LaunchFacts:
    """:func:`~mailfleet.store.repository.launch_facts` plus the gate's facts at ``now``.

    The sending domains come back unchecked (``dns_checked`` False): DNS is looked up
    outside any transaction, by :func:`mailfleet.services.gate.check_domains`.
    """
    facts = await repo.launch_facts(session, campaign, now)
    selected = await repo.selected_mailboxes(session, campaign)
    ids = [m.id for m in selected]
    first_warmup = dict(
        (
            await session.execute(
                select(Send.mailbox_id, func.min(Send.claimed_at))
                .where(Send.mailbox_id.in_(ids), Send.kind == SendKind.WARMUP)
                .group_by(Send.mailbox_id)
            )
        ).all()
    )
    domains = {
        d.id: d
        for d in (
            await session.scalars(
                select(Domain).where(Domain.id.in_({m.domain_id for m in selected}))
            )
        ).all()
    }
    mailboxes = tuple(
        GateMailbox(
            address=m.address,
            status=m.status,
            reason=m.status_reason,
            domain=domains[m.domain_id].name,
            warmup_started=_aware(first_warmup.get(m.id)) or m.created_at,
            rehearsal=m.provider == "sandbox" or is_loopback_url(f"smtp://{m.smtp_host}"),
        )
        for m in selected
    )
    wanted = sorted({(d.name, d.provider) for d in domains.values()})
    checked = tuple(GateDomain(name, provider) for name, provider in wanted)
    validation = await latest_validation(session, campaign.id)
    counted = select(func.count()).where(
        Enrollment.campaign_id == campaign.id, Enrollment.status == EnrollmentStatus.ACTIVE
    )
    if validation is not None:
        counted = counted.where(Enrollment.created_at > validation.validated_at)
    unvalidated = await session.scalar(counted)
    gate = GateFacts(
        at=now,
        mailboxes=mailboxes,
        domains=checked,
        dns_checked=False,
        validation=None
        if validation is None
        else LeadCheck(
            validation.validated_at,
            validation.source,
            validation.rows,
            validation.accepted,
            validation.rejected,
        ),
        unvalidated=int(unvalidated or 0),
        warmup_days=warmup_days,
        public_url=public_url,
    )
    return replace(facts, gate=gate)
