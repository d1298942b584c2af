"""Unsubscribe: a recipient leaves every campaign of the workspace, from any door.

The doors are the RFC 8058 one-click POST (``one-click``), the confirmation page's
button (``page``), an answer to the ``mailto:`` link carrying the signed token
(``mailto``) and a person's reply asking to be removed (``reply``). Every one comes
through :func:`unsubscribe_lead`, which stops the lead through the one writer of
stops and suppressions (:func:`mailfleet.services.stops.stop_lead`) and records an
``unsubscribe`` event naming the door. Repeating it changes nothing and records
nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.content.unsubscribe import TokenClaim, TokenError, verify
from mailfleet.services.stops import StopReason, stop_lead
from mailfleet.store import Database, Lead, Suppression
from mailfleet.store import repository as repo

__all__ = [
    "Source",
    "TokenError",
    "UnknownContact",
    "UnsubscribeTarget",
    "Unsubscribed",
    "find_target",
    "unsubscribe_lead",
    "unsubscribe_token",
]

Source = Literal["one-click", "page", "mailto", "reply"]


class UnknownContact(LookupError):
    """A correctly signed token whose lead no longer exists in its workspace."""


@dataclass(frozen=True, slots=True)
class UnsubscribeTarget:
    """Whom a token unsubscribes, for the confirmation page."""

    workspace_id: int
    lead_id: int
    email: str
    suppressed: bool  # already unsubscribed (or otherwise suppressed)


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    """What one unsubscribe did."""

    workspace_id: int
    lead_id: int | None
    email: str
    source: str
    stopped: tuple[int, ...]  # enrollment ids ended now
    suppressed: bool  # the address was newly suppressed

    @property
    def changed(self) -> bool:
        """False when the address was already unsubscribed and nothing was running."""
        return self.suppressed or bool(self.stopped)


async def unsubscribe_lead(
    session: AsyncSession,
    *,
    workspace_id: int,
    source: Source,
    at: datetime,
    lead_id: int | None = None,
    email: str | None = None,
    campaign_id: int | None = None,
) -> Unsubscribed:
    """Suppress the lead's address in the workspace and end every sequence of it, in ``session``."""
    result = await stop_lead(
        session,
        workspace_id=workspace_id,
        reason=StopReason.UNSUBSCRIBE,
        at=at,
        lead_id=lead_id,
        email=email,
        campaign_id=campaign_id,
        detail=source,
    )
    address = (email or "").strip().lower()
    if result.lead_id is not None:
        lead = await session.get(Lead, result.lead_id)
        address = lead.email_normalized if lead is not None else address
    done = Unsubscribed(
        workspace_id, result.lead_id, address, source, tuple(result.stopped), result.suppressed
    )
    if done.changed:
        repo.add_event(
            session,
            workspace_id=workspace_id,
            at=at,
            kind="unsubscribe",
            message=f"{address} unsubscribed ({source}); {len(done.stopped)} sequence(s) ended",
            lead_id=result.lead_id,
            campaign_id=campaign_id,
        )
    return done


async def _claimed_lead(session: AsyncSession, claim: TokenClaim) -> Lead:
    lead = await session.get(Lead, claim.lead_id)
    if lead is None or lead.workspace_id != claim.workspace_id:
        raise UnknownContact("this link belongs to a contact that no longer exists")
    return lead


async def find_target(db: Database, keys: Sequence[bytes], token: str) -> UnsubscribeTarget:
    """Whom ``token`` would unsubscribe; :class:`TokenError` or :class:`UnknownContact`."""
    claim = verify(keys, token)
    async with db.session() as session:
        lead = await _claimed_lead(session, claim)
        suppressed = await session.scalar(
            select(Suppression.id).where(
                Suppression.workspace_id == lead.workspace_id,
                Suppression.kind == "email",
                Suppression.value == lead.email_normalized,
            )
        )
        return UnsubscribeTarget(
            lead.workspace_id, lead.id, lead.email_normalized, suppressed is not None
        )


async def unsubscribe_token(
    db: Database, keys: Sequence[bytes], token: str, *, source: Source, at: datetime
) -> Unsubscribed:
    """Unsubscribe the lead a signed token names, committed before this returns.

    :class:`TokenError` (malformed or forged) and :class:`UnknownContact` change nothing.
    """
    claim = verify(keys, token)
    for attempt in range(2):
        try:
            async with db.session() as session:
                lead = await _claimed_lead(session, claim)
                return await unsubscribe_lead(
                    session, workspace_id=lead.workspace_id, source=source, at=at, lead_id=lead.id
                )
        except IntegrityError:
            # Two requests for one address at once: the other wrote the suppression.
            if attempt:
                raise
    raise AssertionError("unreachable")
