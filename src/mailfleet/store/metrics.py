"""Counts the Prometheus endpoint exposes, read from the store at scrape time.

Each function is one grouped query; nothing is cached or accumulated in memory,
so the numbers are the store's, whichever process wrote them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.store.inbox import MailboxFolderState
from mailfleet.store.models import (
    Campaign,
    CampaignStatus,
    Enrollment,
    EnrollmentStatus,
    Event,
    Mailbox,
    Send,
)

#: Events that mean a mailbox's credentials failed (token refresh or login).
CREDENTIAL_FAILURES = ("mailbox.disconnected", "inbox.login_failed")


async def sends_by_outcome(session: AsyncSession) -> dict[tuple[str, str], int]:
    """Every send row by (status, kind)."""
    rows = await session.execute(
        select(Send.status, Send.kind, func.count()).group_by(Send.status, Send.kind)
    )
    return {(str(status), str(kind)): int(count) for status, kind, count in rows.all()}


async def due_enrollments(session: AsyncSession, now: datetime) -> int:
    """Active enrollments of active campaigns whose next step is due at ``now``."""
    value = await session.scalar(
        select(func.count())
        .select_from(Enrollment)
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .where(
            Campaign.status == CampaignStatus.ACTIVE,
            Enrollment.status == EnrollmentStatus.ACTIVE,
            Enrollment.next_due_at.is_not(None),
            Enrollment.next_due_at <= now,
        )
    )
    return int(value or 0)


async def mailboxes_by_status(session: AsyncSession) -> dict[str, int]:
    """How many mailboxes are active, paused, disconnected."""
    rows = await session.execute(select(Mailbox.status, func.count()).group_by(Mailbox.status))
    return {str(status): int(count) for status, count in rows.all()}


async def credential_failures(session: AsyncSession, since: datetime) -> dict[str, int]:
    """Credential-failure events since ``since``, by kind."""
    rows = await session.execute(
        select(Event.kind, func.count())
        .where(Event.kind.in_(CREDENTIAL_FAILURES), Event.at >= since)
        .group_by(Event.kind)
    )
    found = {str(kind): int(count) for kind, count in rows.all()}
    return {kind: found.get(kind, 0) for kind in CREDENTIAL_FAILURES}


async def oldest_sync(session: AsyncSession) -> dict[int, datetime]:
    """Per mailbox, when its least recently synced folder was last read."""
    rows = await session.execute(
        select(MailboxFolderState.mailbox_id, func.min(MailboxFolderState.synced_at)).group_by(
            MailboxFolderState.mailbox_id
        )
    )
    out: dict[int, datetime] = {}
    for mailbox_id, at in rows.all():
        if isinstance(at, str):  # SQLite aggregates bypass the column type
            at = datetime.fromisoformat(at)
        if at is not None:
            out[int(mailbox_id)] = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return out
