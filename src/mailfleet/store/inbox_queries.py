"""Queries over what the inbox sync recorded: the unified inbox and the counts health needs.

:func:`unified_inbox` lists received messages across every mailbox, newest first,
filtered by campaign, mailbox and kind. :func:`inbound_counts` adds up a
workspace's replies, bounces and the rest. :func:`bounce_rates` gives, per mailbox
and per sending domain, the sends and the hard bounces, soft bounces and complaints
against them over a window — what the deliverability rules (bounce guard, spam
rate) read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.store.inbox import InboundMessage, MailboxFolderState
from mailfleet.store.models import Campaign, Domain, Lead, Mailbox, Send, SendStatus

REPLY_KINDS = ("reply", "unsubscribe")
"""What the unified inbox shows by default: people writing back."""


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """One received message as the unified inbox shows it."""

    id: int
    received_at: datetime
    kind: str
    mailbox: str
    folder: str
    from_address: str
    from_name: str
    subject: str
    text: str
    campaign: str | None
    lead: str | None
    matched_by: str | None


async def unified_inbox(
    session: AsyncSession,
    *,
    workspace_id: int | None = None,
    kinds: Sequence[str] | None = REPLY_KINDS,
    campaign: str | None = None,
    mailbox: str | None = None,
    limit: int = 50,
) -> list[InboxEntry]:
    """Received messages newest first; ``kinds=None`` shows every kind.

    ``campaign`` is a campaign name and ``mailbox`` an address (both case-insensitive).
    """
    query = (
        select(InboundMessage, Mailbox.address, Campaign.name, Lead.email)
        .join(Mailbox, Mailbox.id == InboundMessage.mailbox_id)
        .outerjoin(Campaign, Campaign.id == InboundMessage.campaign_id)
        .outerjoin(Lead, Lead.id == InboundMessage.lead_id)
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(limit)
    )
    if workspace_id is not None:
        query = query.where(InboundMessage.workspace_id == workspace_id)
    if kinds is not None:
        query = query.where(InboundMessage.kind.in_(list(kinds)))
    if campaign is not None:
        query = query.where(func.lower(Campaign.name) == campaign.strip().lower())
    if mailbox is not None:
        query = query.where(func.lower(Mailbox.address) == mailbox.strip().lower())
    rows = (await session.execute(query)).all()
    return [
        InboxEntry(
            id=row.id,
            received_at=row.received_at,
            kind=row.kind,
            mailbox=address,
            folder=row.folder,
            from_address=row.from_address,
            from_name=row.from_name,
            subject=row.subject,
            text=row.text,
            campaign=campaign_name,
            lead=lead_email,
            matched_by=row.matched_by,
        )
        for row, address, campaign_name, lead_email in rows
    ]


async def inbound_counts(session: AsyncSession, workspace_id: int) -> dict[str, int]:
    """Recorded messages of a workspace by kind, plus ``hard_bounce`` and ``in_junk``."""
    rows = (
        await session.execute(
            select(InboundMessage.kind, func.count())
            .where(InboundMessage.workspace_id == workspace_id)
            .group_by(InboundMessage.kind)
        )
    ).all()
    counts = {str(kind): int(n) for kind, n in rows}
    for name, condition in (
        ("hard_bounce", InboundMessage.hard.is_(True)),
        ("in_junk", InboundMessage.folder.in_(("Junk", "Junk Email", "Spam"))),
    ):
        counts[name] = int(
            await session.scalar(
                select(func.count()).where(InboundMessage.workspace_id == workspace_id, condition)
            )
            or 0
        )
    return counts


@dataclass(frozen=True, slots=True)
class BounceRate:
    """Sends and what came back for one mailbox or one sending domain over a window."""

    key: str  # the mailbox address or the domain name
    sends: int
    hard_bounces: int
    soft_bounces: int
    complaints: int

    @property
    def hard_bounce_rate(self) -> float:
        """Hard bounces per send (0 without sends)."""
        return self.hard_bounces / self.sends if self.sends else 0.0

    @property
    def complaint_rate(self) -> float:
        """Complaints per send (0 without sends)."""
        return self.complaints / self.sends if self.sends else 0.0


async def bounce_rates(
    session: AsyncSession, workspace_id: int, since: datetime, *, by: str = "mailbox"
) -> list[BounceRate]:
    """Per mailbox (``by="mailbox"``) or per sending domain (``by="domain"``), since ``since``."""
    if by not in ("mailbox", "domain"):
        raise ValueError("by is 'mailbox' or 'domain'")
    key = Mailbox.address if by == "mailbox" else Domain.name
    sent = (
        await session.execute(
            select(key, func.count())
            .select_from(Send)
            .join(Mailbox, Mailbox.id == Send.mailbox_id)
            .join(Domain, Domain.id == Mailbox.domain_id)
            .where(
                Send.workspace_id == workspace_id,
                Send.status.in_((SendStatus.SENT, SendStatus.UNKNOWN)),
                Send.claimed_at >= since,
            )
            .group_by(key)
        )
    ).all()
    back = (
        await session.execute(
            select(
                key,
                func.count().filter(InboundMessage.kind == "bounce", InboundMessage.hard.is_(True)),
                func.count().filter(
                    InboundMessage.kind == "bounce", InboundMessage.hard.is_not(True)
                ),
                func.count().filter(InboundMessage.kind == "complaint"),
            )
            .select_from(InboundMessage)
            .join(Mailbox, Mailbox.id == InboundMessage.mailbox_id)
            .join(Domain, Domain.id == Mailbox.domain_id)
            .where(
                InboundMessage.workspace_id == workspace_id,
                InboundMessage.received_at >= since,
                InboundMessage.kind.in_(("bounce", "complaint")),
            )
            .group_by(key)
        )
    ).all()
    sends = {str(k): int(n) for k, n in sent}
    returned = {str(k): (int(h), int(s), int(c)) for k, h, s, c in back}
    return [
        BounceRate(name, sends.get(name, 0), *returned.get(name, (0, 0, 0)))
        for name in sorted(set(sends) | set(returned))
    ]


async def save_folder_state(
    session: AsyncSession,
    mailbox_id: int,
    folder: str,
    role: str,
    uid_validity: int,
    last_uid: int,
    now: datetime,
) -> MailboxFolderState:
    """Record how far a folder was read: the UID mark only grows within one UIDVALIDITY."""
    row = await session.scalar(
        select(MailboxFolderState).where(
            MailboxFolderState.mailbox_id == mailbox_id, MailboxFolderState.folder == folder
        )
    )
    if row is None:
        row = MailboxFolderState(
            mailbox_id=mailbox_id,
            folder=folder,
            role=role,
            uid_validity=uid_validity,
            last_uid=last_uid,
            synced_at=now,
            resyncs=0,
        )
        session.add(row)
        return row
    if row.uid_validity != uid_validity:
        row.resyncs += 1
        row.last_uid = last_uid
    else:
        row.last_uid = max(row.last_uid, last_uid)
    row.uid_validity = uid_validity
    row.synced_at = now
    return row
