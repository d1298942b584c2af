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
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.campaigns import CampaignFileError, StopRules, load_campaign
from mailfleet.cli.common import (
    CommandError,
    campaign,
    console,
    fail,
    settings,
    with_db,
    workspace,
)
from mailfleet.clock import SystemClock
from mailfleet.engine.dns_checks import ResolverDomainChecker
from mailfleet.readiness import DomainChecker, Finding, assess
from mailfleet.store import (
    Campaign,
    CampaignStatus,
    Database,
    Enrollment,
    Send,
    Workspace,
)
from mailfleet.store import commands as store_commands
from mailfleet.store import repository as repo
from mailfleet.store.launch import gate_facts
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


@campaign_app.command("create")
def campaign_create(path: Path, workspace_slug: WorkspaceOption = None) -> None:
    """Validate a campaign file and store it as a draft (templates checked, nothing sent)."""
    try:
        spec = load_campaign(path)
    except CampaignFileError as exc:
        raise fail(str(exc)) from None

    async def run(db: Database) -> tuple[str, list[str]]:
        async with db.session() as session:
            ws = await workspace(session, workspace_slug, create=True)
            taken = await session.scalar(
                select(Campaign.id).where(
                    Campaign.workspace_id == ws.id, Campaign.name == spec.name
                )
            )
            if taken is not None:
                raise CommandError(
                    f"{path}: workspace {ws.slug!r} already has a campaign {spec.name!r}; "
                    "rename it in the file"
                )
            now = SystemClock().now()
            row = store_commands.campaign_from_spec(ws.id, spec, now)
            session.add(row)
            await session.flush()
            repo.add_event(
                session,
                workspace_id=ws.id,
                at=now,
                kind="campaign.created",
                message=f"from {path}",
                campaign_id=row.id,
            )
            facts = await repo.launch_facts(session, row, now)
            notes = [
                f.message
                for f in assess(facts)
                if f.code in ("mailbox_missing", "tag_unmatched", "no_mailbox")
            ]
            return ws.slug, notes

    slug, notes = with_db(run)
    console.print(
        f"created campaign {spec.name!r} in workspace {slug!r} as a draft "
        f"({len(spec.steps)} steps); import leads with "
        f"`mailfleet leads import FILE.csv --campaign {spec.name!r}`, then "
        f"`mailfleet campaign start {spec.name!r}`",
        highlight=False,
    )
    for note in notes:
        console.print(f"  [yellow]![/] {note}", highlight=False)


@campaign_app.command("list")
def campaign_list(workspace_slug: WorkspaceOption = None, as_json: JsonOption = False) -> None:
    """Every campaign with its status, leads and sends."""

    async def run(db: Database) -> list[dict[str, Any]]:
        async with db.session() as session:
            query = (
                select(Campaign, Workspace.slug)
                .join(Workspace, Workspace.id == Campaign.workspace_id)
                .order_by(Workspace.slug, Campaign.name)
            )
            if workspace_slug is not None:
                query = query.where(Workspace.slug == workspace_slug)
            out = []
            for row, slug in (await session.execute(query)).all():
                out.append(
                    {"name": row.name, "workspace": slug, "status": row.status}
                    | await _counts(session, row)
                )
            return out

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


async def _counts(session: AsyncSession, row: Campaign) -> dict[str, Any]:
    enrollments = dict(
        (
            await session.execute(
                select(Enrollment.status, func.count())
                .where(Enrollment.campaign_id == row.id)
                .group_by(Enrollment.status)
            )
        ).all()
    )
    sends = dict(
        (
            await session.execute(
                select(Send.status, func.count())
                .where(Send.campaign_id == row.id)
                .group_by(Send.status)
            )
        ).all()
    )
    return {
        "enrolled": sum(enrollments.values()),
        "enrollments": {str(k): int(v) for k, v in enrollments.items()},
        "sends": {str(k): int(v) for k, v in sends.items()},
    }


def _window(row: Campaign) -> str:
    days = ", ".join(DAYS[d - 1] for d in sorted(row.window_days))
    start, end = row.window_start_minute, row.window_end_minute
    zone = "the lead's timezone" if row.use_lead_timezone else row.timezone
    return f"{days} {start // 60:02d}:{start % 60:02d}–{end // 60:02d}:{end % 60:02d} ({zone})"


