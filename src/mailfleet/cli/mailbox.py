"""``mailfleet mailbox …`` and ``mailfleet doctor``: register mailboxes and check them."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mailfleet.config import DataFolderError, Settings
from mailfleet.providers import get_preset
from mailfleet.providers.validation import ProviderConfigError, validate_endpoint
from mailfleet.store import Database, Mailbox
from mailfleet.store import commands as store_commands
from mailfleet.transport.secrets import SecretBox, SecretError

mailbox_app = typer.Typer(help="Mailboxes of the fleet.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]mailfleet:[/] {message}", highlight=False)
    return typer.Exit(code)


def _secret_box(settings: Settings) -> SecretBox:
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    return SecretBox.from_key_file(settings.resolved_key_file, key)


def _from_env(variable: str, what: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise _fail(f"environment variable {variable} is not set; it must hold the {what}")
    return value


@mailbox_app.command("add")
def mailbox_add(
    address: str,
    provider: Annotated[str, typer.Option(help="microsoft365, google or generic")] = "microsoft365",
    smtp_host: Annotated[str | None, typer.Option(help="Default: the provider's.")] = None,
    smtp_port: Annotated[int | None, typer.Option()] = None,
    smtp_security: Annotated[str | None, typer.Option(help="starttls, tls or plain")] = None,
    imap_host: Annotated[str | None, typer.Option()] = None,
    imap_port: Annotated[int | None, typer.Option()] = None,
    imap_security: Annotated[str, typer.Option(help="tls, starttls or plain")] = "tls",
    username: Annotated[str | None, typer.Option(help="Login name if not the address.")] = None,
    password_env: Annotated[
        str | None, typer.Option(help="Name of the environment variable holding the password.")
    ] = None,
    token_url: Annotated[str | None, typer.Option(help="OAuth token endpoint (app-only).")] = None,
    client_id: Annotated[str | None, typer.Option(help="OAuth client (application) id.")] = None,
    client_secret_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the OAuth client secret.")
    ] = None,
    tenant: Annotated[str | None, typer.Option()] = None,
    ca_file: Annotated[
        Path | None, typer.Option(help="Extra CA certificate (PEM) to trust for this mailbox.")
    ] = None,
    display_name: Annotated[str, typer.Option()] = "",
    timezone: Annotated[str, typer.Option(help="IANA zone its sending day is counted in.")] = "UTC",
    workspace: Annotated[str, typer.Option()] = "default",
) -> None:
    """Register a mailbox; secrets are read from environment variables, never the command line."""
    if "@" not in address:
        raise _fail(f"{address!r} is not an email address")
    try:
        preset = get_preset(provider)
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None
    host = smtp_host or preset.smtp_host
    if host is None:
        raise _fail(f"--smtp-host is required for provider {provider}")
    port = smtp_port or preset.smtp_port
    security = smtp_security or preset.smtp_security
    if client_id or token_url or client_secret_env:
        if not (client_id and token_url and client_secret_env):
            raise _fail("OAuth app-only needs --token-url, --client-id and --client-secret-env")
        auth_kind = "oauth2_client"
        secret: dict[str, str] = {
            "client_secret": _from_env(client_secret_env, "OAuth client secret")
        }
    elif password_env:
        auth_kind = "password"
        secret = {"password": _from_env(password_env, "mailbox password")}
        if username:
            secret["username"] = username
    else:
        raise _fail("give --password-env VAR, or --token-url/--client-id/--client-secret-env")
    try:
        warnings = validate_endpoint(
            provider, smtp_host=host, smtp_port=port, smtp_security=security, auth_kind=auth_kind
        )
    except ProviderConfigError as exc:
        raise _fail(str(exc)) from None
    if ca_file is not None and not ca_file.is_file():
        raise _fail(f"--ca-file {ca_file}: no such file")
    for warning in warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    settings = Settings()
    try:
        settings.ensure_home()
        box = _secret_box(settings)
    except (DataFolderError, SecretError) as exc:
        raise _fail(str(exc)) from None

    async def run() -> Mailbox:
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
            async with db.session() as session:
                return await store_commands.add_mailbox(
                    session,
                    workspace,
                    store_commands.MailboxSettings(
                        address=address,
                        provider=provider,
                        smtp_host=host,
                        smtp_port=port,
                        smtp_security=security,
                        imap_host=imap_host or preset.imap_host,
                        imap_port=imap_port or preset.imap_port,
                        imap_security=imap_security,
                        auth_kind=auth_kind,
                        secret=box.seal(secret),
                        token_endpoint=token_url,
                        client_id=client_id,
                        tenant=tenant,
                        ca_file=str(ca_file.resolve()) if ca_file else None,
                        display_name=display_name,
                        timezone=timezone,
                    ),
                    datetime.now(UTC),
                )
        finally:
            await db.close()

    try:
        mailbox = asyncio.run(run())
    except store_commands.MailboxExistsError as exc:
        raise _fail(str(exc)) from None
    console.print(
        f"added {mailbox.address} ({provider}, {auth_kind}) to workspace {workspace!r}; "
        f"check it with `mailfleet doctor {mailbox.address}`",
        highlight=False,
    )


@mailbox_app.command("list")
def mailbox_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List every mailbox with its provider, endpoint and status (never its secrets)."""
    settings = Settings()

    async def run() -> list[Mailbox]:
        from sqlalchemy import select

        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
            async with db.session() as session:
                return list(
                    (await session.scalars(select(Mailbox).order_by(Mailbox.address))).all()
                )
        finally:
            await db.close()

    rows = asyncio.run(run())
    data = [
        {
            "address": m.address,
            "provider": m.provider,
            "auth": m.auth_kind,
            "smtp": f"{m.smtp_host}:{m.smtp_port} {m.smtp_security}",
            "status": m.status,
            "reason": m.status_reason,
        }
        for m in rows
    ]
    if as_json:
        print(json.dumps(data, indent=2))
        return
    table = Table(title="Mailboxes")
    for column in ("address", "provider", "auth", "smtp", "status"):
        table.add_column(column)
    for item in data:
        table.add_row(*(str(item[c]) for c in ("address", "provider", "auth", "smtp", "status")))
    console.print(table)
