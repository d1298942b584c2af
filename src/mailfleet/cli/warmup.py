"""``mailfleet warmup on|off|pause|resume|set|status``: each mailbox's warmup and what it shows.

While warmup is on (the default for every mailbox), mailfleet's warmup engine
sends the mailbox's daily warmup to peers of other domains and tenants, and a
cold send is admitted only when the mailbox's warmup sends of the day are at
least ``ratio`` times its cold sends including that one (2 by default).
``off`` is for a mailbox warmed by another tool: its cold sends stop waiting
for warmup. ``pause`` stops mailfleet's warmup sends but keeps the ratio rule
(so cold waits too); ``set`` changes the ramp. ``status`` shows the ramp day,
today's warmup and cold against their targets, inbox placement over 7 and 28
days, health and the cold-cap factor.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from mailfleet.cli.common import CommandError, console, with_db
from mailfleet.clock import SystemClock
from mailfleet.engine.snapshot import warmed_policy
from mailfleet.limits import DEFAULT_WARMUP_RATIO, cold_cap_for_day
from mailfleet.planner import local_day
from mailfleet.store import Database, Mailbox, Workspace
from mailfleet.store import commands as store_commands
from mailfleet.store import repository as repo
from mailfleet.store import warmup as wstore
from mailfleet.store.models import WarmupSettings
from mailfleet.warmup import (
    Observation,
    RampSettings,
    daily_target,
    health_score,
    placement_stats,
    ramp_day,
)

warmup_app = typer.Typer(help="Warmup of each mailbox.", no_args_is_help=True)
WorkspaceOption = Annotated[str | None, typer.Option("--workspace")]


async def _settings(db_session: Any, mailbox: Mailbox) -> WarmupSettings:
    now = SystemClock().now()
    return (await wstore.settings_of(db_session, [mailbox], now))[mailbox.id]


def _event(session: Any, mailbox: Mailbox, text: str, kind: str = "mailbox.warmup") -> None:
    repo.add_event(
        session,
        workspace_id=mailbox.workspace_id,
        at=SystemClock().now(),
        kind=kind,
        message=text,
        mailbox_id=mailbox.id,
    )


def _set(address: str, workspace_slug: str | None, enabled: bool, ratio: float | None) -> str:
    async def run(db: Database) -> str:
        async with db.session() as session:
            try:
                mailbox = await store_commands.find_mailbox(session, address, workspace_slug)
            except LookupError as exc:
                raise CommandError(str(exc)) from None
            mailbox.warmup_enabled = enabled
            if ratio is not None:
                mailbox.warmup_ratio = ratio
            effective = (
                mailbox.warmup_ratio if mailbox.warmup_ratio is not None else DEFAULT_WARMUP_RATIO
            )
            text = (
                f"{mailbox.address}: warmup on; each cold send needs {effective:g} warmup sends "
                "that day"
                if enabled
                else f"{mailbox.address}: warmup off; its cold sends are not held to a warmup ratio"
            )
            _event(session, mailbox, text)
            return text

    return with_db(run)


@warmup_app.command("on")
def warmup_on(
    address: str,
    ratio: Annotated[
        float | None,
        typer.Option(min=0.0, max=20.0, help="Warmup sends per cold send (default 2)."),
    ] = None,
    workspace_slug: WorkspaceOption = None,
) -> None:
    """Warm the mailbox and hold its cold sends to the warmup ratio (the default)."""
    console.print(_set(address, workspace_slug, True, ratio), highlight=False)


@warmup_app.command("off")
def warmup_off(address: str, workspace_slug: WorkspaceOption = None) -> None:
    """Turn the rule off for a mailbox warmed elsewhere: its cold sends stop waiting for warmup."""
    console.print(_set(address, workspace_slug, False, None), highlight=False)


def _pause(address: str, workspace_slug: str | None, paused: bool, reason: str | None) -> str:
    async def run(db: Database) -> str:
        async with db.session() as session:
            try:
                mailbox = await store_commands.find_mailbox(session, address, workspace_slug)
            except LookupError as exc:
                raise CommandError(str(exc)) from None
            row = await _settings(session, mailbox)
            row.paused = paused
            row.paused_reason = (reason or "paused by a person") if paused else None
            row.updated_at = SystemClock().now()
            text = (
                f"{mailbox.address}: warmup paused ({row.paused_reason}); its cold sends still "
                "keep to the warmup ratio"
                if paused
                else f"{mailbox.address}: warmup resumed"
            )
            _event(session, mailbox, text, "warmup.paused" if paused else "warmup.resumed")
            return text

    return with_db(run)


@warmup_app.command("pause")
def warmup_pause(
    address: str,
    reason: Annotated[str | None, typer.Option(help="Why, for the timeline.")] = None,
    workspace_slug: WorkspaceOption = None,
) -> None:
    """Stop the mailbox's warmup sends for now (cold keeps waiting on the ratio)."""
    console.print(_pause(address, workspace_slug, True, reason), highlight=False)


