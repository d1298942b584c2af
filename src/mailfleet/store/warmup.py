"""Warmup queries: settings per mailbox, threads, messages, placement observations, factors.

Functions take an open session; what the numbers mean is decided in
:mod:`mailfleet.warmup`. The planner's hook is :func:`cold_cap_factors`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.store.models import (
    Mailbox,
    Send,
    SendStatus,
    WarmupMessage,
    WarmupSettings,
    WarmupThread,
)
from mailfleet.warmup import Observation, Placement, RampSettings, placement_stats

CHUNK = 500
# A warmup send whose peer never saw it for this reason counts as a bounce.
BOUNCED = (SendStatus.FAILED,)


async def reduced_cold_caps(session: AsyncSession) -> dict[int, float]:
    """The mailboxes whose cold cap warmup has cut (factor below 1), with their factor."""
    rows = await session.execute(
        select(WarmupSettings.mailbox_id, WarmupSettings.cold_cap_factor).where(
            WarmupSettings.cold_cap_factor < 1.0
        )
    )
    return {int(mailbox_id): float(factor) for mailbox_id, factor in rows.all()}


async def cold_cap_factors(session: AsyncSession, mailbox_ids: Iterable[int]) -> dict[int, float]:
    """Each mailbox's current cold-cap factor (1.0 when warmup never cut it)."""
    ids = list(mailbox_ids)
    out = dict.fromkeys(ids, 1.0)
    for offset in range(0, len(ids), CHUNK):
        rows = await session.execute(
            select(WarmupSettings.mailbox_id, WarmupSettings.cold_cap_factor).where(
                WarmupSettings.mailbox_id.in_(ids[offset : offset + CHUNK])
            )
        )
        for mailbox_id, factor in rows.all():
            out[int(mailbox_id)] = float(factor)
    return out


async def settings_of(
    session: AsyncSession, mailboxes: Sequence[Mailbox], now: datetime
) -> dict[int, WarmupSettings]:
    """The warmup settings of ``mailboxes``, created (ramp starting today) where missing."""
    ids = [m.id for m in mailboxes]
    found: dict[int, WarmupSettings] = {}
    for offset in range(0, len(ids), CHUNK):
        rows = await session.scalars(
            select(WarmupSettings).where(
                WarmupSettings.mailbox_id.in_(ids[offset : offset + CHUNK])
            )
        )
        found.update({row.mailbox_id: row for row in rows.all()})
    for box in mailboxes:
        if box.id not in found:
            row = WarmupSettings(
                mailbox_id=box.id,
                started_on=now.date(),
                paused=False,
                weekdays_only=False,
                shared_pool=False,
                cold_cap_factor=1.0,
                updated_at=now,
            )
            session.add(row)
            found[box.id] = row
    await session.flush()
    return found


async def fingerprint(session: AsyncSession) -> tuple[int, ...]:
    """(count, max id, sum of revisions) of every mailbox, then (count, sum of revisions)
    of every warmup settings row: changes on any write to either, in one query."""
    boxes = select(
        func.count(), func.coalesce(func.max(Mailbox.id), 0), func.sum(Mailbox.revision)
    ).subquery()
    settings = select(func.count(), func.sum(WarmupSettings.revision)).subquery()
    both = boxes.join(settings, true())  # one row each: no condition to join on
    row = (await session.execute(select(boxes, settings).select_from(both))).one()
    return tuple(int(value or 0) for value in row)


async def in_running_campaigns(session: AsyncSession, boxes: Iterable[Mailbox]) -> set[int]:
    """The ids among ``boxes`` that a running campaign sends from (their tags or addresses)."""
    from mailfleet.campaigns import selects_mailbox
    from mailfleet.store.repository import active_campaigns

    campaigns = await active_campaigns(session)
    return {
        box.id
        for box in boxes
        if any(
            c.workspace_id == box.workspace_id
            and selects_mailbox(
                c.mailbox_tags or [],
                list((c.settings or {}).get("mailboxes") or []),
                box.address,
                box.tags or [],
            )
            for c in campaigns
        )
    }


