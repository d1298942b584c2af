"""``mailfleet keys …``: the encryption keys of stored secrets, rotated without downtime.

With a key file (the default, ``$MAILFLEET_HOME/secret.key``), ``rotate`` puts a new
key first and keeps the old ones for decryption, re-encrypts every stored secret
under the new key (running processes re-read the key file by themselves), and
with ``--drop-old`` removes the old keys once nothing needs them. With
``MAILFLEET_SECRET_KEY`` (comma-separated, newest first) the operator puts the new
key first in the variable and ``rotate`` re-encrypts under it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import select

from mailfleet.config import DataFolderError, Settings
from mailfleet.store import Database, Mailbox
from mailfleet.store.credentials import RekeyReport, reencrypt_secrets
from mailfleet.transport.secrets import (
    SecretBox,
    SecretError,
    new_key,
    read_key_file,
    write_key_file,
)

keys_app = typer.Typer(help="Encryption keys of stored secrets.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]mailfleet:[/] {message}", highlight=False)
    return typer.Exit(code)


def _box(settings: Settings) -> SecretBox:
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    try:
        return SecretBox.from_key_file(settings.resolved_key_file, key)
    except SecretError as exc:
        raise _fail(str(exc)) from None


async def _survey(db: Database, box: SecretBox) -> tuple[int, int, list[str]]:
    """(secrets, sealed with the newest key, addresses whose secret does not open)."""
    total = newest = 0
    broken: list[str] = []
    async with db.session() as session:
        rows = (await session.execute(select(Mailbox.address, Mailbox.secret))).all()
    for address, blob in rows:
        if blob is None:
            continue
        total += 1
        if box.sealed_with_newest(blob):
            newest += 1
            continue
        try:
            box.open(blob)
        except SecretError:
            broken.append(address)
    return total, newest, broken


def _settings() -> Settings:
    settings = Settings()
    try:
        settings.ensure_home()
    except DataFolderError as exc:
        raise _fail(str(exc)) from None
    return settings


@keys_app.command("status")
def keys_status() -> None:
    """How many keys there are and how many secrets each generation still holds."""
    settings = _settings()
    box = _box(settings)

    async def run() -> tuple[int, int, list[str]]:
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
            return await _survey(db, box)
        finally:
            await db.close()

    total, newest, broken = asyncio.run(run())
    where = "MAILFLEET_SECRET_KEY" if settings.secret_key else str(settings.resolved_key_file)
    console.print(
        f"{box.key_count} key(s) in {where}; {total} stored secret(s): {newest} under the "
        f"newest key, {total - newest - len(broken)} under older keys, {len(broken)} unreadable",
        highlight=False,
    )
    for address in broken:
        console.print(f"  [red]✗[/] {address}: does not decrypt with any key", highlight=False)
    if broken:
        raise typer.Exit(1)


@keys_app.command("rotate")
def keys_rotate(
    drop_old: Annotated[
        bool, typer.Option("--drop-old", help="Remove older keys once nothing needs them.")
    ] = False,
) -> None:
    """Re-encrypt every stored secret under a new key, with no downtime."""
    settings = _settings()
    box = _box(settings)
    from_env = settings.secret_key is not None
    key_file = settings.resolved_key_file

    async def run() -> tuple[RekeyReport, tuple[int, int, list[str]]]:
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
            _, _, broken = await _survey(db, box)
            if broken:
                raise _fail(
                    f"{len(broken)} stored secret(s) do not decrypt with the configured keys "
                    f"({', '.join(broken[:5])}); nothing was changed. Put the missing key "
                    "back (after the newest one) and run `mailfleet keys rotate` again"
                )
            if not from_env:
                # New key first, old keys kept: everything stays readable meanwhile.
                write_key_file(key_file, [new_key(), *read_key_file(key_file)])
            report = await reencrypt_secrets(db, _rotator(box))
            return report, await _survey(db, box)
        finally:
            await db.close()

    try:
        report, (total, newest, broken) = asyncio.run(run())
    except (OSError, SecretError) as exc:
        raise _fail(f"key rotation stopped: {exc}; stored secrets remain readable") from None
    console.print(
        f"re-encrypted {report.reencrypted} of {report.total} mailbox secret(s) under the "
        f"new key ({report.retried} re-read because a running process renewed them)",
        highlight=False,
    )
    remaining = total - newest
    if from_env:
        console.print(
            "the newest key is the first one of MAILFLEET_SECRET_KEY; "
            + (
                "older keys in it may now be removed"
                if remaining == 0
                else f"{remaining} secret(s) still need older keys: run rotate again"
            ),
            highlight=False,
        )
        return
    if drop_old and remaining == 0 and not broken:
        write_key_file(key_file, read_key_file(key_file)[:1])
        console.print(f"older keys removed from {key_file}", highlight=False)
    elif drop_old:
        raise _fail(f"{remaining} secret(s) still need older keys; they were kept in {key_file}", 1)
    else:
        console.print(
            f"older keys kept in {key_file} for decryption; drop them with "
            "`mailfleet keys rotate --drop-old` or edit the file once every process is updated",
            highlight=False,
        )


def _rotator(box: SecretBox) -> Callable[[bytes], bytes]:
    """``box.rotate`` raising ValueError for a secret no key opens."""

    def rotate(blob: bytes) -> bytes:
        try:
            return box.rotate(blob)
        except SecretError as exc:
            raise ValueError(str(exc)) from None

    return rotate
