"""Importing parsed leads into a campaign: dedupe, enroll, in bulk, in the caller's transaction.

Each lead of the file ends in exactly one of:

- ``created`` — a new lead of the workspace, enrolled;
- ``existing`` — the workspace already had this address: that lead is enrolled;
- ``skipped`` with a reason — already in this campaign, or in a sequence of another
  campaign that is not completed (unless duplicates across campaigns are allowed).

Rows the parser refused (bad address, suppressed, duplicate in the file, …) never
reach this module; the CLI reports them with these. Inserts go in batches of
:data:`BATCH` rows through multi-row statements, so 100,000 leads take seconds,
and nothing is committed here: the caller commits all of it or none.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.leads import ParsedLead, Suppressions
from mailfleet.limits import recipient_domain
from mailfleet.store import repository as repo
from mailfleet.store.models import (
    Campaign,
    CampaignStatus,
    Enrollment,
    EnrollmentStatus,
    Lead,
    Suppression,
)

BATCH = 2_000
CHUNK = 500  # ids or addresses per IN (...) list


class SkipReason(enum.StrEnum):
    """Why a valid lead was not enrolled."""

    IN_CAMPAIGN = "already_in_campaign"
    IN_OTHER_CAMPAIGN = "in_another_campaign"


@dataclass(frozen=True, slots=True)
class SkippedLead:
    """A valid row that was not enrolled, and why."""

    row: int
    email: str
    reason: SkipReason
    detail: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.email} {self.detail}"


@dataclass(slots=True)
class CampaignImport:
    """What an import into a campaign did."""

    campaign: str
    created: int = 0
    existing: int = 0
    enrolled: int = 0
    skipped: list[SkippedLead] = field(default_factory=list)


async def workspace_suppressions(session: AsyncSession, workspace_id: int) -> Suppressions:
    """The workspace's suppression list, as the lead parser checks it."""
    rows = (
        await session.execute(
            select(Suppression.kind, Suppression.value, Suppression.reason).where(
                Suppression.workspace_id == workspace_id
            )
        )
    ).all()
    return Suppressions(
        emails={v: r for k, v, r in rows if k == "email"},
        domains={v: r for k, v, r in rows if k == "domain"},
    )


async def import_into_campaign(
    session: AsyncSession,
    campaign: Campaign,
    leads: Sequence[ParsedLead],
    now: datetime,
    *,
    source: str,
    allow_duplicates_across_campaigns: bool = False,
    progress: Callable[[int], None] | None = None,
) -> CampaignImport:
    """Store ``leads`` in the campaign's workspace and enroll them, due now; see the module doc.

    ``progress`` is called with the number of leads handled so far, batch by batch.
    """
    if campaign.status == CampaignStatus.COMPLETED:
        raise ValueError(f"campaign {campaign.name!r} is completed; create a new one")
    report = CampaignImport(campaign.name)
    workspace_id = campaign.workspace_id
    existing = await _existing_leads(
        session, workspace_id, [lead.email_normalized for lead in leads]
    )
    here, elsewhere = await _enrollments(session, campaign, list(existing.values()))
    handled = 0
    for start in range(0, len(leads), BATCH):
        batch = leads[start : start + BATCH]
        fresh: list[ParsedLead] = []
        enroll: list[int] = []
        for lead in batch:
            lead_id = existing.get(lead.email_normalized)
            if lead_id is None:
                fresh.append(lead)
                continue
            if lead_id in here:
                report.skipped.append(
                    SkippedLead(
                        lead.row, lead.email, SkipReason.IN_CAMPAIGN, "is already in this campaign"
                    )
                )
                continue
            other = elsewhere.get(lead_id)
            if other is not None and not allow_duplicates_across_campaigns:
                report.skipped.append(
                    SkippedLead(
                        lead.row,
                        lead.email,
                        SkipReason.IN_OTHER_CAMPAIGN,
                        f"is in a sequence of campaign {other!r} "
                        "(--allow-duplicates-across-campaigns enrolls it anyway)",
                    )
                )
                continue
            report.existing += 1
            enroll.append(lead_id)
            here.add(lead_id)
        if fresh:
            created = await _insert_leads(session, workspace_id, fresh, now, source)
            report.created += len(created)
            for lead in fresh:
                lead_id = created[lead.email_normalized]
                existing[lead.email_normalized] = lead_id
                here.add(lead_id)
                enroll.append(lead_id)
        if enroll:
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
                [{"lead_id": lead_id} for lead_id in enroll],
            )
            report.enrolled += len(enroll)
        handled += len(batch)
        if progress is not None:
            progress(handled)
    repo.add_event(
        session,
        workspace_id=workspace_id,
        at=now,
        kind="leads.imported",
        message=(
            f"{source}: {report.created} new, {report.existing} existing, "
            f"{report.enrolled} enrolled, {len(report.skipped)} skipped"
        ),
        campaign_id=campaign.id,
    )
    return report


