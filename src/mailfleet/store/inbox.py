"""Tables of the inbound side: where each folder's sync stands and what was read from it.

``mailbox_folder_state``
    One row per synced IMAP folder: the UIDVALIDITY seen last and the highest UID
    already processed. A different UIDVALIDITY means the server renumbered the
    folder; the sync then re-reads a bounded window and relies on the dedupe below.
``pop3_seen``
    The UIDLs of a POP3 mailbox already read, so nothing is read twice.
``inbound_message``
    Every message read, once per mailbox (unique on ``dedupe_key``: the Message-ID,
    or a hash of the bytes when there is none), with its classification and the
    send, enrollment, lead and campaign it was matched to. The unified inbox and the
    bounce and complaint counts are queries over it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mailfleet.store.models import Base


class MailboxFolderState(Base):
    """How far the sync of one IMAP folder of one mailbox has read."""

    __tablename__ = "mailbox_folder_state"
    __table_args__ = (UniqueConstraint("mailbox_id", "folder"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(500))  # the server's name, decoded
    role: Mapped[str] = mapped_column(String(16))  # inbox, junk
    uid_validity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    synced_at: Mapped[datetime]
    resyncs: Mapped[int] = mapped_column(Integer, default=0)  # UIDVALIDITY changes survived


class Pop3Seen(Base):
    """One POP3 message (by UIDL) already read from a mailbox."""

    __tablename__ = "pop3_seen"
    __table_args__ = (UniqueConstraint("mailbox_id", "uidl"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    uidl: Mapped[str] = mapped_column(String(100))  # RFC 1939: 1 to 70 printable characters
    seen_at: Mapped[datetime]


class InboundMessage(Base):
    """A message read from a mailbox, classified, matched and acted on exactly once."""

    __tablename__ = "inbound_message"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "dedupe_key"),
        Index("ix_inbound_message_workspace_received", "workspace_id", "received_at"),
        Index("ix_inbound_message_mailbox_kind", "mailbox_id", "kind", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    dedupe_key: Mapped[str] = mapped_column(String(998))
    message_id: Mapped[str | None] = mapped_column(String(998))
    folder: Mapped[str] = mapped_column(String(500))  # INBOX, Junk, … or POP3
    source: Mapped[str] = mapped_column(String(200))  # uidvalidity:uid, or the POP3 UIDL
    kind: Mapped[str] = mapped_column(String(32))  # reply, bounce, auto_reply, …
    from_address: Mapped[str] = mapped_column(String(320), default="")
    from_name: Mapped[str] = mapped_column(String(200), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")  # the new text, quotes removed
    received_at: Mapped[datetime]
    synced_at: Mapped[datetime]
    # What it was matched to, and how (in-reply-to, references, original, sender-subject…).
    send_id: Mapped[int | None] = mapped_column(ForeignKey("send.id", ondelete="SET NULL"))
    enrollment_id: Mapped[int | None] = mapped_column(
        ForeignKey("enrollment.id", ondelete="SET NULL")
    )
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id", ondelete="SET NULL"))
    matched_by: Mapped[str | None] = mapped_column(String(32))
    # Bounces: whether any recipient failed for good, and the first enhanced code.
    hard: Mapped[bool | None] = mapped_column(Boolean)
    status: Mapped[str | None] = mapped_column(String(16))
    return_date: Mapped[date | None] = mapped_column(Date)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