def ramp_of(row: WarmupSettings, default: RampSettings) -> RampSettings:
    """The ramp of a mailbox: ``default`` with the row's overrides."""
    return RampSettings(
        start=row.ramp_start if row.ramp_start is not None else default.start,
        step=row.ramp_step if row.ramp_step is not None else default.step,
        ceiling=row.ramp_ceiling if row.ramp_ceiling is not None else default.ceiling,
        weekdays_only=bool(row.weekdays_only),
        jitter=default.jitter,
        day_start_minute=default.day_start_minute,
        day_end_minute=default.day_end_minute,
    )


async def done_slots(session: AsyncSession, mailbox_id: int, day: date) -> set[int]:
    """The slots of ``mailbox_id``'s plan for ``day`` already claimed."""
    rows = await session.scalars(
        select(WarmupMessage.slot).where(
            WarmupMessage.sender_mailbox_id == mailbox_id,
            WarmupMessage.plan_day == day,
            WarmupMessage.slot.is_not(None),
        )
    )
    return {int(s) for s in rows.all() if s is not None}


async def done_slots_of(session: AsyncSession, days: dict[int, date]) -> dict[int, set[int]]:
    """:func:`done_slots` of many mailboxes at once (``days``: each mailbox's local day)."""
    out: dict[int, set[int]] = {mailbox_id: set() for mailbox_id in days}
    if not days:
        return out
    rows = await session.execute(
        select(WarmupMessage.sender_mailbox_id, WarmupMessage.plan_day, WarmupMessage.slot).where(
            WarmupMessage.sender_mailbox_id.in_(list(days)),
            WarmupMessage.plan_day.in_(sorted(set(days.values()))),
            WarmupMessage.slot.is_not(None),
        )
    )
    for mailbox_id, day, slot in rows.all():
        if slot is not None and days.get(int(mailbox_id)) == day:
            out[int(mailbox_id)].add(int(slot))
    return out


async def due_replies(session: AsyncSession, now: datetime, limit: int) -> list[WarmupMessage]:
    """Warmup messages whose peer decided to reply by ``now`` and has not yet."""
    rows = await session.scalars(
        select(WarmupMessage)
        .where(
            WarmupMessage.reply_due_at.is_not(None),
            WarmupMessage.reply_due_at <= now,
            WarmupMessage.reply_send_id.is_(None),
        )
        .order_by(WarmupMessage.reply_due_at, WarmupMessage.id)
        .limit(limit)
    )
    return list(rows.all())


async def next_reply_due(session: AsyncSession, now: datetime) -> datetime | None:
    """The earliest reply due after ``now``."""
    rows = await session.scalars(
        select(WarmupMessage.reply_due_at)
        .where(
            WarmupMessage.reply_due_at.is_not(None),
            WarmupMessage.reply_due_at > now,
            WarmupMessage.reply_send_id.is_(None),
        )
        .order_by(WarmupMessage.reply_due_at)
        .limit(1)
    )
    return rows.first()


async def open_thread(
    session: AsyncSession, a: int, b: int, *, max_messages: int, quiet_since: datetime
) -> WarmupThread | None:
    """A thread between mailboxes ``a`` and ``b`` to continue: open, short, quiet lately."""
    rows = await session.scalars(
        select(WarmupThread)
        .where(
            or_(
                and_(WarmupThread.opener_mailbox_id == a, WarmupThread.peer_mailbox_id == b),
                and_(WarmupThread.opener_mailbox_id == b, WarmupThread.peer_mailbox_id == a),
            ),
            WarmupThread.opener_cleaned_at.is_(None),
            WarmupThread.peer_cleaned_at.is_(None),
            WarmupThread.messages < max_messages,
            WarmupThread.last_at <= quiet_since,
        )
        .order_by(WarmupThread.last_at.desc())
        .limit(1)
    )
    return rows.first()


