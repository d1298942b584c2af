"""``mailfleet leads import``: a CSV of leads into a campaign, in one transaction, with a report.

Every row ends in the report: created and enrolled, an existing lead enrolled,
skipped (already in the campaign, or in another campaign's sequence), or
rejected by the parser (bad address, suppressed address or domain, duplicate
row, …) with file, row, column and reason. Nothing is half-imported: the rows
are stored and enrolled in one transaction, or not at all.

An import is the lead list's validation: the same transaction records a
``lead_validation`` row (file, rows, accepted, rejected, enrolled, skipped) that
``campaign start``'s pre-launch gate requires; leads enrolled any other way after
it (API, scripts) make the gate ask for a new import.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mailfleet.cli.common import CommandError, campaign, console, fail, with_db
from mailfleet.clock import SystemClock
from mailfleet.leads import LeadFileError, ParsedLead, RowError, read_leads
from mailfleet.store import Database
from mailfleet.store.imports import (
    CampaignImport,
    import_into_campaign,
    workspace_suppressions,
)
from mailfleet.store.launch import record_validation

SHOWN = 50  # rows listed in the human report; --json lists them all


def _mapping(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        column, sep, target = pair.partition("=")
        if not sep or not column.strip():
            raise fail(f"--mapping {pair!r}: write it as COLUMN=FIELD (FIELD empty ignores it)")
        out[column.strip()] = target.strip()
    return out


def _lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def leads_import(
    path: Path,
    campaign_name: Annotated[
        str, typer.Option("--campaign", help="The campaign the leads are enrolled in.")
    ],
    workspace_slug: Annotated[
        str | None, typer.Option("--workspace", help="Workspace slug (default: the campaign's).")
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--mapping",
            help='COLUMN=FIELD, e.g. "Work Email=email" (repeatable; FIELD empty ignores it).',
        ),
    ] = None,
    allow_duplicates: Annotated[
        bool,
        typer.Option(
            "--allow-duplicates-across-campaigns",
            help="Enroll leads that are in another campaign's sequence too.",
        ),
    ] = False,
    allow_reserved: Annotated[
        bool,
        typer.Option(
            "--allow-reserved-domains",
            help="Accept special-use domains (.test, .local, .localhost …): rehearsals only.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Import a lead CSV into a campaign; exits 0 once committed (every row is in the report)."""
    columns = _mapping(mapping)
    if not path.is_file():
        raise fail(f"{path}: no such file")
    total = max(0, _lines(path) - 1)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=as_json,
        transient=True,
    )

    async def run(db: Database) -> dict[str, Any]:
        async with db.session() as session:
            row = await campaign(session, campaign_name, workspace_slug)
            suppressed = await workspace_suppressions(session, row.workspace_id)
            leads: list[ParsedLead] = []
            rejected: list[RowError] = []
            with progress:
                reading = progress.add_task("reading", total=total)
                try:
                    with path.open(encoding="utf-8-sig", newline="") as handle:
                        reader = read_leads(
                            handle,
                            source=str(path),
                            mapping=columns,
                            suppressed=suppressed,
                            allow_test_domains="reserved" if allow_reserved else False,
                        )
                        for number, item in enumerate(reader, start=1):
                            if isinstance(item, ParsedLead):
                                leads.append(item)
                            else:
                                rejected.append(item)
                            if number % 2000 == 0:
                                progress.update(reading, completed=min(total, item.row - 1))
                        progress.update(reading, completed=total)
                        fields = {c.target for c in reader.columns if c.target and not c.standard}
                except LeadFileError as exc:
                    raise CommandError(str(exc)) from None
                except (OSError, UnicodeDecodeError) as exc:
                    raise CommandError(f"{path}: cannot read: {exc}") from None
                storing = progress.add_task("storing", total=len(leads))
                now = SystemClock().now()
                try:
                    report = await import_into_campaign(
                        session,
                        row,
                        leads,
                        now,
                        source=str(path),
                        allow_duplicates_across_campaigns=allow_duplicates,
                        progress=lambda done: progress.update(storing, completed=done),
                    )
                except ValueError as exc:
                    raise CommandError(str(exc)) from None
                # The pre-launch gate reads this: the list was parsed, de-duplicated and
                # checked against suppressions, in the transaction that enrolled it.
                record_validation(
                    session,
                    row.id,
                    now,
                    source=str(path),
                    rows=reader.summary.total_rows,
                    accepted=len(leads),
                    rejected=len(rejected),
                    enrolled=report.enrolled,
                    skipped=len(report.skipped),
                )
            wanted = set((row.settings or {}).get("fields") or [])
            warnings = [
                f"the campaign's templates use {{{{ {name} }}}}, which this file has no column "
                "for: those leads get the template's default"
                for name in sorted(wanted - fields)
            ]
            return _report(path, row.name, reader.summary.total_rows, report, rejected, warnings)

    data = with_db(run)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    console.print(
        f"{path} → campaign {data['campaign']!r}: {data['rows']} row(s); "
        f"{data['created']} new lead(s), {data['existing']} existing, "
        f"{data['enrolled']} enrolled, {len(data['skipped'])} skipped, "
        f"{len(data['rejected'])} rejected",
        highlight=False,
    )
    listed = [("[yellow]-[/]", s["message"]) for s in data["skipped"]]
    listed += [("[red]✗[/]", r["message"]) for r in data["rejected"]]
    for mark, message in listed[:SHOWN]:
        console.print(f"  {mark} {message}", highlight=False)
    if len(listed) > SHOWN:
        console.print(f"  … {len(listed) - SHOWN} more (use --json for every row)", highlight=False)
    for warning in data["warnings"]:
        console.print(f"  [yellow]![/] {warning}", highlight=False)


def _report(
    path: Path,
    name: str,
    rows: int,
    report: CampaignImport,
    rejected: list[RowError],
    warnings: list[str],
) -> dict[str, Any]:
    return {
        "file": str(path),
        "campaign": name,
        "rows": rows,
        "created": report.created,
        "existing": report.existing,
        "enrolled": report.enrolled,
        "skipped": [
            {
                "row": s.row,
                "email": s.email,
                "reason": s.reason.value,
                "message": f"{path} {s}",
            }
            for s in report.skipped
        ],
        "rejected": [
            {
                "row": r.row,
                "column": r.field,
                "value": r.value,
                "reason": r.kind.value,
                "message": str(r),
            }
            for r in rejected
        ],
        "warnings": warnings,
    }
