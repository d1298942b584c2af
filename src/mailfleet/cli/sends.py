"""``mailfleet sends unknown``: the sends whose fate a person must decide.

A send is ``unknown`` when the server may have accepted it but no one can tell:
the connection died after the message was handed over, or the process stopped
while submitting it, and its Message-ID is not in the mailbox's Sent folder (or
the folder could not be read). mailfleet never resends those by itself (``mailfleet
run`` looks them up again every 30 minutes); ``mailfleet sends resolve ID --sent |
--resend | --skip`` records a person's decision and the lead's sequence goes on.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from mailfleet.cli.common import console, with_db
from mailfleet.clock import SystemClock
from mailfleet.services import sends
from mailfleet.store import Database

sends_app = typer.Typer(help="Sends: the ones a person must look at.", no_args_is_help=True)


@sends_app.command("unknown")
def sends_unknown(
    workspace_slug: Annotated[str | None, typer.Option("--workspace")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List sends that may or may not have been delivered; none of them is resent."""

    async def run(db: Database) -> list[dict[str, Any]]:
        return [
            {
                "id": u.id,
                "workspace": u.workspace,
                "at": u.at.isoformat(timespec="seconds"),
                "mailbox": u.mailbox,
                "to": u.to,
                "campaign": u.campaign,
                "step": u.step,
                "message_id": u.message_id,
                "reconciled_at": u.reconciled_at.isoformat(timespec="seconds")
                if u.reconciled_at
                else None,
                "why": u.why,
            }
            for u in await sends.unknown_sends(db, workspace_slug)
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


@sends_app.command("resolve")
def sends_resolve(
    send_id: Annotated[int, typer.Argument(help="The id `mailfleet sends unknown` shows.")],
    sent: Annotated[bool, typer.Option("--sent", help="It was delivered: go on.")] = False,
    resend: Annotated[
        bool, typer.Option("--resend", help="It was not: send again, same Message-ID.")
    ] = False,
    skip: Annotated[
        bool, typer.Option("--skip", help="Leave it unsent; move to the next step.")
    ] = False,
) -> None:
    """Decide an unknown send; the lead's sequence continues after the decision."""
    options: list[tuple[sends.Decision, bool]] = [
        ("sent", sent),
        ("resend", resend),
        ("skip", skip),
    ]
    chosen = [name for name, on in options if on]
    if len(chosen) != 1:
        raise typer.BadParameter("give exactly one of --sent, --resend, --skip")
    decision = chosen[0]

    async def run(db: Database) -> sends.Resolved:
        return await sends.resolve(db, send_id, decision, at=SystemClock().now())

    done = with_db(run)
    then = (
        f"next due {done.next_due_at:%Y-%m-%d %H:%M} UTC"
        if done.next_due_at
        else f"sequence {done.enrollment_status or 'none'}"
    )
    console.print(f"send {send_id} resolved as {decision} ({done.status}); {then}", highlight=False)
