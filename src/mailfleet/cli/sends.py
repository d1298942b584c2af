"""``mailfleet sends unknown``: the sends whose fate a person must decide.

A send is ``unknown`` when the server may have accepted it but no one can tell:
the connection died after the message was handed over, or the process stopped
while submitting it, and its Message-ID is not in the mailbox's Sent folder (or
the folder could not be read). mailfleet never resends those by itself.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from sqlalchemy import select

from mailfleet.cli.common import console, with_db
from mailfleet.store import Campaign, Database, Mailbox, Send, SendStatus, Workspace

sends_app = typer.Typer(help="Sends: the ones a person must look at.", no_args_is_help=True)


@sends_app.command("unknown")
def sends_unknown(
    workspace_slug: Annotated[str | None, typer.Option("--workspace")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List sends that may or may not have been delivered; none of them is resent."""

    async def run(db: Database) -> list[dict[str, Any]]:
        async with db.session() as session:
            query = (
                select(Send, Mailbox.address, Campaign.name, Workspace.slug)
                .join(Mailbox, Mailbox.id == Send.mailbox_id)
                .join(Workspace, Workspace.id == Send.workspace_id)
                .outerjoin(Campaign, Campaign.id == Send.campaign_id)
                .where(Send.status == SendStatus.UNKNOWN)
                .order_by(Send.claimed_at, Send.id)
            )
            if workspace_slug is not None:
                query = query.where(Workspace.slug == workspace_slug)
            return [
                {
                    "id": send.id,
                    "workspace": slug,
                    "at": send.claimed_at.isoformat(timespec="seconds"),
                    "mailbox": address,
                    "to": send.to_address,
                    "campaign": name,
                    "step": send.step_position,
                    "message_id": send.message_id,
                    "reconciled_at": send.reconciled_at.isoformat(timespec="seconds")
                    if send.reconciled_at
                    else None,
                    "why": send.error,
                }
                for send, address, name, slug in (await session.execute(query)).all()
            ]

    items = with_db(run)
    if as_json:
        print(json.dumps(items, indent=2))
        return
    if not items:
        console.print("no unknown sends", highlight=False)
        return
    console.print(f"{len(items)} unknown send(s); none is resent automatically:", highlight=False)
    for item in items:
        where = f"{item['campaign']} step {item['step']}" if item["campaign"] else "no campaign"
        console.print(
            f"  {item['id']}  {item['at']}  {item['mailbox']} → {item['to']}  ({where})",
            highlight=False,
        )
        console.print(f"      Message-ID {item['message_id']}", highlight=False, soft_wrap=True)
        console.print(f"      {item['why']}", highlight=False)
