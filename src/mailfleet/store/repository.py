"""Queries the engine, the CLI and the demo share: counts, due work, summaries.

Functions take an open session and return rows or small dataclasses; they hold
no policy (what a count means is decided in ``limits`` and ``planner``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Select, String, and_, case, func, select, type_coerce, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Bundle

from mailfleet.planner.window import local_day
from mailfleet.readiness import LaunchFacts, MailboxFacts
from mailfleet.store.models import (
    Campaign,
    CampaignStatus,
    Enrollment,
    EnrollmentStatus,
    Event,
    Lead,
    Mailbox,
    MailboxStatus,
    Send,
    SendKind,
    SendStatus,
    Workspace,
)

# Sends that count against a provider's limits: accepted, possibly accepted, or in flight.
COUNTED = (SendStatus.SENT, SendStatus.UNKNOWN, SendStatus.CLAIMED, SendStatus.SUBMITTING)
IN_FLIGHT = (SendStatus.CLAIMED, SendStatus.SUBMITTING)
CHUNK = 500  # ids per IN (...) list: far below every backend's parameter limit


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
    warmup_today: int = 0  # accepted warmup sends since the local day began
    last_cold_at: datetime | None = None
    cold_24h: int = 0
    oldest_cold_24h: datetime | None = None


class CountedSend(NamedTuple):
    """A send that counts against its mailbox's limits, as the usage ledger loads it."""

    id: int
    mailbox_id: int
    claimed_at: datetime
    kind: str
    recipients: int
    campaign_id: int | None
    workspace_id: int
    recipient_domain: str | None
    status: str


async def counted_sends_since(session: AsyncSession, since: datetime) -> list[CountedSend]:
    """Every send claimed at or after ``since`` whose status counts (:data:`COUNTED`).

    ``claimed_at`` is read as the driver returns it and parsed here: the column type's
    per-row conversion would cost more than the query for a fleet's day of sends.
    """
    rows = await session.execute(
        select(
            Send.id,
            Send.mailbox_id,
            type_coerce(Send.claimed_at, String),
            Send.kind,
            Send.recipients,
            Send.campaign_id,
            Send.workspace_id,
            Send.recipient_domain,
            Send.status,
        )
        .where(Send.claimed_at >= since, Send.status.in_(COUNTED))
        .order_by(Send.claimed_at)
    )
    return [
        CountedSend(r[0], r[1], _aware(r[2]) or since, r[3], r[4] or 1, r[5], r[6], r[7], r[8])
        for r in rows.all()
    ]


class SendKey(NamedTuple):
    """What tells whether the usage ledger still holds a counted send as the store does."""

    id: int
    mailbox_id: int
    claimed_at: datetime
    status: str


async def counted_send_keys_since(session: AsyncSession, since: datetime) -> list[SendKey]:
    """:func:`counted_sends_since` reduced to the columns that change once a send is written."""
    rows = await session.execute(
        select(Send.id, Send.mailbox_id, type_coerce(Send.claimed_at, String), Send.status).where(
            Send.claimed_at >= since, Send.status.in_(COUNTED)
        )
    )
    return [SendKey(r[0], r[1], _aware(r[2]) or since, r[3]) for r in rows.all()]


async def counted_sends_by_id(session: AsyncSession, ids: Sequence[int]) -> list[CountedSend]:
    """The counted sends among ``ids`` (as :func:`counted_sends_since` reads them)."""
    out: list[CountedSend] = []
    for offset in range(0, len(ids), CHUNK):
        rows = await session.execute(
            select(
                Send.id,
                Send.mailbox_id,
                type_coerce(Send.claimed_at, String),
                Send.kind,
                Send.recipients,
                Send.campaign_id,
                Send.workspace_id,
                Send.recipient_domain,
                Send.status,
            ).where(Send.id.in_(list(ids[offset : offset + CHUNK])), Send.status.in_(COUNTED))
        )
        out.extend(
            CountedSend(
                r[0],
                r[1],
                _aware(r[2]) or datetime.min.replace(tzinfo=UTC),
                r[3],
                r[4] or 1,
                r[5],
                r[6],
                r[7],
                r[8],
            )
            for r in rows.all()
        )
    return out


async def mailbox_fingerprint(
    session: AsyncSession, workspace_ids: Iterable[int]
) -> tuple[int, int, int]:
    """(count, max id, sum of revisions) of the workspaces' mailboxes: changes on any write."""
    row = (
        await session.execute(
            select(
                func.count(), func.coalesce(func.max(Mailbox.id), 0), func.sum(Mailbox.revision)
            ).where(Mailbox.workspace_id.in_(list(workspace_ids)))
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2] or 0)


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
    last_cold = await session.scalar(
        select(func.max(Send.claimed_at)).where(counted, Send.kind == SendKind.COLD)
    )
    return UsageCounts(
        cold_today=int(row[5]),
        messages_last_minute=int(row[3]),
        oldest_in_last_minute=_aware(row[4]),
        messages_24h=int(row[0]),
        recipients_24h=int(row[1]),
        oldest_in_24h=_aware(row[2]),
        last_send_at=last[0] if last else None,
        last_send_id=int(last[1]) if last else 0,
        last_cold_at=_aware(last_cold),
    )


