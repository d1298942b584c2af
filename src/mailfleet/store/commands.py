"""Write operations the interfaces share: save a campaign, import leads, enroll them.

Each runs inside the caller's session, so a caller commits all of it or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.campaigns import CampaignSpec, WindowSpec
from mailfleet.leads import ParsedLead
from mailfleet.store.imports import BATCH, insert_rows
from mailfleet.store.models import (
    Campaign,
    CampaignStatus,
    Domain,
    Enrollment,
    EnrollmentStatus,
    Lead,
    Mailbox,
    Step,
    Suppression,
    Workspace,
)


@dataclass(slots=True)
class LeadImport:
    """What an import stored."""

    created: int = 0
    existing: int = 0
    enrolled: int = 0
    skipped: list[str] = field(default_factory=list)
    lead_ids: list[int] = field(default_factory=list)


def campaign_from_spec(workspace_id: int, spec: CampaignSpec, now: datetime) -> Campaign:
    """A new (draft) campaign with its steps, built from a validated spec."""
    campaign = Campaign(
        workspace_id=workspace_id,
        name=spec.name,
        status=CampaignStatus.DRAFT,
        timezone=spec.timezone,
        window_days=sorted(set(spec.window.days)),
        window_start_minute=WindowSpec.minutes(spec.window.start),
        window_end_minute=WindowSpec.minutes(spec.window.end),
        use_lead_timezone=spec.use_lead_timezone,
        daily_cap=spec.daily_cap,
        mailbox_tags=list(spec.mailbox_tags),
        settings={
            "fields": list(spec.fields),
            "mailboxes": list(spec.mailboxes),
            "stop": spec.stop.model_dump(),
        },
        created_at=now,
    )
    for position, step in enumerate(spec.steps, start=1):
        variants = [v.model_dump() for v in step.resolved_variants()]
        campaign.steps.append(
            Step(
                position=position,
                delay_days=step.delay_days,
                delay_minutes=step.delay_total_minutes,
                business_days=step.business_days,
                subject=step.subject,
                body_text=step.body if step.body is not None else variants[0]["body"],
                body_html=step.html,
                threaded=step.threaded,
                variants={"variants": variants} if variants else {},
            )
        )
    return campaign


async def store_leads(
    session: AsyncSession,
    workspace_id: int,
    leads: Sequence[ParsedLead],
    now: datetime,
    *,
    source: str,
) -> LeadImport:
    """Insert new leads and find existing ones (same normalised address in the workspace)."""
    report = LeadImport()
    if not leads:
        return report
    existing: dict[str, int] = {}
    addresses = [lead.email_normalized for lead in leads]
    for start in range(0, len(addresses), 500):
        chunk = addresses[start : start + 500]
        rows = await session.execute(
            select(Lead.email_normalized, Lead.id).where(
                Lead.workspace_id == workspace_id, Lead.email_normalized.in_(chunk)
            )
        )
        existing.update({email: lead_id for email, lead_id in rows.all()})
    suppressed = {
        (kind, value)
        for kind, value in (
            await session.execute(
                select(Suppression.kind, Suppression.value).where(
                    Suppression.workspace_id == workspace_id
                )
            )
        ).all()
    }
    fresh: list[ParsedLead] = []
    for lead in leads:
        domain = lead.email_normalized.rpartition("@")[2]
        if ("email", lead.email_normalized) in suppressed or ("domain", domain) in suppressed:
            report.skipped.append(f"{source} row {lead.row}: {lead.email} is suppressed")
            continue
        if lead.email_normalized in existing:
            if existing[lead.email_normalized] > 0:
                report.existing += 1
                report.lead_ids.append(existing[lead.email_normalized])
            continue
        fresh.append(lead)
        existing[lead.email_normalized] = -1
    if fresh:
        for start in range(0, len(fresh), BATCH):
            await insert_rows(
                session,
                Lead.__table__,
                {"workspace_id": workspace_id, "created_at": now},
                [
                    {
                        "email": lead.email,
                        "email_normalized": lead.email_normalized,
                        "email_domain": lead.email_normalized.rpartition("@")[2],
                        "first_name": lead.first_name,
                        "last_name": lead.last_name,
                        "company": lead.company,
                        "title": lead.title,
                        "timezone": lead.timezone,
                        "fields": dict(lead.fields),
                        "source": f"{source} row {lead.row}",
                    }
                    for lead in fresh[start : start + BATCH]
                ],
            )
        ids: dict[str, int] = {}
        addresses = [lead.email_normalized for lead in fresh]
        for start in range(0, len(addresses), 500):
            rows = await session.execute(
                select(Lead.email_normalized, Lead.id).where(
                    Lead.workspace_id == workspace_id,
                    Lead.email_normalized.in_(addresses[start : start + 500]),
                )
            )
            ids.update({email: lead_id for email, lead_id in rows.all()})
        report.lead_ids.extend(ids[address] for address in addresses)
    report.created = len(fresh)
    return report


async def enroll(
    session: AsyncSession, campaign: Campaign, lead_ids: Sequence[int], now: datetime
) -> int:
    """Put leads into a campaign, due now; leads already in it are left alone."""
    present = set(
        (
            await session.scalars(
                select(Enrollment.lead_id).where(Enrollment.campaign_id == campaign.id)
            )
        ).all()
    )
    new = [lead_id for lead_id in dict.fromkeys(lead_ids) if lead_id not in present]
    for start in range(0, len(new), BATCH):
        await insert_rows(
            session,
            Enrollment.__table__,
            {
                "campaign_id": campaign.id,
                "status": EnrollmentStatus.ACTIVE.value,
                "next_step": 1,
                "next_due_at": now,
                "references": [],
                "created_at": now,
                "updated_at": now,
            },
            [{"lead_id": lead_id} for lead_id in new[start : start + BATCH]],
        )
    return len(new)


@dataclass(frozen=True, slots=True)
class MailboxSettings:
    """What ``mailfleet mailbox add`` knows about a new mailbox, already validated."""

    address: str
    provider: str
    smtp_host: str
    smtp_port: int
    smtp_security: str
    imap_host: str | None
    imap_port: int | None
    imap_security: str | None
    auth_kind: str
    secret: bytes
    token_endpoint: str | None = None
    client_id: str | None = None
    tenant: str | None = None
    ca_file: str | None = None
    display_name: str = ""
    timezone: str = "UTC"
    tags: tuple[str, ...] = ()


class MailboxExistsError(ValueError):
    """The workspace already has a mailbox with this address."""


async def add_mailbox(
    session: AsyncSession, workspace_slug: str, settings: MailboxSettings, now: datetime
) -> Mailbox:
    """Register a mailbox (creating its workspace and domain when new); it starts its ramp today."""
    workspace = await session.scalar(select(Workspace).where(Workspace.slug == workspace_slug))
    if workspace is None:
        workspace = Workspace(slug=workspace_slug, name=workspace_slug, created_at=now)
        session.add(workspace)
        await session.flush()
    address = settings.address.strip()
    existing = await session.scalar(
        select(Mailbox.id).where(
            Mailbox.workspace_id == workspace.id, func.lower(Mailbox.address) == address.lower()
        )
    )
    if existing is not None:
        raise MailboxExistsError(f"{address} is already in workspace {workspace_slug!r}")
    domain_name = address.rpartition("@")[2].lower()
    domain = await session.scalar(
        select(Domain).where(Domain.workspace_id == workspace.id, Domain.name == domain_name)
    )
    if domain is None:
        domain = Domain(
            workspace_id=workspace.id,
            name=domain_name,
            provider=settings.provider,
            tenant=settings.tenant,
            created_at=now,
        )
        session.add(domain)
        await session.flush()
    mailbox = Mailbox(
        workspace_id=workspace.id,
        domain_id=domain.id,
        address=address,
        display_name=settings.display_name,
        provider=settings.provider,
        tenant=settings.tenant,
        smtp_host=settings.smtp_host,
        smtp_port=settings.smtp_port,
        smtp_security=settings.smtp_security,
        imap_host=settings.imap_host,
        imap_port=settings.imap_port,
        imap_security=settings.imap_security,
        ca_file=settings.ca_file,
        auth_kind=settings.auth_kind,
        secret=settings.secret,
        token_endpoint=settings.token_endpoint,
        client_id=settings.client_id,
        ramp_start=now.date(),
        timezone=settings.timezone,
        tags=list(settings.tags),
        created_at=now,
    )
    session.add(mailbox)
    await session.flush()
    return mailbox


async def find_mailbox(session: AsyncSession, address: str, workspace_slug: str | None) -> Mailbox:
    """The one mailbox with ``address`` (in ``workspace_slug`` when given)."""
    query = select(Mailbox).where(func.lower(Mailbox.address) == address.strip().lower())
    if workspace_slug is not None:
        query = query.join(Workspace, Workspace.id == Mailbox.workspace_id).where(
            Workspace.slug == workspace_slug
        )
    found = (await session.scalars(query)).all()
    if not found:
        raise LookupError(f"no mailbox {address!r}; add it with `mailfleet mailbox add`")
    if len(found) > 1:
        raise LookupError(f"{address!r} is in several workspaces; name one with --workspace")
    return found[0]
