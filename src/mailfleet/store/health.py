"""Facts for the health pass: cold sends, bounces, complaints and auth failures per mailbox.

Gathers :class:`~mailfleet.deliverability.health.MailboxEvidence` from the store:

* cold sends the server accepted (``sent`` or ``unknown``) plus cold sends refused
  at RCPT for a dead address (``failed`` with outcome ``drop_recipient``), by
  ``claimed_at``;
* hard and soft bounces and complaints read from the mailboxes (``inbound_message``
  of kind ``bounce`` / ``complaint``), and RCPT-time hard bounces, by when mailfleet
  learned of them (``synced_at``; ``finished_at`` for refusals): a person's resume
  acknowledges what was known then, and only what arrives later is new evidence;
* authentication failures: bounces and refusals whose status or text names SPF,
  DKIM or DMARC (:func:`~mailfleet.deliverability.health.is_auth_failure`).

No policy here: which counts pause a mailbox is decided in ``deliverability.health``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.deliverability.health import (
    Counts,
    HealthPolicy,
    MailboxEvidence,
    is_auth_failure,
    window_starts,
)
from mailfleet.store.inbox import InboundMessage
from mailfleet.store.models import Domain, Event, Mailbox, Send, SendKind, SendStatus

#: The ``source`` recorded in the data of a ``mailbox.paused`` event the health pass wrote.
HEALTH_SOURCE = "health"
HARD_REFUSAL = "drop_recipient"  # Send.outcome of a RCPT-time refusal of a dead address
CHUNK = 500


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for offset in range(0, len(ids), CHUNK):
        yield list(ids[offset : offset + CHUNK])


async def _counts(
    session: AsyncSession, mailbox_ids: Sequence[int], since: datetime, until: datetime
) -> dict[int, Counts]:
    """:class:`Counts` of each mailbox from ``since`` to ``until`` (both included)."""
    sends: dict[int, int] = {}
    refused: dict[int, int] = {}
    inbound: dict[int, tuple[int, int, int]] = {}
    auth: dict[int, int] = {}
    cold = Send.kind == SendKind.COLD
    accepted = Send.status.in_((SendStatus.SENT, SendStatus.UNKNOWN))
    dead = and_(Send.status == SendStatus.FAILED, Send.outcome == HARD_REFUSAL)
    refused_at = func.coalesce(Send.finished_at, Send.claimed_at)
    for ids in _chunks(mailbox_ids):
        rows = await session.execute(
            select(
                Send.mailbox_id,
                func.count().filter(and_(accepted, Send.claimed_at >= since)),
                func.count().filter(and_(dead, refused_at >= since, refused_at <= until)),
            )
            .where(
                Send.mailbox_id.in_(ids),
                cold,
                or_(accepted, dead),
                or_(Send.claimed_at >= since, Send.finished_at >= since),
                Send.claimed_at <= until,
            )
            .group_by(Send.mailbox_id)
        )
        for mailbox_id, accepted_count, refused_count in rows.all():
            sends[int(mailbox_id)] = int(accepted_count)
            refused[int(mailbox_id)] = int(refused_count)
        reports = await session.execute(
            select(
                InboundMessage.mailbox_id,
                func.count().filter(
                    and_(InboundMessage.kind == "bounce", InboundMessage.hard.is_(True))
                ),
                func.count().filter(
                    and_(InboundMessage.kind == "bounce", InboundMessage.hard.is_not(True))
                ),
                func.count().filter(InboundMessage.kind == "complaint"),
            )
            .where(
                InboundMessage.mailbox_id.in_(ids),
                InboundMessage.kind.in_(("bounce", "complaint")),
                InboundMessage.synced_at >= since,
                InboundMessage.synced_at <= until,
            )
            .group_by(InboundMessage.mailbox_id)
        )
        for mailbox_id, hard, soft, complaints in reports.all():
            inbound[int(mailbox_id)] = (int(hard), int(soft), int(complaints))
        # Authentication failures are rare: read the candidates and let policy decide.
        candidates = await session.execute(
            select(InboundMessage.mailbox_id, InboundMessage.status, InboundMessage.subject).where(
                InboundMessage.mailbox_id.in_(ids),
                InboundMessage.kind == "bounce",
                InboundMessage.synced_at >= since,
                InboundMessage.synced_at <= until,
                or_(InboundMessage.status.like("5.7.%"), InboundMessage.status.like("4.7.%")),
            )
        )
        refusals = await session.execute(
            select(Send.mailbox_id, Send.reply_enhanced, Send.reply_text).where(
                Send.mailbox_id.in_(ids),
                Send.status.in_((SendStatus.FAILED, SendStatus.DEFERRED)),
                Send.claimed_at >= since,
                Send.claimed_at <= until,
                or_(Send.reply_enhanced.like("5.7.%"), Send.reply_enhanced.like("4.7.%")),
            )
        )
        for mailbox_id, status, text in [*candidates.all(), *refusals.all()]:
            if is_auth_failure(status, text):
                auth[int(mailbox_id)] = auth.get(int(mailbox_id), 0) + 1
    out: dict[int, Counts] = {}
    for mailbox_id in mailbox_ids:
        hard, soft, complaints = inbound.get(mailbox_id, (0, 0, 0))
        dead_count = refused.get(mailbox_id, 0)
        out[mailbox_id] = Counts(
            sends=sends.get(mailbox_id, 0) + dead_count,
            hard_bounces=hard + dead_count,
            soft_bounces=soft,
            complaints=complaints,
            auth_failures=auth.get(mailbox_id, 0),
        )
    return out


async def acknowledgements(
    session: AsyncSession, mailbox_ids: Sequence[int], since: datetime, until: datetime
) -> dict[int, datetime]:
    """When a person last resumed each mailbox after a health pause (events in the span)."""
    last_pause: dict[int, datetime] = {}
    acked: dict[int, datetime] = {}
    for ids in _chunks(mailbox_ids):
        rows = await session.execute(
            select(Event.mailbox_id, Event.kind, Event.at, Event.data)
            .where(
                Event.mailbox_id.in_(ids),
                Event.kind.in_(("mailbox.paused", "mailbox.resumed")),
                Event.at >= since,
                Event.at <= until,
            )
            .order_by(Event.at, Event.id)
        )
        for mailbox_id, kind, at, data in rows.all():
            box = int(mailbox_id)
            if kind == "mailbox.paused" and (data or {}).get("source") == HEALTH_SOURCE:
                last_pause[box] = at
                acked.pop(box, None)
            elif kind == "mailbox.resumed" and box in last_pause:
                acked[box] = at
    return acked


async def mailbox_evidence(
    session: AsyncSession,
    now: datetime,
    policy: HealthPolicy,
    *,
    workspace_id: int | None = None,
    junk_shares: Mapping[int, float] | None = None,
) -> list[MailboxEvidence]:
    """Evidence for every mailbox (of ``workspace_id`` when given) at ``now``.

    ``junk_shares`` maps a mailbox id to the share of its warmup mail that landed in
    Junk over 28 days, when the warmup engine measures it.
    """
    query = select(Mailbox.id, Mailbox.address, Mailbox.status, Domain.name).join(
        Domain, Domain.id == Mailbox.domain_id
    )
    if workspace_id is not None:
        query = query.where(Mailbox.workspace_id == workspace_id)
    boxes = (await session.execute(query.order_by(Mailbox.address))).all()
    ids = [int(row[0]) for row in boxes]
    week_start, month_start = window_starts(now, policy)
    week = await _counts(session, ids, week_start, now)
    month = await _counts(session, ids, month_start, now)
    acked = await acknowledgements(session, ids, month_start, now)
    since_ack: dict[int, Counts] = {}
    for at in sorted(set(acked.values())):
        members = [i for i, when in acked.items() if when == at]
        since_ack.update(await _counts(session, members, at, now))
    shares = junk_shares or {}
    evidence = []
    for mailbox_id, address, status, domain in boxes:
        item = MailboxEvidence(
            mailbox_id=int(mailbox_id),
            address=str(address),
            domain=str(domain),
            status=str(status),
            week=week[int(mailbox_id)],
            month=month[int(mailbox_id)],
            junk_share_28d=shares.get(int(mailbox_id)),
        )
        if int(mailbox_id) in acked:
            item = replace(
                item,
                since_ack=since_ack[int(mailbox_id)],
                acknowledged_at=acked[int(mailbox_id)],
            )
        evidence.append(item)
    return evidence
