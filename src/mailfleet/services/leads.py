"""Lead import: a CSV into a campaign, in one transaction, with a report of every row.

Every row ends in the report: created and enrolled, an existing lead enrolled, skipped
(already in the campaign, or in another campaign's sequence) or rejected by the parser
(bad address, suppressed address or domain, duplicate row, …) with row, column and
reason. Nothing is half-imported. The same transaction records the lead list's
validation, which ``campaign start``'s pre-launch gate requires. The CLI reads a file;
the API will hand in the uploaded text the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from mailfleet.leads import LeadFileError, ParsedLead, RowError, read_leads
from mailfleet.services.errors import ServiceError
from mailfleet.services.lookup import campaign as find_campaign
from mailfleet.store import Database
from mailfleet.store.imports import CampaignImport, import_into_campaign, workspace_suppressions
from mailfleet.store.launch import record_validation

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class LeadImport:
    """What one import did, row by row."""

    campaign: str
    rows: int
    report: CampaignImport
    rejected: tuple[RowError, ...]
    warnings: tuple[str, ...]


async def import_leads(
    db: Database,
    stream: TextIO,
    *,
    campaign_name: str,
    workspace_slug: str | None,
    source: str,
    at: datetime,
    mapping: Mapping[str, str] | None = None,
    allow_duplicates_across_campaigns: bool = False,
    allow_reserved_domains: bool = False,
    on_read: Progress | None = None,
    on_stored: Progress | None = None,
) -> LeadImport:
    """Parse, de-duplicate, check against suppressions, store and enroll, all or nothing."""
    async with db.session() as session:
        row = await find_campaign(session, campaign_name, workspace_slug)
        suppressed = await workspace_suppressions(session, row.workspace_id)
        leads: list[ParsedLead] = []
        rejected: list[RowError] = []
        try:
            reader = read_leads(
                stream,
                source=source,
                mapping=mapping,
                suppressed=suppressed,
                allow_test_domains="reserved" if allow_reserved_domains else False,
            )
            for number, item in enumerate(reader, start=1):
                if isinstance(item, ParsedLead):
                    leads.append(item)
                else:
                    rejected.append(item)
                if on_read is not None and number % 2000 == 0:
                    on_read(item.row - 1)
        except LeadFileError as exc:
            raise ServiceError(str(exc)) from None
        except UnicodeDecodeError as exc:
            raise ServiceError(f"{source}: cannot read: {exc}") from None
        fields = {c.target for c in reader.columns if c.target and not c.standard}
        try:
            report = await import_into_campaign(
                session,
                row,
                leads,
                at,
                source=source,
                allow_duplicates_across_campaigns=allow_duplicates_across_campaigns,
                progress=on_stored,
            )
        except ValueError as exc:
            raise ServiceError(str(exc)) from None
        # The pre-launch gate reads this: the list was parsed, de-duplicated and checked
        # against suppressions, in the transaction that enrolled it.
        record_validation(
            session,
            row.id,
            at,
            source=source,
            rows=reader.summary.total_rows,
            accepted=len(leads),
            rejected=len(rejected),
            enrolled=report.enrolled,
            skipped=len(report.skipped),
        )
        wanted = set((row.settings or {}).get("fields") or [])
        warnings = tuple(
            f"the campaign's templates use {{{{ {name} }}}}, which this file has no column "
            "for: those leads get the template's default"
            for name in sorted(wanted - fields)
        )
        return LeadImport(row.name, reader.summary.total_rows, report, tuple(rejected), warnings)