async def observations(
    session: AsyncSession, mailbox_ids: Iterable[int], since: datetime
) -> dict[int, list[Observation]]:
    """Each sender's warmup messages since ``since`` as :class:`Observation` s."""
    ids = list(mailbox_ids)
    out: dict[int, list[Observation]] = defaultdict(list)
    for offset in range(0, len(ids), CHUNK):
        rows = await session.execute(
            select(
                WarmupMessage.sender_mailbox_id,
                WarmupMessage.planned_at,
                WarmupMessage.observed_at,
                WarmupMessage.placement,
                WarmupMessage.reply_send_id,
                Send.status,
            )
            .join(Send, Send.id == WarmupMessage.send_id)
            .where(
                WarmupMessage.sender_mailbox_id.in_(ids[offset : offset + CHUNK]),
                WarmupMessage.planned_at >= since,
                Send.status.in_((SendStatus.SENT, SendStatus.FAILED)),
            )
        )
        for sender, planned, observed, placement, reply_send, status in rows.all():
            out[int(sender)].append(
                Observation(
                    at=observed or planned,
                    placement=Placement(placement) if placement else None,
                    replied=reply_send is not None,
                    bounced=status in BOUNCED,
                )
            )
    return out


async def unobserved_for_peer(
    session: AsyncSession, peer_mailbox_id: int, since: datetime
) -> dict[str, WarmupMessage]:
    """Sent warmup messages addressed to ``peer_mailbox_id`` and not yet found, by token."""
    rows = await session.scalars(
        select(WarmupMessage)
        .join(Send, Send.id == WarmupMessage.send_id)
        .where(
            WarmupMessage.peer_mailbox_id == peer_mailbox_id,
            WarmupMessage.placement.is_(None),
            WarmupMessage.planned_at >= since,
            Send.status.in_((SendStatus.SENT, SendStatus.UNKNOWN)),
        )
    )
    return {row.token: row for row in rows.all()}


async def stale_threads(
    session: AsyncSession, mailbox_id: int, before: datetime
) -> list[WarmupThread]:
    """Threads of ``mailbox_id`` quiet since ``before`` that its side has not cleaned up."""
    rows = await session.scalars(
        select(WarmupThread).where(
            or_(
                and_(
                    WarmupThread.opener_mailbox_id == mailbox_id,
                    WarmupThread.opener_cleaned_at.is_(None),
                ),
                and_(
                    WarmupThread.peer_mailbox_id == mailbox_id,
                    WarmupThread.peer_cleaned_at.is_(None),
                ),
            ),
            WarmupThread.last_at <= before,
        )
    )
    return list(rows.all())


async def thread_tokens(session: AsyncSession, thread_id: int) -> list[str]:
    """The marker tokens of every message of a thread."""
    rows = await session.scalars(
        select(WarmupMessage.token).where(WarmupMessage.thread_id == thread_id)
    )
    return list(rows.all())


def window_start(now: datetime, days: int) -> datetime:
    """``now`` minus ``days`` days."""
    return now - timedelta(days=days)


async def junk_shares(session: AsyncSession, now: datetime, days: int = 28) -> dict[int, float]:
    """Each warmup sender's Junk share among what its peers found in the last ``days`` days.

    Mailboxes whose peers found nothing in that window are left out (no evidence yet).
    """
    since = now - timedelta(days=days)
    senders = await session.execute(
        select(WarmupMessage.sender_mailbox_id)
        .where(WarmupMessage.planned_at >= since, WarmupMessage.observed_at.is_not(None))
        .distinct()
    )
    ids = [int(i) for i in senders.scalars().all()]
    found = await observations(session, ids, since)
    out: dict[int, float] = {}
    for mailbox_id, seen in found.items():
        share = placement_stats(seen, now, timedelta(days=days)).junk_share
        if share is not None:
            out[mailbox_id] = share
    return out
