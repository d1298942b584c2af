"""``mailfleet``: commands for operators. Each command is a thin shell over the packages."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mailfleet.campaigns import CampaignFileError
from mailfleet.cli.campaign import campaign_app
from mailfleet.cli.common import setup_logging
from mailfleet.cli.dns import dns_app
from mailfleet.cli.doctor import doctor
from mailfleet.cli.health import health
from mailfleet.cli.inbound import inbound_app
from mailfleet.cli.inbox import inbox
from mailfleet.cli.inventory import inventory
from mailfleet.cli.keys import keys_app
from mailfleet.cli.leads import leads_import
from mailfleet.cli.mailbox import mailbox_app
from mailfleet.cli.mailbox_set import mailbox_set
from mailfleet.cli.run import run
from mailfleet.cli.sandbox import sandbox
from mailfleet.cli.sends import sends_app
from mailfleet.cli.simulate import simulate
from mailfleet.cli.warmup import warmup_app
from mailfleet.cli.workspace import workspace_app
from mailfleet.config import DataFolderError, Settings
from mailfleet.engine.runtime import TickReport
from mailfleet.leads import LeadFileError, parse_leads
from mailfleet.transport.secrets import SecretError

app = typer.Typer(
    help="mailfleet: run a fleet of mailboxes for cold outreach, inside every provider limit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
leads_app = typer.Typer(help="Lead files.", no_args_is_help=True)
leads_app.command("import")(leads_import)
app.add_typer(campaign_app, name="campaign")
app.add_typer(leads_app, name="leads")
app.add_typer(sends_app, name="sends")
app.add_typer(warmup_app, name="warmup")
app.add_typer(mailbox_app, name="mailbox")
app.add_typer(keys_app, name="keys")
app.add_typer(inbound_app, name="inbound")
app.command("doctor")(doctor)
app.command("health")(health)
app.command("run")(run)
app.command("inbox")(inbox)
app.command("simulate")(simulate)
app.add_typer(dns_app, name="dns")
app.add_typer(workspace_app, name="workspace")
app.command("inventory")(inventory)
mailbox_app.command("set")(mailbox_set)
app.command("sandbox")(sandbox)

console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]mailfleet:[/] {message}", highlight=False)
    return typer.Exit(code)


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic reports bad values in env or the TOML file
        raise _fail(f"invalid configuration: {exc}") from None


@app.command()
def demo(
    days: Annotated[int, typer.Option(min=1, max=60, help="Simulated days to run.")] = 3,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the summary as JSON to this file.")
    ] = None,
    leads: Annotated[
        Path | None, typer.Option(help="Use this lead CSV instead of generated prospects.")
    ] = None,
    campaign: Annotated[
        Path | None, typer.Option(help="Use this campaign file instead of the embedded one.")
    ] = None,
    lead_count: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
) -> None:
    """Run a simulated Microsoft 365 world and a 2-step campaign on a virtual clock."""
    from mailfleet.demo import DemoError, run_demo

    settings = _settings()
    try:
        settings.ensure_home()
    except DataFolderError as exc:
        raise _fail(str(exc)) from None
    setup_logging(settings)
    console.print(
        f"[bold]mailfleet demo[/]: {days} simulated day(s), data in {settings.home}",
        highlight=False,
    )
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[clock]}"),
        TextColumn("sent {task.fields[sent]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    totals = {"sent": 0, "warmup": 0}
    task = progress.add_task("simulating", total=days * 86400, clock="", sent="0")

    def on_tick(start: datetime, end: datetime, now: datetime, report: TickReport) -> None:
        totals["sent"] += report.sent
        totals["warmup"] += report.warmup_sent
        progress.update(
            task,
            completed=(now - start).total_seconds(),
            clock=now.strftime("%a %d %b %H:%M UTC"),
            sent=f"{totals['sent']} cold, {totals['warmup']} warmup",
        )

    try:
        with progress:
            summary = asyncio.run(
                run_demo(
                    settings,
                    days=days,
                    today=datetime.now(UTC).date(),
                    lead_count=lead_count,
                    leads_file=leads,
                    campaign_file=campaign,
                    progress=on_tick,
                )
            )
    except (DemoError, DataFolderError, CampaignFileError, LeadFileError, SecretError) as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"{exc.filename or settings.home}: {exc.strerror or exc}") from None

    table = Table(title="Demo summary")
    table.add_column("mailbox")
    table.add_column("cold sent", justify="right")
    table.add_column("warmup sent", justify="right")
    for address in sorted(set(summary.sends_by_mailbox) | set(summary.warmup_by_mailbox)):
        table.add_row(
            address,
            str(summary.sends_by_mailbox.get(address, 0)),
            str(summary.warmup_by_mailbox.get(address, 0)),
        )
    table.add_row("[bold]total[/]", f"[bold]{summary.sends}[/]", f"[bold]{summary.warmup_sent}[/]")
    console.print(table)
    steps = ", ".join(f"step {k}: {v}" for k, v in summary.sends_by_step.items()) or "none"
    console.print(
        f"leads {summary.leads} · mailboxes {summary.mailboxes} · {steps} · "
        f"follow-ups threaded {summary.follow_ups_threaded} · "
        f"duplicates {summary.duplicate_sends} · errors {len(summary.errors)}",
        highlight=False,
    )
    console.print(
        f"inbox: replies {summary.replies} · out of office {summary.auto_replies} · "
        f"bounces {summary.bounces} (hard {summary.hard_bounces}) · "
        f"unsubscribes {summary.unsubscribes} · found in Junk {summary.answers_in_junk}",
        highlight=False,
    )
    console.print(
        f"warmup: sent {summary.warmup_sent} ({summary.warmup_replies} of them replies) · "
        f"the peers found {summary.warmup_found_in_inbox} in the inbox and rescued "
        f"{summary.warmup_rescued_from_junk} from Junk",
        highlight=False,
    )
    for line in summary.errors[:10]:
        console.print(f"  [yellow]![/] {line}", highlight=False)
    if json_path is not None:
        try:
            json_path.write_text(json.dumps(summary.as_json(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise _fail(f"cannot write {json_path}: {exc.strerror}") from None
        console.print(f"summary written to {json_path}", highlight=False)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show campaigns and per-mailbox send counts from the data folder."""
    from mailfleet.services.status import collect_status

    settings = _settings()
    db_file = settings.home / "mailfleet.db"
    if settings.database_url is None and not db_file.exists():
        raise _fail(f"no database in {settings.home}; run `mailfleet demo` or `mailfleet migrate`")
    now = settings.clock().now()
    report = asyncio.run(collect_status(settings, today=now.date(), at=now))
    if as_json:
        print(json.dumps(report, indent=2))
        return
    for workspace in report["workspaces"]:
        console.print(f"[bold]{workspace['name']}[/] ({workspace['slug']})", highlight=False)
        campaigns = Table(title="Campaigns")
        for column in ("campaign", "status", "enrolled", "active", "completed", "stopped", "sent"):
            campaigns.add_column(
                column, justify="left" if column in ("campaign", "status") else "right"
            )
        for c in workspace["campaigns"]:
            campaigns.add_row(
                c["name"],
                c["status"],
                str(c["enrolled"]),
                str(c["active"]),
                str(c["completed"]),
                str(c["stopped"]),
                str(c["sent"]),
            )
        console.print(campaigns)
        boxes = Table(title="Mailboxes")
        for column in (
            "mailbox",
            "status",
            "cold 24h",
            "cold total",
            "warmup 24h",
            "warmup total",
            "failed",
            "last send",
        ):
            boxes.add_column(
                column, justify="left" if column in ("mailbox", "status", "last send") else "right"
            )
        for m in workspace["mailboxes"]:
            boxes.add_row(
                m["address"],
                m["status"],
                str(m["sent_24h"]),
                str(m["sent_total"]),
                str(m["warmup_24h"]),
                str(m["warmup_total"]),
                str(m["failed"]),
                m["last_send_at"] or "-",
            )
        console.print(boxes)
        if workspace["mailboxes"]:
            console.print("[bold]Now[/] (what holds each mailbox):", highlight=False)
        for m in workspace["mailboxes"]:
            console.print(f"  {m['address']}: {m['hold']['reason']}", highlight=False)


@app.command()
def migrate() -> None:
    """Create or upgrade the database to the newest schema."""
    from mailfleet.store import upgrade

    settings = _settings()
    try:
        settings.ensure_home()
    except DataFolderError as exc:
        raise _fail(str(exc)) from None
    asyncio.run(upgrade(settings.resolved_database_url))
    console.print(f"database ready: {settings.resolved_database_url}", highlight=False)


@leads_app.command("check")
def leads_check(
    path: Path,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Parse a lead CSV and report every bad row; exits 1 when a row was rejected."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            result = parse_leads(handle, source=str(path))
    except LeadFileError as exc:
        raise _fail(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"{path}: cannot read: {exc}") from None
    if as_json:
        print(
            json.dumps(
                {
                    "file": str(path),
                    "accepted": len(result.leads),
                    "errors": [str(e) for e in result.errors],
                },
                indent=2,
            )
        )
    else:
        console.print(
            f"{path}: {len(result.leads)} lead(s) accepted, {len(result.errors)} row(s) rejected",
            highlight=False,
        )
        for error in result.errors:
            console.print(f"  [red]✗[/] {error}", highlight=False)
    if result.errors:
        raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover - python -m mailfleet.cli.main
    sys.exit(app())