async def usage_by_mailbox(
    session: AsyncSession, mailboxes: Sequence[Mailbox], now: datetime
) -> dict[int, UsageCounts]:
    """:func:`usage_counts` for many mailboxes in a few grouped queries.

    One query per timezone among the mailboxes (their local days start at different
    instants) and per :data:`CHUNK` of them, instead of two queries per mailbox.
    """
    by_zone: dict[str, list[int]] = {}
    for box in mailboxes:
        by_zone.setdefault(box.timezone, []).append(box.id)
    since_day = now - timedelta(days=1)
    since_minute = now - timedelta(minutes=1)
    cold = Send.kind == SendKind.COLD
    out: dict[int, UsageCounts] = {}
    for zone, ids in by_zone.items():
        day_start = local_day(now, zone)[1] - timedelta(days=1)
        start = min(since_day, day_start)
        for offset in range(0, len(ids), CHUNK):
            rows = await session.execute(
                select(
                    Send.mailbox_id,
                    func.count().filter(Send.claimed_at >= since_day),
                    func.coalesce(
                        func.sum(Send.recipients).filter(Send.claimed_at >= since_day), 0
                    ),
                    func.min(Send.claimed_at).filter(Send.claimed_at >= since_day),
                    func.count().filter(Send.claimed_at >= since_minute),
                    func.min(Send.claimed_at).filter(Send.claimed_at >= since_minute),
                    func.count().filter(and_(Send.claimed_at >= day_start, cold)),
                    func.max(Send.claimed_at),
                    func.max(Send.id),
                    func.count().filter(
                        and_(
                            Send.claimed_at >= day_start,
                            Send.kind == SendKind.WARMUP,
                            Send.status == SendStatus.SENT,
                        )
                    ),
                    func.max(Send.claimed_at).filter(cold),
                    func.count().filter(and_(Send.claimed_at >= since_day, cold)),
                    func.min(Send.claimed_at).filter(and_(Send.claimed_at >= since_day, cold)),
                )
                .where(
                    Send.mailbox_id.in_(ids[offset : offset + CHUNK]),
                    Send.status.in_(COUNTED),
                    Send.claimed_at >= start,
                )
                .group_by(Send.mailbox_id)
            )
            for row in rows.all():
                out[int(row[0])] = UsageCounts(
                    cold_today=int(row[6]),
                    messages_last_minute=int(row[4]),
                    oldest_in_last_minute=_aware(row[5]),
                    messages_24h=int(row[1]),
                    recipients_24h=int(row[2]),
                    oldest_in_24h=_aware(row[3]),
                    last_send_at=_aware(row[7]),
                    last_send_id=int(row[8] or 0),
                    warmup_today=int(row[9]),
                    last_cold_at=_aware(row[10]),
                    cold_24h=int(row[11]),
                    oldest_cold_24h=_aware(row[12]),
                )
    empty = UsageCounts(0, 0, None, 0, 0, None, None, 0)
    return {box.id: out.get(box.id, empty) for box in mailboxes}


async def cold_by_recipient_domain(
    session: AsyncSession, mailboxes: Sequence[Mailbox], domains: Iterable[str], now: datetime
) -> dict[int, dict[str, int]]:
    """Cold sends of each mailbox's local day per recipient domain, for ``domains`` only."""
    wanted = sorted(set(d for d in domains if d))
    out: dict[int, dict[str, int]] = {}
    if not wanted:
        return out
    by_zone: dict[str, list[int]] = {}
    for box in mailboxes:
        by_zone.setdefault(box.timezone, []).append(box.id)
    for zone, ids in by_zone.items():
        day_start = local_day(now, zone)[1] - timedelta(days=1)
        for offset in range(0, len(wanted), CHUNK):
            rows = await session.execute(
                select(Send.mailbox_id, Send.recipient_domain, func.count())
                .where(
                    Send.recipient_domain.in_(wanted[offset : offset + CHUNK]),
                    Send.claimed_at >= day_start,
                    Send.kind == SendKind.COLD,
                    Send.status.in_(COUNTED),
                )
                .group_by(Send.mailbox_id, Send.recipient_domain)
            )
            members = set(ids)
            for mailbox_id, domain, count in rows.all():
                if mailbox_id in members and domain:
                    out.setdefault(int(mailbox_id), {})[str(domain)] = int(count)
    return out