@campaign_app.command("show")
def campaign_show(
    name: str, workspace_slug: WorkspaceOption = None, as_json: JsonOption = False
) -> None:
    """One campaign: settings, steps and variants, counts, and what would stop it starting."""

    async def run(db: Database) -> dict[str, Any]:
        async with db.session() as session:
            row = await campaign(session, name, workspace_slug)
            now = SystemClock().now()
            mailboxes = await repo.selected_mailboxes(session, row)
            variants = Counter(
                (int(step or 0), str(variant))
                for step, variant in (
                    await session.execute(
                        select(Send.step_position, Send.variant).where(
                            Send.campaign_id == row.id,
                            Send.variant.is_not(None),
                            Send.status == "sent",
                        )
                    )
                ).all()
            )
            settings = row.settings or {}
            return {
                "name": row.name,
                "status": row.status,
                "window": _window(row),
                "daily_cap": row.daily_cap,
                "mailbox_tags": list(row.mailbox_tags or []),
                "mailbox_list": list(settings.get("mailboxes") or []),
                "mailboxes": [m.address for m in mailboxes],
                "stop": StopRules.from_settings(settings).model_dump(),
                "steps": [
                    {
                        "position": s.position,
                        "delay_days": s.delay_days,
                        "business_days": s.business_days,
                        "threaded": s.threaded,
                        "subject": s.subject,
                        "variants": [
                            {
                                "name": v["name"],
                                "weight": v["weight"],
                                "subject": v["subject"],
                                "sent": variants.get((s.position, v["name"]), 0),
                            }
                            for v in (s.variants or {}).get("variants") or []
                        ],
                    }
                    for s in row.steps
                ],
                **await _counts(session, row),
                "readiness": [
                    {"level": f.level, "code": f.code, "message": f.message}
                    for f in assess(await gate_facts(session, row, now, domain_checker()))
                ],
            }

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
        delay = f"+{step['delay_days']} {'business ' if step['business_days'] else ''}days"
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
    for finding in item["readiness"]:
        mark = "[red]✗[/]" if finding["level"] == "error" else "[yellow]![/]"
        console.print(f"  {mark} {finding['message']}", highlight=False)


def _transition(
    name: str,
    workspace_slug: str | None,
    allowed: tuple[str, ...],
    target: CampaignStatus,
    verb: str,
    *,
    force: bool = False,
) -> None:
    async def run(db: Database) -> list[Finding]:
        async with db.session() as session:
            row = await campaign(session, name, workspace_slug)
            if row.status == target:
                raise CommandError(f"campaign {name!r} is already {target}")
            if row.status not in allowed:
                hint = {
                    CampaignStatus.PAUSED: "resume it",
                    CampaignStatus.DRAFT: "start it",
                    CampaignStatus.ACTIVE: "pause it",
                }.get(CampaignStatus(row.status), "create a new one")
                raise CommandError(f"campaign {name!r} is {row.status}: {hint} instead")
            now = SystemClock().now()
            findings: list[Finding] = []
            if verb == "started":
                findings = assess(await gate_facts(session, row, now, domain_checker()))
                errors = [f for f in findings if f.level == "error"]
                if errors and not force:
                    lines = "\n".join(f"  ✗ {f.message}" for f in errors)
                    raise CommandError(
                        f"campaign {name!r} cannot start:\n{lines}\n"
                        "(--force starts it anyway and records these reasons)"
                    )
                if errors:
                    event = repo.add_event(
                        session,
                        workspace_id=row.workspace_id,
                        at=now,
                        kind="campaign.forced",
                        message=f"started despite {len(errors)} launch check error(s): "
                        + "; ".join(f.message for f in errors),
                        campaign_id=row.id,
                    )
                    event.data = {
                        "overridden": [{"code": f.code, "message": f.message} for f in errors]
                    }
                row.started_at = row.started_at or now
            row.status = target
            repo.add_event(
                session,
                workspace_id=row.workspace_id,
                at=now,
                kind=f"campaign.{verb}",
                message=f"campaign {row.name} {verb}",
                campaign_id=row.id,
            )
            return findings

    for finding in with_db(run):
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
    _transition(
        name,
        workspace_slug,
        (CampaignStatus.DRAFT,),
        CampaignStatus.ACTIVE,
        "started",
        force=force,
    )


@campaign_app.command("pause")
def campaign_pause(name: str, workspace_slug: WorkspaceOption = None) -> None:
    """Stop sending; every lead keeps its place in the sequence."""
    _transition(name, workspace_slug, (CampaignStatus.ACTIVE,), CampaignStatus.PAUSED, "paused")


@campaign_app.command("resume")
def campaign_resume(name: str, workspace_slug: WorkspaceOption = None) -> None:
    """Send again after a pause; steps that fell due meanwhile go out first."""
    _transition(name, workspace_slug, (CampaignStatus.PAUSED,), CampaignStatus.ACTIVE, "resumed")
