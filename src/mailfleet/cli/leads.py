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

from mailfleet.cli.common import CommandError, console, fail, with_db
from mailfleet.clock import SystemClock
from mailfleet.leads import RowError
from mailfleet.services import leads as leads_service
from mailfleet.store import Database
from mailfleet.store.imports import CampaignImport

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
        with progress:
            reading = progress.add_task("reading", total=total)
            storing = progress.add_task("storing", total=None)
            try:
                with path.open(encoding="utf-8-sig", newline="") as handle:
                    done = await leads_service.import_leads(
                        db,
                        handle,
                        campaign_name=campaign_name,
                        workspace_slug=workspace_slug,
                        source=str(path),
                        at=SystemClock().now(),
                        mapping=columns,
                        allow_duplicates_across_campaigns=allow_duplicates,
                        allow_reserved_domains=allow_reserved,
                        on_read=lambda n: progress.update(reading, completed=min(total, n)),
                        on_stored=lambda n: progress.update(storing, completed=n),
                    )
            except OSError as exc:
                raise CommandError(f"{path}: cannot read: {exc}") from None
            progress.update(reading, completed=total)
        return _report(
            path, done.campaign, done.rows, done.report, list(done.rejected), list(done.warnings)
        )

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