async def recipient_domains_24h(
    session: AsyncSession, workspace_ids: Iterable[int], domains: Iterable[str], now: datetime
) -> dict[tuple[int, str], int]:
    """Cold sends per (workspace, recipient domain) in the last 24 hours, for ``domains``."""
    wanted = sorted(set(d for d in domains if d))
    out: dict[tuple[int, str], int] = {}
    for offset in range(0, len(wanted), CHUNK):
        rows = await session.execute(
            select(Send.workspace_id, Send.recipient_domain, func.count())
            .where(
                Send.workspace_id.in_(list(workspace_ids)),
                Send.recipient_domain.in_(wanted[offset : offset + CHUNK]),
                Send.claimed_at >= now - timedelta(days=1),
                Send.kind == SendKind.COLD,
                Send.status.in_(COUNTED),
            )
            .group_by(Send.workspace_id, Send.recipient_domain)
        )
        for workspace_id, domain, count in rows.all():
            out[(int(workspace_id), str(domain))] = int(count)
    return out


def _aware(value: datetime | str | None) -> datetime | None:
    # Aggregates (and raw reads) bypass the column type on SQLite, so re-attach UTC here.
    if value is None:
        return None
    if isinstance(value, str):
        try:
            # The store writes UTC without an offset: parsing it with one is one C call,
            # several times cheaper than a parse and a replace (a resync reads a fleet's day).
            return datetime.fromisoformat(value + "+00:00")
        except ValueError:  # it carries its own offset
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


DUE_ENROLLMENT: Bundle[Any] = Bundle(
    "enrollment",
    Enrollment.id,
    Enrollment.campaign_id,
    Enrollment.next_step,
    Enrollment.next_due_at,
    Enrollment.mailbox_id,
)
DUE_LEAD: Bundle[Any] = Bundle("lead", Lead.timezone, Lead.email_domain, Lead.email_normalized)