async def _existing_leads(
    session: AsyncSession, workspace_id: int, addresses: Sequence[str]
) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(addresses), CHUNK):
        rows = await session.execute(
            select(Lead.email_normalized, Lead.id).where(
                Lead.workspace_id == workspace_id,
                Lead.email_normalized.in_(addresses[start : start + CHUNK]),
            )
        )
        found.update({email: lead_id for email, lead_id in rows.all()})
    return found


async def _enrollments(
    session: AsyncSession, campaign: Campaign, lead_ids: Sequence[int]
) -> tuple[set[int], dict[int, str]]:
    """Leads already in ``campaign`` (any status), and those in a live sequence elsewhere."""
    here: set[int] = set()
    elsewhere: dict[int, str] = {}
    for start in range(0, len(lead_ids), CHUNK):
        rows = await session.execute(
            select(Enrollment.lead_id, Enrollment.campaign_id, Enrollment.status, Campaign.name)
            .join(Campaign, Campaign.id == Enrollment.campaign_id)
            .where(
                Enrollment.lead_id.in_(lead_ids[start : start + CHUNK]),
                Campaign.status != CampaignStatus.COMPLETED,
            )
        )
        for lead_id, campaign_id, status, name in rows.all():
            if campaign_id == campaign.id:
                here.add(lead_id)
            elif status == EnrollmentStatus.ACTIVE:
                elsewhere.setdefault(lead_id, name)
    return here, elsewhere


async def _insert_leads(
    session: AsyncSession,
    workspace_id: int,
    leads: Sequence[ParsedLead],
    now: datetime,
    source: str,
) -> dict[str, int]:
    """Insert new leads in one executemany (no RETURNING: far faster); their ids by address."""
    await insert_rows(
        session,
        Lead.__table__,
        {"workspace_id": workspace_id, "created_at": now},
        [
            {
                "email": lead.email,
                "email_normalized": lead.email_normalized,
                "email_domain": recipient_domain(lead.email_normalized),
                "first_name": lead.first_name,
                "last_name": lead.last_name,
                "company": lead.company,
                "title": lead.title,
                "timezone": lead.timezone,
                "fields": dict(lead.fields),
                "source": f"{source} row {lead.row}",
            }
            for lead in leads
        ],
    )
    return await _existing_leads(session, workspace_id, [lead.email_normalized for lead in leads])


async def insert_rows(
    session: AsyncSession,
    table: Any,
    constants: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """INSERT many rows that share ``constants``, as one executemany.

    On SQLite the statement goes to the driver directly, with each value converted by
    its column type once (constants once for all rows): SQLAlchemy's per-row parameter
    machinery would otherwise cost more than SQLite's own work. Elsewhere a Core insert.
    """
    if not rows:
        return
    conn = await session.connection()
    dialect = conn.dialect
    if dialect.name != "sqlite":
        await conn.execute(insert(table), [{**constants, **row} for row in rows])
        return
    varying = list(rows[0])
    fixed = list(constants)

    def convert(name: str, value: Any) -> Any:
        process = table.c[name].type._cached_bind_processor(dialect)
        return value if process is None else process(value)

    fixed_values = tuple(convert(name, constants[name]) for name in fixed)
    processed = [(name, table.c[name].type._cached_bind_processor(dialect)) for name in varying]
    plain = [name for name, process in processed if process is None]
    typed = [(name, process) for name, process in processed if process is not None]
    columns = ", ".join(f'"{name}"' for name in (*fixed, *plain, *(n for n, _ in typed)))
    marks = ", ".join("?" for _ in range(len(fixed) + len(varying)))
    await conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks})',
        [
            (
                *fixed_values,
                *[row[name] for name in plain],
                *[process(row[name]) for name, process in typed],
            )
            for row in rows
        ],
    )