@warmup_app.command("resume")
def warmup_resume(address: str, workspace_slug: WorkspaceOption = None) -> None:
    """Resume the mailbox's warmup sends."""
    console.print(_pause(address, workspace_slug, False, None), highlight=False)


@warmup_app.command("set")
def warmup_set(
    address: str,
    start: Annotated[int | None, typer.Option(min=0, max=500, help="Sends on ramp day 1.")] = None,
    step: Annotated[int | None, typer.Option(min=0, max=100, help="Added each day.")] = None,
    ceiling: Annotated[int | None, typer.Option(min=0, max=500, help="Most a day.")] = None,
    weekdays_only: Annotated[bool | None, typer.Option("--weekdays-only/--every-day")] = None,
    restart: Annotated[bool, typer.Option(help="Start the ramp again today.")] = False,
    shared_pool: Annotated[
        bool | None,
        typer.Option("--shared-pool/--own-workspace", help="Opt in to other workspaces' peers."),
    ] = None,
    workspace_slug: WorkspaceOption = None,
) -> None:
    """Change the mailbox's ramp (start, step, ceiling, weekdays only) or restart it."""

    async def run(db: Database) -> str:
        async with db.session() as session:
            try:
                mailbox = await store_commands.find_mailbox(session, address, workspace_slug)
            except LookupError as exc:
                raise CommandError(str(exc)) from None
            row = await _settings(session, mailbox)
            new_start = start if start is not None else row.ramp_start
            new_ceiling = ceiling if ceiling is not None else row.ramp_ceiling
            try:
                ramp = wstore.ramp_of(
                    WarmupSettings(
                        mailbox_id=row.mailbox_id,
                        started_on=row.started_on,
                        ramp_start=new_start,
                        ramp_step=step if step is not None else row.ramp_step,
                        ramp_ceiling=new_ceiling,
                        weekdays_only=weekdays_only
                        if weekdays_only is not None
                        else row.weekdays_only,
                    ),
                    RampSettings(),
                )
            except ValueError as exc:
                raise CommandError(f"{mailbox.address}: {exc}") from None
            row.ramp_start, row.ramp_step, row.ramp_ceiling = ramp.start, ramp.step, ramp.ceiling
            row.weekdays_only = ramp.weekdays_only
            if shared_pool is not None:
                row.shared_pool = shared_pool
            now = SystemClock().now()
            if restart:
                row.started_on = now.date()
            row.updated_at = now
            text = (
                f"{mailbox.address}: warmup ramp {ramp.start} a day, +{ramp.step} a day, up to "
                f"{ramp.ceiling}{', weekdays only' if ramp.weekdays_only else ''}; "
                f"started {row.started_on.isoformat()}"
            )
            _event(session, mailbox, text, "warmup.settings")
            return text

    console.print(with_db(run), highlight=False)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _placement(observed: list[Observation], now: datetime) -> dict[str, Any]:
    """What the peers saw over 7 and 28 days, and the health score of the week."""
    week = placement_stats(observed, now, timedelta(days=7))
    month = placement_stats(observed, now, timedelta(days=28))
    return {
        "sent_28d": month.sent,
        "inbox_7d": week.inbox_share,
        "inbox_28d": month.inbox_share,
        "junk_7d": week.junk_share,
        "junk_28d": month.junk_share,
        "reply_rate_28d": month.reply_rate,
        "bounce_rate_28d": month.bounce_rate,
        "health": health_score(week),
    }


def _by_domain(
    boxes: list[Mailbox], seen: dict[int, list[Observation]], now: datetime
) -> list[dict[str, Any]]:
    """Placement per sending domain: its mailboxes' observations together."""
    groups: dict[str, list[Mailbox]] = {}
    for box in boxes:
        groups.setdefault(box.address.rpartition("@")[2].lower(), []).append(box)
    rows = []
    for domain, members in sorted(groups.items()):
        observed = [o for m in members for o in seen.get(m.id, [])]
        rows.append({"domain": domain, "mailboxes": len(members), **_placement(observed, now)})
    return rows


