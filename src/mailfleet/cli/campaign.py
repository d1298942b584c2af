"""``mailfleet campaign …``: validate, create, list, show, start, pause, resume.

A campaign is created from its file as a draft; ``start`` runs the launch checks
of :mod:`mailfleet.readiness` (with the pre-launch gate: mailboxes connected and
warmed up, domains authenticated, leads validated) and refuses listing every
error; ``--force`` starts anyway and records the overridden reasons in a
``campaign.forced`` event. ``pause`` and ``resume`` stop and restart its sending
(enrollments keep their place).

The gate's DNS verdicts come from :data:`domain_checker`, a factory returning a
:class:`~mailfleet.readiness.DomainChecker` (None: DNS is not checked and the gate
says so in a warning).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mailfleet.campaign_reference import reference_markdown
from mailfleet.campaigns import CampaignFileError, CampaignSpec, load_campaign
from mailfleet.cli.common import (
    console,
    fail,
    settings,
    with_db,
)
from mailfleet.clock import SystemClock
from mailfleet.engine.dns_checks import ResolverDomainChecker
from mailfleet.readiness import DomainChecker
from mailfleet.services import campaigns
from mailfleet.store import (
    Database,
)
from mailfleet.transport.dns import DnsResolver, NameserverError


def no_domain_checker() -> DomainChecker | None:
    """No DNS checker: the gate warns that DNS was not checked."""
    return None


def resolver_domain_checker() -> DomainChecker | None:
    """Looks the domains up through the configured nameserver (``MAILFLEET_DNS_NAMESERVER``)."""
    current = settings()
    try:
        resolver = DnsResolver(current.dns_nameserver, timeout=current.dns_timeout)
    except NameserverError as exc:
        raise fail(f"MAILFLEET_DNS_NAMESERVER: {exc}") from None
    return ResolverDomainChecker(resolver)


#: Builds the gate's DNS checker for ``campaign start`` (tests swap it for a fake).
domain_checker: Callable[[], DomainChecker | None] = resolver_domain_checker

campaign_app = typer.Typer(
    help="Campaigns: create from a file, start, pause, resume.", no_args_is_help=True
)

WorkspaceOption = Annotated[
    str | None, typer.Option("--workspace", help="Workspace slug (default: the only one).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


@campaign_app.command("validate")
def campaign_validate(
    path: Path,
    field: Annotated[
        list[str] | None, typer.Option("--field", help="A custom lead field templates may use.")
    ] = None,
) -> None:
    """Check a campaign file: settings, steps, variants and every template."""
    try:
        spec = load_campaign(path, extra_fields=set(field or []))
    except CampaignFileError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"{path}: campaign {spec.name!r} is valid ({len(spec.steps)} steps)", highlight=False
    )


@campaign_app.command("schema")
def campaign_schema(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="The reference table instead of JSON Schema.")
    ] = False,
) -> None:
    """Print the campaign file's JSON Schema (for editors), or its reference as Markdown."""
    if markdown:
        print(reference_markdown(), end="")
    else:
        print(json.dumps(CampaignSpec.model_json_schema(), indent=2))


@campaign_app.command("create")
def campaign_create(path: Path, workspace_slug: WorkspaceOption = None) -> None:
    """Validate a campaign file and store it as a draft (templates checked, nothing sent)."""
    try:
        spec = load_campaign(path)
    except CampaignFileError as exc:
        raise fail(str(exc)) from None

    async def run(db: Database) -> campaigns.Created:
        return await campaigns.create(
            db, spec, source=str(path), workspace_slug=workspace_slug, at=SystemClock().now()
        )

    created = with_db(run)
    console.print(
        f"created campaign {spec.name!r} in workspace {created.workspace!r} as a draft "
        f"({len(spec.steps)} steps); import leads with "
        f"`mailfleet leads import FILE.csv --campaign {spec.name!r}`, then "
        f"`mailfleet campaign start {spec.name!r}`",
        highlight=False,
    )
    for note in created.notes:
        console.print(f"  [yellow]![/] {note}", highlight=False)


