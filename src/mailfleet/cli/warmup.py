"""``mailfleet warmup on|off|status``: whether a mailbox's cold sends keep to the warmup ratio.

While warmup is on (the default for every mailbox), a cold send is admitted only
when the mailbox's warmup sends of the day are at least ``ratio`` times its cold
sends including that one (2 by default). mailfleet's warmup engine is not built
yet; a mailbox warmed by another tool has its rule turned off here, explicitly.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from mailfleet.cli.common import CommandError, console, with_db
from mailfleet.clock import SystemClock
from mailfleet.limits import DEFAULT_WARMUP_RATIO
from mailfleet.store import Database, Mailbox, Workspace
from mailfleet.store import commands as store_commands
from mailfleet.store import repository as repo

warmup_app = typer.Typer(help="Warmup rule of each mailbox.", no_args_is_help=True)
WorkspaceOption = Annotated[str | None, typer.Option("--workspace")]


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
            repo.add_event(
                session,
                workspace_id=mailbox.workspace_id,
                at=SystemClock().now(),
                kind="mailbox.warmup",
                message=text,
                mailbox_id=mailbox.id,
            )
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
    """Hold the mailbox's cold sends to the warmup ratio (the default)."""
    console.print(_set(address, workspace_slug, True, ratio), highlight=False)


@warmup_app.command("off")
def warmup_off(address: str, workspace_slug: WorkspaceOption = None) -> None:
    """Turn the rule off for a mailbox warmed elsewhere: its cold sends stop waiting for warmup."""
    console.print(_set(address, workspace_slug, False, None), highlight=False)


@warmup_app.command("status")
def warmup_status(
    workspace_slug: WorkspaceOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Each mailbox's warmup rule, and its warmup and cold sends today."""

    async def run(db: Database) -> list[dict[str, Any]]:
        async with db.session() as session:
            query = select(Mailbox).order_by(Mailbox.address)
            if workspace_slug is not None:
                query = query.join(Workspace, Workspace.id == Mailbox.workspace_id).where(
                    Workspace.slug == workspace_slug
                )
            boxes = list((await session.scalars(query)).all())
            usage = await repo.usage_by_mailbox(session, boxes, SystemClock().now())
        return [
            {
                "address": m.address,
                "warmup": m.warmup_enabled is not False,
                "ratio": m.warmup_ratio if m.warmup_ratio is not None else DEFAULT_WARMUP_RATIO,
                "warmup_today": usage[m.id].warmup_today,
                "cold_today": usage[m.id].cold_today,
            }
            for m in boxes
        ]

    items = with_db(run)
    if as_json:
        print(json.dumps(items, indent=2))
        return
    table = Table(title="Warmup")
    for column in ("mailbox", "rule", "warmup today", "cold today"):
        table.add_column(column)
    for item in items:
        rule = f"{item['ratio']:g}:1" if item["warmup"] else "off"
        table.add_row(item["address"], rule, str(item["warmup_today"]), str(item["cold_today"]))
    console.print(table)