def due_enrollments_query(
    campaign_ids: Iterable[int],
    now: datetime,
    limit: int,
    *,
    per_mailbox: int = 10,
    steps: int = 3,
    mailbox_ids: Sequence[int] | None = None,
    first_steps: bool = True,
    flat: bool = False,
) -> Select[Any, Any]:
    """Active enrollments whose next step is due, with the lead fields planning reads.

    Follow-ups come first (finishing a thread beats opening one, as the planner
    orders them), at most ``per_mailbox`` per thread mailbox, then first steps;
    each oldest first, ``limit`` in all. Without the split, a backlog of first
    steps due earlier would keep every follow-up out of the batch; without the
    per-mailbox bound, one mailbox's backlog would crowd the others out.
    ``steps`` is the longest sequence among the campaigns: follow-ups are asked for
    as ``next_step IN (2..steps)`` so ``ix_enrollment_step_due`` serves the range on
    ``next_due_at``. ``mailbox_ids`` restricts follow-ups to those threads' mailboxes
    (the ones ready to send); ``first_steps=False`` leaves first steps out.
    Rows are ``(enrollment, lead)`` bundles of plain columns, not ORM objects:
    thousands of entities per tick cost more than the rest of the tick. With ``flat``
    they are plain tuples (the bundles' columns in order), cheaper still to read.
    """
    ids = list(campaign_ids)
    due = (
        Enrollment.campaign_id.in_(ids),
        Enrollment.status == EnrollmentStatus.ACTIVE,
        Enrollment.next_due_at.is_not(None),
        Enrollment.next_due_at <= now,
    )
    later_steps = list(range(2, max(2, steps) + 1))
    follow_up = [*due, Enrollment.next_step.in_(later_steps)]
    if mailbox_ids is not None:
        # Read through ``ix_enrollment_mailbox_due``, the ready threads' due rows only: the
        # campaign and step filters are written as ``column + 0`` so no other index looks
        # cheaper to the planner (SQLite would otherwise read every due follow-up).
        follow_up = [
            (Enrollment.campaign_id + 0).in_(ids),
            Enrollment.status == EnrollmentStatus.ACTIVE,
            Enrollment.next_due_at.is_not(None),
            Enrollment.next_due_at <= now,
            (Enrollment.next_step + 0).in_(later_steps),
            Enrollment.mailbox_id.in_(list(mailbox_ids)),
        ]
    ranked = (
        select(
            Enrollment.id.label("id"),
            func.row_number()
            .over(
                partition_by=Enrollment.mailbox_id,
                order_by=(Enrollment.next_due_at, Enrollment.id),
            )
            .label("place"),
        )
        .where(*follow_up)
        .subquery()
    )
    parts: list[Select[Any]] = [select(ranked.c.id).where(ranked.c.place <= per_mailbox)]
    if first_steps:
        first = (
            select(Enrollment.id)
            .where(*due, Enrollment.next_step == 1)
            .order_by(Enrollment.next_due_at, Enrollment.id)
            .limit(limit)
            .subquery()
        )
        parts.append(select(first.c.id))
    chosen = union_all(*parts)
    columns = (*DUE_ENROLLMENT.exprs, *DUE_LEAD.exprs) if flat else (DUE_ENROLLMENT, DUE_LEAD)
    return (
        select(*columns)
        .join(Lead, Lead.id == Enrollment.lead_id)
        .where(Enrollment.id.in_(chosen))
        .order_by(
            case((Enrollment.next_step == 1, 1), else_=0),
            Enrollment.next_due_at,
            Enrollment.id,
        )
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


async def next_first_step_due(
    session: AsyncSession, campaign_ids: Iterable[int], now: datetime
) -> datetime | None:
    """The earliest future due time of a first step (served by ``ix_enrollment_step_due``)."""
    value = await session.scalar(
        select(func.min(Enrollment.next_due_at)).where(
            Enrollment.campaign_id.in_(list(campaign_ids)),
            Enrollment.status == EnrollmentStatus.ACTIVE,
            Enrollment.next_step == 1,
            Enrollment.next_due_at > now,
        )
    )
    return _aware(value)


async def next_follow_ups(
    session: AsyncSession, campaign_ids: Iterable[int], now: datetime, steps: int, limit: int
) -> list[tuple[datetime, int | None]]:
    """The next ``limit`` follow-ups to fall due after ``now``: (due time, thread mailbox).

    One ordered, limited index scan per step (an ``IN`` over steps would sort them all).
    """
    ids = list(campaign_ids)
    found: list[tuple[datetime, int | None]] = []
    for step in range(2, max(2, steps) + 1):
        rows = await session.execute(
            select(Enrollment.next_due_at, Enrollment.mailbox_id)
            .where(
                Enrollment.campaign_id.in_(ids),
                Enrollment.status == EnrollmentStatus.ACTIVE,
                Enrollment.next_step == step,
                Enrollment.next_due_at > now,
            )
            .order_by(Enrollment.next_due_at)
            .limit(limit)
        )
        found.extend((_aware(due) or now, mailbox_id) for due, mailbox_id in rows.all())
    found.sort(key=lambda f: f[0])
    return found[:limit]


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


async def selected_mailboxes(session: AsyncSession, campaign: Campaign) -> list[Mailbox]:
    """The mailboxes of the campaign's workspace that its tags or address list select."""
    from mailfleet.campaigns import selects_mailbox

    listed = list((campaign.settings or {}).get("mailboxes") or [])
    return [
        m
        for m in await mailboxes_of(session, campaign.workspace_id)
        if selects_mailbox(campaign.mailbox_tags or [], listed, m.address, m.tags or [])
    ]


async def launch_facts(session: AsyncSession, campaign: Campaign, now: datetime) -> LaunchFacts:
    """What :func:`mailfleet.readiness.assess` needs to know about ``campaign`` at ``now``."""
    from mailfleet.limits import DEFAULT_WARMUP_RATIO

    every = await mailboxes_of(session, campaign.workspace_id)
    selected = await selected_mailboxes(session, campaign)
    warmup = dict(
        (
            await session.execute(
                select(Send.mailbox_id, func.count())
                .where(
                    Send.mailbox_id.in_([m.id for m in selected]),
                    Send.kind == SendKind.WARMUP,
                    Send.status == SendStatus.SENT,
                    Send.claimed_at >= now - timedelta(days=1),
                )
                .group_by(Send.mailbox_id)
            )
        ).all()
    )
    enrolled = await session.scalar(
        select(func.count()).where(
            Enrollment.campaign_id == campaign.id, Enrollment.status == EnrollmentStatus.ACTIVE
        )
    )
    addresses = {m.address.lower() for m in every}
    tags = {t for m in every for t in (m.tags or [])}
    listed = list((campaign.settings or {}).get("mailboxes") or [])
    return LaunchFacts(
        campaign=campaign.name,
        status=campaign.status,
        steps=len(campaign.steps),
        mailboxes=tuple(
            MailboxFacts(
                address=m.address,
                status=m.status,
                active=m.status == MailboxStatus.ACTIVE
                and (m.paused_until is None or m.paused_until <= now),
                warmup_enabled=m.warmup_enabled is not False,
                warmup_ratio=DEFAULT_WARMUP_RATIO if m.warmup_ratio is None else m.warmup_ratio,
                warmup_24h=int(warmup.get(m.id, 0)),
            )
            for m in selected
        ),
        enrolled_active=int(enrolled or 0),
        listed_missing=tuple(a for a in listed if a.lower() not in addresses),
        tags_unmatched=tuple(t for t in (campaign.mailbox_tags or []) if t not in tags),
    )