@campaign_app.command("list")
def campaign_list(workspace_slug: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """Every campaign with its status, leads and sends."""

    async def run(db: Database) -> list[dict[str, Any]]:
        return [
            {"name": c.name, "workspace": c.workspace, "status": c.status} | _counts(c.counts)
            for c in await campaigns.list_campaigns(db, workspace_slug)
        ]

    items = with_db(run)
    if as_json:
        print(json.dumps(items, indent=2))
        return
    table = Table(title="Campaigns")
    for column in ("campaign", "workspace", "status", "enrolled", "active", "sent"):
        table.add_column(
            column, justify="right" if column in ("enrolled", "active", "sent") else "left"
        )
    for item in items:
        table.add_row(
            item["name"],
            item["workspace"],
            item["status"],
            str(item["enrolled"]),
            str(item["enrollments"].get("active", 0)),
            str(item["sends"].get("sent", 0)),
        )
    console.print(table)


def _counts(counts: campaigns.Counts) -> dict[str, Any]:
    return {
        "enrolled": counts.enrolled,
        "enrollments": counts.enrollments,
        "sends": counts.sends,
    }


def _window(row: campaigns.CampaignView) -> str:
    days = ", ".join(DAYS[d - 1] for d in row.window_days)
    start, end = row.window_start_minute, row.window_end_minute
    zone = "the lead's timezone" if row.use_lead_timezone else row.timezone
    return f"{days} {start // 60:02d}:{start % 60:02d}–{end // 60:02d}:{end % 60:02d} ({zone})"


def _delay(days: int, minutes: int, business: bool) -> str:
    parts = [f"{days} {'business ' if business else ''}days"] if days or not minutes else []
    if minutes // 60:
        parts.append(f"{minutes // 60} h")
    if minutes % 60:
        parts.append(f"{minutes % 60} min")
    return "+" + " ".join(parts)


def _view_json(view: campaigns.CampaignView) -> dict[str, Any]:
    return {
        "name": view.name,
        "status": view.status,
        "window": _window(view),
        "daily_cap": view.daily_cap,
        "mailbox_tags": list(view.mailbox_tags),
        "mailbox_list": list(view.mailbox_list),
        "mailboxes": list(view.mailboxes),
        "stop": view.stop.model_dump(),
        "steps": [
            {
                "position": s.position,
                "delay_days": s.delay_days,
                "delay_minutes": s.delay_minutes,
                "business_days": s.business_days,
                "threaded": s.threaded,
                "subject": s.subject,
                "variants": [
                    {"name": v.name, "weight": v.weight, "subject": v.subject, "sent": v.sent}
                    for v in s.variants
                ],
            }
            for s in view.steps
        ],
        **_counts(view.counts),
        "readiness": [
            {"level": f.level, "code": f.code, "message": f.message} for f in view.readiness
        ],
        "holds": [
            {
                "mailbox": h.address,
                "code": h.hold.code,
                "reason": h.hold.reason,
                "until": h.hold.until.isoformat(timespec="minutes") if h.hold.until else None,
            }
            for h in view.holds
        ],
    }


@campaign_app.command("show")
def campaign_show(
    name: str, workspace_slug: WorkspaceOption = None, as_json: JsonOption = False
) -> None:
    """One campaign: settings, steps and variants, counts, and what would stop it starting."""

    async def run(db: Database) -> dict[str, Any]:
        view = await campaigns.show(
            db,
            name,
            workspace_slug=workspace_slug,
            at=SystemClock().now(),
            checker=domain_checker(),
            public_url=settings().public_url,
        )
        return _view_json(view)

    item = with_db(run)
    if as_json:
        print(json.dumps(item, indent=2))
        return
    console.print(f"[bold]{item['name']}[/] — {item['status']}", highlight=False)
    console.print(f"window: {item['window']}", highlight=False)
    if item["daily_cap"]:
        console.print(f"daily cap: {item['daily_cap']}", highlight=False)
    selection = (
        ", ".join([f"tag {t}" for t in item["mailbox_tags"]] + item["mailbox_list"])
        or "every mailbox of the workspace"
    )
    console.print(
        f"mailboxes ({selection}): {', '.join(item['mailboxes']) or 'none'}", highlight=False
    )
    stop = item["stop"]
    rules = ["reply", "hard bounce", "complaint", "unsubscribe"]
    rules += ["auto-reply"] if stop["on_auto_reply"] else []
    rules += ["company reply"] if stop["on_company_reply"] else []
    rules += ["soft bounce"] if stop["on_bounce"] == "any" else []
    console.print(f"stops on: {', '.join(rules)}", highlight=False)
    for step in item["steps"]:
        delay = _delay(step["delay_days"], step["delay_minutes"], step["business_days"])
        thread = "threaded" if step["threaded"] and step["position"] > 1 else step["subject"]
        console.print(f"  step {step['position']} ({delay}): {thread}", highlight=False)
        for v in step["variants"]:
            console.print(
                f"    variant {v['name']} weight {v['weight']:g}: {v['subject']} "
                f"({v['sent']} sent)",
                highlight=False,
            )
    enrollments = ", ".join(f"{k} {v}" for k, v in sorted(item["enrollments"].items()))
    sends = ", ".join(f"{k} {v}" for k, v in sorted(item["sends"].items()))
    console.print(f"leads: {item['enrolled']} ({enrollments or 'none'})", highlight=False)
    console.print(f"sends: {sends or 'none'}", highlight=False)
    if item["status"] == "active":
        for hold in item["holds"]:
            console.print(f"  {hold['mailbox']} now: {hold['reason']}", highlight=False)
    for finding in item["readiness"]:
        mark = "[red]✗[/]" if finding["level"] == "error" else "[yellow]![/]"
        console.print(f"  {mark} {finding['message']}", highlight=False)


def _transition(name: str, workspace_slug: str | None, verb: str, *, force: bool = False) -> None:
    async def run(db: Database) -> campaigns.Transitioned:
        return await campaigns.transition(
            db,
            name,
            verb,
            workspace_slug=workspace_slug,
            at=SystemClock().now(),
            checker=domain_checker() if verb == "started" else None,
            public_url=settings().public_url,
            force=force,
        )

    for finding in with_db(run).findings:
        if finding.level == "error":
            console.print(f"  [red]✗ overridden:[/] {finding.message}", highlight=False)
        else:
            console.print(f"  [yellow]![/] {finding.message}", highlight=False)
    console.print(f"campaign {name!r} {verb}", highlight=False)


@campaign_app.command("start")
def campaign_start(
    name: str,
    workspace_slug: WorkspaceOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Start despite failed launch checks; the reasons are recorded."
        ),
    ] = False,
) -> None:
    """Start sending a draft campaign, once its launch checks (the pre-launch gate) pass."""
    _transition(name, workspace_slug, "started", force=force)


@campaign_app.command("pause")
def campaign_pause(name: str, workspace_slug: WorkspaceOption = None) -> None:
    """Stop sending; every lead keeps its place in the sequence."""
    _transition(name, workspace_slug, "paused")


@campaign_app.command("resume")
def campaign_resume(name: str, workspace_slug: WorkspaceOption = None) -> None:
    """Send again after a pause; steps that fell due meanwhile go out first."""
    _transition(name, workspace_slug, "resumed")
