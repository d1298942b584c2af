"""What the campaign, leads, sends and warmup commands share: settings, database, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.config import DataFolderError, Settings
from mailfleet.store import Campaign, Database, Workspace

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")


class CommandError(Exception):
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
    except CommandError as exc:
        raise fail(str(exc)) from None


async def workspace(session: AsyncSession, slug: str | None, *, create: bool = False) -> Workspace:
    """The workspace called ``slug``, or the only one there is (``create``: make it if new)."""
    if slug is not None:
        found = await session.scalar(select(Workspace).where(Workspace.slug == slug))
        if found is not None:
            return found
        if not create:
            raise CommandError(f"no workspace {slug!r}")
    else:
        every = list((await session.scalars(select(Workspace).order_by(Workspace.slug))).all())
        if len(every) == 1:
            return every[0]
        if every:
            names = ", ".join(w.slug for w in every)
            raise CommandError(f"several workspaces ({names}): name one with --workspace")
        if not create:
            raise CommandError("no workspace yet: add a mailbox or create a campaign first")
        slug = "default"
    from mailfleet.clock import SystemClock

    made = Workspace(slug=slug, name=slug, created_at=SystemClock().now())
    session.add(made)
    await session.flush()
    return made


async def campaign(session: AsyncSession, name: str, slug: str | None) -> Campaign:
    """The campaign called ``name`` (in workspace ``slug`` when given), with its steps."""
    from sqlalchemy.orm import selectinload

    query = select(Campaign).where(Campaign.name == name).options(selectinload(Campaign.steps))
    if slug is not None:
        query = query.join(Workspace, Workspace.id == Campaign.workspace_id).where(
            Workspace.slug == slug
        )
    found = list((await session.scalars(query)).all())
    if not found:
        raise CommandError(f"no campaign {name!r}; create it with `mailfleet campaign create FILE`")
    if len(found) > 1:
        raise CommandError(f"campaign {name!r} is in several workspaces; name one with --workspace")
    return found[0]
