"""``mailfleet inventory``: the fleet by domain, with isolation and refresh warnings."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from mailfleet.cli.common import console, with_db
from mailfleet.cli.common import workspace as find_workspace
from mailfleet.clock import SystemClock
from mailfleet.deliverability import (
    DomainRow,
    Inventory,
    InventoryPolicy,
    MailboxRow,
    Severity,
    evaluate_inventory,
)
from mailfleet.store import Database, Domain, Mailbox


async def load_inventory(db: Database, workspace_slug: str | None) -> tuple[str, Inventory]:
    """Read one workspace's domains and mailboxes and apply the inventory rules today."""
    now = SystemClock().now()
    async with db.session() as session:
        ws = await find_workspace(session, workspace_slug)
        domains = list(
            (await session.scalars(select(Domain).where(Domain.workspace_id == ws.id))).all()
        )
        boxes = list(
            (await session.scalars(select(Mailbox).where(Mailbox.workspace_id == ws.id))).all()
        )
        names = {d.id: d.name for d in domains}
        policy = InventoryPolicy(primary_domain=ws.primary_domain, primary_tenant=ws.primary_tenant)
        slug = ws.slug
    inventory = evaluate_inventory(
        [DomainRow(d.name, d.provider, d.tenant) for d in domains],
        [
            MailboxRow(
                address=m.address,
                domain=names.get(m.domain_id, m.address.rpartition("@")[2]),
                provider=m.provider,
                tenant=m.tenant,
                started=m.ramp_start or m.created_at.date(),
                status=m.status,
                tags=tuple(m.tags or ()),
            )
            for m in boxes
        ],
        policy,
        now.date(),
    )
    return slug, inventory


def inventory_json(slug: str, inventory: Inventory) -> dict[str, Any]:
    """The ``--json`` shape."""
    return {
        "workspace": slug,
        "domains": [
            {
                "domain": line.row.name,
                "provider": line.row.provider,
                "tenant": line.row.tenant,
                "mailboxes": [
                    {
                        "address": m.row.address,
                        "provider": m.row.provider,
                        "tenant": m.row.tenant,
                        "started": m.row.started.isoformat(),
                        "age_days": m.age_days,
                        "age_months": m.age_months,
                        "status": m.row.status,
                        "tags": list(m.row.tags),
                    }
                    for m in line.mailboxes
                ],
            }
            for line in inventory.domains
        ],
        "warnings": [
            {
                "rule": w.rule,
                "subject": w.subject,
                "severity": str(w.severity),
                "message": w.message,
            }
            for w in inventory.warnings
        ],
    }


def inventory(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: Annotated[str | None, typer.Option("--workspace")] = None,
) -> None:
    """List sending domains and mailboxes with provider, tenant, age and tags, and warnings."""
    slug, result = with_db(lambda db: load_inventory(db, workspace))
    if as_json:
        print(json.dumps(inventory_json(slug, result), indent=2))
        return
    table = Table(title=f"Inventory of {slug}")
    for column in ("domain", "mailbox", "provider", "tenant", "age", "status", "tags"):
        table.add_column(column, overflow="fold")
    for line in result.domains:
        if not line.mailboxes:
            table.add_row(line.row.name, "-", line.row.provider, line.row.tenant or "-", "", "", "")
        for m in line.mailboxes:
            table.add_row(
                line.row.name,
                m.row.address,
                m.row.provider,
                m.row.tenant or "-",
                f"{m.age_months} mo ({m.age_days} d)",
                m.row.status,
                ", ".join(m.row.tags),
            )
    console.print(table)
    for w in result.warnings:
        colour = "red" if w.severity is Severity.ERROR else "yellow"
        console.print(f"[{colour}]![/] {w.rule}: {w.message}", highlight=False)
    if not result.warnings:
        console.print("[green]no warnings[/]")
