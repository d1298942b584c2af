"""Finding what a request names: a workspace by slug, a campaign by name."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from mailfleet.services.errors import ServiceError
from mailfleet.store import Campaign, Workspace


async def workspace(
    session: AsyncSession, slug: str | None, *, create: bool = False, at: datetime | None = None
) -> Workspace:
    """The workspace called ``slug``, or the only one there is (``create``: make it if new)."""
    if slug is not None:
        found = await session.scalar(select(Workspace).where(Workspace.slug == slug))
        if found is not None:
            return found
        if not create:
            raise ServiceError(f"no workspace {slug!r}")
    else:
        every = list((await session.scalars(select(Workspace).order_by(Workspace.slug))).all())
        if len(every) == 1:
            return every[0]
        if every:
            names = ", ".join(w.slug for w in every)
            raise ServiceError(f"several workspaces ({names}): name one with --workspace")
        if not create:
            raise ServiceError("no workspace yet: add a mailbox or create a campaign first")
        slug = "default"
    if at is None:
        from mailfleet.clock import SystemClock

        at = SystemClock().now()
    made = Workspace(slug=slug, name=slug, created_at=at)
    session.add(made)
    await session.flush()
    return made


async def campaign(session: AsyncSession, name: str, slug: str | None) -> Campaign:
    """The campaign called ``name`` (in workspace ``slug`` when given), with its steps."""
    query = select(Campaign).where(Campaign.name == name).options(selectinload(Campaign.steps))
    if slug is not None:
        query = query.join(Workspace, Workspace.id == Campaign.workspace_id).where(
            Workspace.slug == slug
        )
    found = list((await session.scalars(query)).all())
    if not found:
        raise ServiceError(f"no campaign {name!r}; create it with `mailfleet campaign create FILE`")
    if len(found) > 1:
        raise ServiceError(f"campaign {name!r} is in several workspaces; name one with --workspace")
    return found[0]
