"""``mailfleet mailbox set ADDRESS …``: change a mailbox's settings, keeping its history."""

from __future__ import annotations

from typing import Annotated

import typer

from mailfleet.cli.common import console, err_console, with_db
from mailfleet.clock import SystemClock
from mailfleet.services import mailboxes
from mailfleet.store import Database


def mailbox_set(
    address: str,
    display_name: Annotated[str | None, typer.Option(help="The From name.")] = None,
    timezone: Annotated[
        str | None, typer.Option(help="IANA zone its sending day and warmup hours follow.")
    ] = None,
    ca_file: Annotated[
        str | None, typer.Option(help="Extra CA (PEM) to trust; '' drops it.")
    ] = None,
    smtp_host: Annotated[str | None, typer.Option()] = None,
    smtp_port: Annotated[int | None, typer.Option()] = None,
    smtp_security: Annotated[str | None, typer.Option(help="starttls, tls or plain")] = None,
    imap_host: Annotated[str | None, typer.Option(help="'' stops reading over IMAP.")] = None,
    imap_port: Annotated[int | None, typer.Option()] = None,
    imap_security: Annotated[str | None, typer.Option(help="tls, starttls or plain")] = None,
    pop3_host: Annotated[
        str | None, typer.Option(help="Read over POP3 when there is no IMAP host; '' drops it.")
    ] = None,
    pop3_port: Annotated[int | None, typer.Option()] = None,
    pop3_security: Annotated[str | None, typer.Option(help="tls, starttls or plain")] = None,
    daily_cap: Annotated[
        int | None, typer.Option(min=0, help="Most cold sends a day (0: the ramp's only).")
    ] = None,
    min_gap: Annotated[
        float | None,
        typer.Option(min=0, help="Minutes between two cold sends (0: the default 9)."),
    ] = None,
    max_per_minute: Annotated[
        int | None, typer.Option(min=0, help="Messages a minute (0: the provider's).")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Replace the tags (repeatable).")
    ] = None,
    workspace: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Change a mailbox's endpoint, timezone, caps, tags or name; its history stays."""
    changes = mailboxes.MailboxChanges(
        display_name=display_name,
        timezone=timezone,
        ca_file=ca_file,
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        smtp_security=smtp_security,
        imap_host=imap_host,
        imap_port=imap_port,
        imap_security=imap_security,
        pop3_host=pop3_host,
        pop3_port=pop3_port,
        pop3_security=pop3_security,
        daily_cap=daily_cap,
        min_gap_seconds=None if min_gap is None else round(min_gap * 60),
        max_per_minute=max_per_minute,
        tags=None if tag is None else tuple(tag),
    )

    async def run(db: Database) -> mailboxes.MailboxUpdated:
        return await mailboxes.update(
            db, address, changes, workspace_slug=workspace, at=SystemClock().now()
        )

    done = with_db(run)
    for warning in done.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if not done.changed:
        console.print(f"{done.address}: nothing changed", highlight=False)
        return
    for name, old, new in done.changed:
        console.print(f"{done.address}: {name} {old!r} → {new!r}", highlight=False)
