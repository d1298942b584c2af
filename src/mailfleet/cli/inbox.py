"""``mailfleet inbox``: the unified inbox — what people wrote back, across every mailbox.

Newest first, read from what the inbox sync recorded; by default replies and
requests to be removed, ``--kind`` for others (``--kind all`` for everything).
``--json`` prints one JSON array of objects with stable keys: ``received_at``,
``kind``, ``mailbox``, ``folder``, ``from``, ``from_name``, ``subject``, ``text``,
``campaign``, ``lead``, ``matched_by``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from mailfleet.cli.common import console, with_db
from mailfleet.cli.common import workspace as find_workspace
from mailfleet.inbound import Kind
from mailfleet.services.errors import ServiceError
from mailfleet.store import Database
from mailfleet.store.inbox_queries import REPLY_KINDS, InboxEntry, unified_inbox

KINDS = tuple(str(kind) for kind in Kind)


def _entry_json(entry: InboxEntry) -> dict[str, Any]:
    return {
        "received_at": entry.received_at.isoformat(),
        "kind": entry.kind,
        "mailbox": entry.mailbox,
        "folder": entry.folder,
        "from": entry.from_address,
        "from_name": entry.from_name,
        "subject": entry.subject,
        "text": entry.text,
        "campaign": entry.campaign,
        "lead": entry.lead,
        "matched_by": entry.matched_by,
    }


def _snippet(text: str, width: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def inbox(
    campaign: Annotated[
        str | None, typer.Option("--campaign", help="Only answers to this campaign.")
    ] = None,
    mailbox: Annotated[
        str | None, typer.Option("--mailbox", help="Only what this mailbox received.")
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            help=f"Kinds to show (repeatable): {', '.join(KINDS)}, or all. "
            "Default: reply and unsubscribe.",
        ),
    ] = None,
    workspace: Annotated[str | None, typer.Option("--workspace", help="Workspace slug.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The unified inbox: replies across all mailboxes, newest first."""
    kinds: tuple[str, ...] | None = REPLY_KINDS
    if kind:
        wanted = [k.strip().lower().replace("-", "_") for k in kind]
        if "all" in wanted:
            kinds = None
        else:
            unknown = sorted(set(wanted) - set(KINDS))
            if unknown:
                raise typer.BadParameter(
                    f"unknown kind {', '.join(unknown)}; use {', '.join(KINDS)} or all",
                    param_hint="--kind",
                )
            kinds = tuple(wanted)

    async def load(db: Database) -> list[InboxEntry]:
        async with db.session() as session:
            try:
                found = await find_workspace(session, workspace)
            except ServiceError:
                if workspace is not None:
                    raise
                return []  # nothing set up yet: an empty inbox
            return await unified_inbox(
                session,
                workspace_id=found.id,
                kinds=kinds,
                campaign=campaign,
                mailbox=mailbox,
                limit=limit,
            )

    entries = with_db(load)
    if as_json:
        print(json.dumps([_entry_json(e) for e in entries], indent=2, ensure_ascii=False))
        return
    if not entries:
        console.print("no messages", highlight=False)
        return
    table = Table(title="Inbox")
    table.add_column("received (UTC)", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    for column in ("mailbox", "from", "campaign", "message"):
        table.add_column(column)
    for entry in entries:
        subject = _snippet(entry.subject, 50)
        text = _snippet(entry.text)
        table.add_row(
            entry.received_at.strftime("%Y-%m-%d %H:%M"),
            entry.kind + (" (junk)" if entry.folder.lower() in ("junk", "spam") else ""),
            entry.mailbox,
            entry.from_address,
            entry.campaign or "-",
            Text.assemble((subject, "bold"), "\n" + text if text else ""),
        )
    console.print(table)
