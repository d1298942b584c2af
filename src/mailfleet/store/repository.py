"""Queries the engine, the CLI and the demo share: counts, due work, summaries.

Functions take an open session and return rows or small dataclasses; they hold
no policy (what a count means is decided in ``limits`` and ``planner``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.store.models import (
    Campaign,
    CampaignStatus,
    Enrollment,
    EnrollmentStatus,
    Event,
    Lead,
    Mailbox,
    Send,
    SendKind,
    SendStatus,
    Workspace,
)

# Sends that count against a provider's limits: accepted, possibly accepted, or in flight.
COUNTED = (SendStatus.SENT, SendStatus.UNKNOWN, SendStatus.CLAIMED)


@dataclass(frozen=True, slots=True)
class UsageCounts:
    """Raw send counts of one mailbox around an instant."""

    cold_today: int
    messages_last_minute: int
    oldest_in_last_minute: datetime | None
    messages_24h: int
    recipients_24h: int
    oldest_in_24h: datetime | None
    last_send_at: datetime | None
    last_send_id: int


async def workspace_by_slug(session: AsyncSession, slug: str) -> Workspace | None:
    """The workspace called ``slug``, if any."""
    result = await session.scalars(select(Workspace).where(Workspace.slug == slug))
    return result.first()


async def usage_counts(
    session: AsyncSession, mailbox_id: int, now: datetime, day_start: datetime
) -> UsageCounts:
    """Count what ``mailbox_id`` sent in its local day, the last minute and the last 24 hours."""
    counted = and_(Send.mailbox_id == mailbox_id, Send.status.in_(COUNTED))
    since_day = now - timedelta(days=1)
    since_minute = now - timedelta(minutes=1)
    row = (
        await session.execute(
            select(
                func.count().filter(Send.claimed_at >= since_day),
                func.coalesce(func.sum(Send.recipients).filter(Send.claimed_at >= since_day), 0),
                func.min(Send.claimed_at).filter(Send.claimed_at >= since_day),
                func.count().filter(Send.claimed_at >= since_minute),
                func.min(Send.claimed_at).filter(Send.claimed_at >= since_minute),
                func.count().filter(and_(Send.claimed_at >= day_start, Send.kind == SendKind.COLD)),
            ).where(counted, Send.claimed_at >= min(since_day, day_start))
        )
    ).one()
    last = (
        await session.execute(
            select(Send.claimed_at, Send.id)
            .where(counted)
            .order_by(Send.claimed_at.desc(), Send.id.desc())
            .limit(1)
        )
    ).first()
    return UsageCounts(
        cold_today=int(row[5]),
        messages_last_minute=int(row[3]),
        oldest_in_last_minute=_aware(row[4]),
        messages_24h=int(row[0]),
        recipients_24h=int(row[1]),
        oldest_in_24h=_aware(row[2]),
        last_send_at=last[0] if last else None,
        last_send_id=int(last[1]) if last else 0,
    )


def _aware(value: datetime | None) -> datetime | None:
    # Aggregates bypass the column type on SQLite, so re-attach UTC here.
    from datetime import UTC

    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def active_campaigns(session: AsyncSession) -> Sequence[Campaign]:
    """Every campaign that is running, with its steps loaded."""
    from sqlalchemy.orm import selectinload

    result = await session.scalars(
        select(Campaign)
        .where(Campaign.status == CampaignStatus.ACTIVE)
        .options(selectinload(Campaign.steps))
        .order_by(Campaign.id)
    )
    return result.all()


def due_enrollments_query(
    campaign_ids: Iterable[int], now: datetime, limit: int
) -> Select[Enrollment, Lead]:
    """Active enrollments whose next step is due, oldest first, with their leads."""
    return (
        select(Enrollment, Lead)
        .join(Lead, Lead.id == Enrollment.lead_id)
        .where(
            Enrollment.campaign_id.in_(list(campaign_ids)),
            Enrollment.status == EnrollmentStatus.ACTIVE,
            Enrollment.next_due_at.is_not(None),
            Enrollment.next_due_at <= now,
        )
        .order_by(Enrollment.next_due_at, Enrollment.id)
        .limit(limit)
    )


async def next_due_after(
    session: AsyncSession, campaign_ids: Iterable[int], now: datetime
) -> datetime | None:
    """The earliest future due time among active enrollments."""
    value = await session.scalar(
        select(func.min(Enrollment.next_due_at)).where(
            Enrollment.campaign_id.in_(list(campaign_ids)),
            Enrollment.status == EnrollmentStatus.ACTIVE,
            Enrollment.next_due_at > now,
        )
    )
    return _aware(value)


async def campaign_cold_today(session: AsyncSession, campaign_id: int, day_start: datetime) -> int:
    """Cold sends of a campaign since ``day_start``."""
    value = await session.scalar(
        select(func.count()).where(
            Send.campaign_id == campaign_id,
            Send.status.in_(COUNTED),
            Send.claimed_at >= day_start,
        )
    )
    return int(value or 0)


def add_event(
    session: AsyncSession,
    *,
    workspace_id: int,
    at: datetime,
    kind: str,
    message: str = "",
    **links: int | None,
) -> Event:
    """Record an event; ``links`` are mailbox_id, campaign_id, enrollment_id, lead_id, send_id."""
    event = Event(workspace_id=workspace_id, at=at, kind=kind, message=message, data={}, **links)
    session.add(event)
    return event


async def mailboxes_of(session: AsyncSession, workspace_id: int) -> Sequence[Mailbox]:
    """Every mailbox of a workspace, by address."""
    result = await session.scalars(
        select(Mailbox).where(Mailbox.workspace_id == workspace_id).order_by(Mailbox.address)
    )
    return result.all()