@warmup_app.command("status")
def warmup_status(
    workspace_slug: WorkspaceOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    by_domain: Annotated[
        bool, typer.Option("--by-domain", help="One row per sending domain instead.")
    ] = False,
) -> None:
    """Per mailbox (or domain): ramp day, today's warmup and cold against targets, placement
    the peers saw over 7 and 28 days, reply and bounce rates, health, the cold-cap factor."""

    async def run(db: Database) -> list[dict[str, Any]]:
        now = SystemClock().now()
        async with db.session() as session:
            query = select(Mailbox).order_by(Mailbox.address)
            if workspace_slug is not None:
                query = query.join(Workspace, Workspace.id == Mailbox.workspace_id).where(
                    Workspace.slug == workspace_slug
                )
            boxes = list((await session.scalars(query)).all())
            usage = await repo.usage_by_mailbox(session, boxes, now)
            rows = await wstore.settings_of(session, boxes, now)
            seen = await wstore.observations(
                session, [b.id for b in boxes], now - timedelta(days=28)
            )
            in_campaign = await wstore.in_running_campaigns(session, boxes)
        if by_domain:
            return _by_domain(boxes, seen, now)
        items = []
        for m in boxes:
            row = rows[m.id]
            day = local_day(now, m.timezone)[0]
            policy = warmed_policy(m, now, factor=row.cold_cap_factor)
            cold_target = cold_cap_for_day(policy, day)
            ramp = wstore.ramp_of(row, RampSettings())
            enabled = m.warmup_enabled is not False
            items.append(
                {
                    "address": m.address,
                    "warmup": enabled,
                    "paused": bool(row.paused),
                    "ratio": m.warmup_ratio if m.warmup_ratio is not None else DEFAULT_WARMUP_RATIO,
                    "ramp_day": ramp_day(row.started_on, day, weekdays_only=ramp.weekdays_only),
                    "warmup_today": usage[m.id].warmup_today,
                    "warmup_target": daily_target(
                        ramp,
                        row.started_on,
                        day,
                        # As the sender plans it: the day's cold cap while a campaign runs.
                        cold=max(usage[m.id].cold_today, cold_target if m.id in in_campaign else 0),
                        ratio=policy.warmup_ratio,
                        seed=(0, m.id),
                    )
                    if enabled and not row.paused
                    else 0,
                    "cold_today": usage[m.id].cold_today,
                    "cold_target": cold_target,
                    **_placement(seen.get(m.id, []), now),
                    "cold_cap_factor": row.cold_cap_factor,
                }
            )
        return items

    items = with_db(run)
    if as_json:
        print(json.dumps(items, indent=2))
        return
    if by_domain:
        table = Table(title="Warmup by sending domain")
        for column in ("domain", "mailboxes", "sent 28d", "inbox 7d", "inbox 28d", "replies"):
            table.add_column(column)
        table.add_column("bounces")
        table.add_column("health")
        for item in items:
            table.add_row(
                item["domain"],
                str(item["mailboxes"]),
                str(item["sent_28d"]),
                _share(item["inbox_7d"]),
                _share(item["inbox_28d"]),
                _share(item["reply_rate_28d"]),
                _share(item["bounce_rate_28d"]),
                "-" if item["health"] is None else str(item["health"]),
            )
        console.print(table)
        return
    table = Table(title="Warmup")
    columns = (
        "mailbox",
        "rule",
        "day",
        "warmup",
        "cold",
        "inbox 7d",
        "inbox 28d",
        "health",
        "cold cap",
    )
    for column in columns:
        table.add_column(column)
    for item in items:
        rule = f"{item['ratio']:g}:1" if item["warmup"] else "off"
        if item["paused"]:
            rule += " (paused)"
        table.add_row(
            item["address"],
            rule,
            str(item["ramp_day"]),
            f"{item['warmup_today']}/{item['warmup_target']}",
            f"{item['cold_today']}/{item['cold_target']}",
            _share(item["inbox_7d"]),
            _share(item["inbox_28d"]),
            "-" if item["health"] is None else str(item["health"]),
            f"{item['cold_cap_factor']:.0%}",
        )
    console.print(table)
