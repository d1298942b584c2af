"""What the campaign, leads, sends and warmup commands share: settings, database, errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console

from mailfleet.config import DataFolderError, Settings
from mailfleet.services.errors import ServiceError
from mailfleet.services.lookup import campaign, workspace
from mailfleet.store import Database

__all__ = [
    "CommandError",
    "campaign",
    "console",
    "err_console",
    "fail",
    "settings",
    "setup_logging",
    "with_db",
    "workspace",
]

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")


class CommandError(ServiceError):
    """A user-facing failure: printed as ``mailfleet: <message>``, exit code 2."""


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise."""
    err_console.print(f"[bold red]mailfleet:[/] {message}", highlight=False)
    return typer.Exit(code)


def settings() -> Settings:
    """The installation's settings, with its data folder ready."""
    try:
        current = Settings()
        current.ensure_home()
    except DataFolderError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # pydantic reports bad values in env or the TOML file
        raise fail(f"invalid configuration: {exc}") from None
    return current


def setup_logging(config: Settings) -> None:
    """Log to ``MAILFLEET_LOG_FILE`` (``$MAILFLEET_HOME/logs/mailfleet.log``) at its level."""
    log_file = config.resolved_log_file
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level.upper())
    # aiosmtpd and uvicorn are chatty at INFO; their warnings still reach the log.
    for noisy in ("mail.log", "uvicorn", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def with_db(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` against the migrated database; a :class:`CommandError` exits 2."""

    async def run() -> T:
        db = Database(settings().resolved_database_url)
        try:
            await db.migrate()
            return await work(db)
        finally:
            await db.close()

    try:
        return asyncio.run(run())
    except ServiceError as exc:  # a CommandError, or a service refusing the request
        raise fail(str(exc)) from None
