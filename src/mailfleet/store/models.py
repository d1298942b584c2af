"""Tables of the store.

One workspace holds sending domains and their mailboxes, leads, campaigns with
steps, enrollments (a lead in a campaign), sends and events. Designed for the
whole of DESIGN.md: warmup sends share the ``send`` table (``kind``), inbound
observations and decisions land in ``event``, suppression is per workspace, and
``mailbox_lease`` lets several workers share one PostgreSQL later.

Every timestamp is stored as timezone-aware UTC (see :class:`UTCDateTime`).
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    literal_column,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A DateTime that refuses naive values and always comes back aware, in UTC.

    SQLite has no timezone type; storing naive UTC and re-attaching UTC on load
    keeps comparisons right on both SQLite and PostgreSQL.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass timezone-aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _domain_of(column: str) -> Any:
    """A column default: the domain of the address in ``column`` of the row being inserted."""

    def default(context: Any) -> str | None:
        address = context.get_current_parameters().get(column)
        return address.rpartition("@")[2].strip().lower() if address else None

    return default


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations name constraints."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[str]: JSON,
        list[int]: JSON,
    }


class MailboxStatus(enum.StrEnum):
    """Whether a mailbox may send."""

    ACTIVE = "active"
    PAUSED = "paused"  # a person or a rule stopped it; reason attached
    DISCONNECTED = "disconnected"  # credentials no longer work


class CampaignStatus(enum.StrEnum):
    """Lifecycle of a campaign."""

    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"


class EnrollmentStatus(enum.StrEnum):
    """Where a lead stands in a campaign."""

    ACTIVE = "active"
    COMPLETED = "completed"  # every step sent
    REPLIED = "replied"
    BOUNCED = "bounced"
    UNSUBSCRIBED = "unsubscribed"
    STOPPED = "stopped"  # stopped for another reason (suppressed, manual, complaint)


class SendStatus(enum.StrEnum):
    """The durable state of one message.

    ``planned`` → ``claimed`` → ``submitting`` → ``sent`` | ``deferred`` (retry at the
    enrollment's ``next_due_at``) | ``failed`` | ``unknown``. A plan lives in memory
    only; ``claimed`` (with the Message-ID) is committed before any connection opens,
    and ``submitting`` is committed just before this message's connection opens, so
    after a crash a ``claimed`` row was certainly not handed to a server while a
    ``submitting`` one may have been: both are looked up in the mailbox's Sent folder
    before anything else happens to them (see ``engine.reconcile``).
    """

    CLAIMED = "claimed"
    SUBMITTING = "submitting"  # committed just before the connection opens
    SENT = "sent"  # the server accepted it (250 after DATA)
    DEFERRED = "deferred"  # refused for now; the enrollment will be planned again
    FAILED = "failed"  # refused for good
    UNKNOWN = "unknown"  # may have been accepted: reconcile, never resend blindly


class SendKind(enum.StrEnum):
    """Why a message was sent."""

    COLD = "cold"
    WARMUP = "warmup"


class Workspace(Base):
    """A team or client: the unit of ownership and of suppression."""

    __tablename__ = "workspace"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    primary_domain: Mapped[str | None] = mapped_column(String(253))
    primary_tenant: Mapped[str | None] = mapped_column(String(200))
    # The business's real website: every sending domain should redirect to it.
    main_site: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime]

    domains: Mapped[list[Domain]] = relationship(back_populates="workspace")


class Domain(Base):
    """A dedicated sending domain."""

    __tablename__ = "domain"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(253))
    provider: Mapped[str] = mapped_column(String(32))  # microsoft365, google, generic
    tenant: Mapped[str | None] = mapped_column(String(200))
    forward_url: Mapped[str | None] = mapped_column(String(2000))
    # Cold sends of all its mailboxes together in a rolling 24 hours; None: no such cap.
    daily_cap: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]

    workspace: Mapped[Workspace] = relationship(back_populates="domains")
    mailboxes: Mapped[list[Mailbox]] = relationship(back_populates="domain")


class Mailbox(Base):
    """One real mailbox that sends and receives."""

    __tablename__ = "mailbox"
    __table_args__ = (UniqueConstraint("workspace_id", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    provider: Mapped[str] = mapped_column(String(32))
    tenant: Mapped[str | None] = mapped_column(String(200))
    # Transport endpoints (from the provider preset unless overridden).
    smtp_host: Mapped[str] = mapped_column(String(253))
    smtp_port: Mapped[int] = mapped_column(Integer)
    smtp_security: Mapped[str] = mapped_column(String(16))  # starttls, tls, plain
    imap_host: Mapped[str | None] = mapped_column(String(253))
    imap_port: Mapped[int | None] = mapped_column(Integer)
    imap_security: Mapped[str | None] = mapped_column(String(16))
    # POP3 (implicit TLS), read when the mailbox has no IMAP host.
    pop3_host: Mapped[str | None] = mapped_column(String(253))
    pop3_port: Mapped[int | None] = mapped_column(Integer)
    pop3_security: Mapped[str | None] = mapped_column(String(16))
    ca_file: Mapped[str | None] = mapped_column(String(1000))
    # Authentication: kind plus an encrypted blob the transport understands.
    auth_kind: Mapped[str] = mapped_column(String(32))  # oauth2_client, oauth2_delegated, password
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # Fernet ciphertext, never plain
    token_endpoint: Mapped[str | None] = mapped_column(String(2000))
    client_id: Mapped[str | None] = mapped_column(String(200))
    # Policy knobs; None means the provider preset / defaults decide.
    daily_cap: Mapped[int | None] = mapped_column(Integer)
    min_gap_seconds: Mapped[int | None] = mapped_column(Integer)
    max_per_minute: Mapped[int | None] = mapped_column(Integer)
    ramp_start: Mapped[date | None] = mapped_column(Date)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")  # its sending day
    # Warmup runs for it, and its cold sends keep to warmup_ratio warmup sends each per
    # day (None: the default, 2). Turning warmup off lifts the ratio rule, explicitly.
    warmup_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    warmup_ratio: Mapped[float | None] = mapped_column(Float)
    tags: Mapped[list[str]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), default=MailboxStatus.ACTIVE)
    status_reason: Mapped[str | None] = mapped_column(Text)
    paused_until: Mapped[datetime | None]
    # The provider said "too fast": the mailbox's rate is multiplied by rate_factor (< 1)
    # until slowed_until; both None when it sends at full speed.
    rate_factor: Mapped[float | None] = mapped_column(Float)
    slowed_until: Mapped[datetime | None]
    # Transient failures in a row; the mailbox's exponential backoff grows with it.
    failure_streak: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Bumped in SQL by every ORM or Core update of the row: the engine keeps mailboxes in
    # memory and re-loads them when (count, max id, sum of revisions) changes.
    revision: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", onupdate=literal_column("revision + 1")
    )
    created_at: Mapped[datetime]

    domain: Mapped[Domain] = relationship(back_populates="mailboxes")
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - read revision back, never lazily


class Campaign(Base):
    """An outreach sequence with its sending rules."""

    __tablename__ = "campaign"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.DRAFT)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Sending window: ISO weekdays (1 = Monday) and minutes after local midnight.
    window_days: Mapped[list[int]] = mapped_column(default=lambda: [1, 2, 3, 4, 5])
    window_start_minute: Mapped[int] = mapped_column(Integer, default=9 * 60)
    window_end_minute: Mapped[int] = mapped_column(Integer, default=17 * 60)
    use_lead_timezone: Mapped[bool] = mapped_column(Boolean, default=False)
    daily_cap: Mapped[int | None] = mapped_column(Integer)
    mailbox_tags: Mapped[list[str]] = mapped_column(default=list)  # empty: every mailbox
    # Stop rules and other options that do not need their own column.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]

    steps: Mapped[list[Step]] = relationship(
        back_populates="campaign", order_by="Step.position", cascade="all, delete-orphan"
    )


class Step(Base):
    """One message of a sequence; position 1 opens the thread."""

    __tablename__ = "step"
    __table_args__ = (UniqueConstraint("campaign_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    delay_days: Mapped[int] = mapped_column(Integer, default=0)
    delay_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    business_days: Mapped[bool] = mapped_column(Boolean, default=False)
    subject: Mapped[str] = mapped_column(Text)  # empty for a threaded follow-up: "Re: " + step 1
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    threaded: Mapped[bool] = mapped_column(Boolean, default=True)
    # A/B/n variants: [{"name": "B", "weight": 1, "subject": ..., "body_text": ...}]
    variants: Mapped[dict[str, Any]] = mapped_column(default=dict)

    campaign: Mapped[Campaign] = relationship(back_populates="steps")


class Lead(Base):
    """A prospect, unique per workspace by normalised address."""

    __tablename__ = "lead"
    __table_args__ = (
        UniqueConstraint("workspace_id", "email_normalized"),
        Index("ix_lead_workspace_domain", "workspace_id", "email_domain"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    email_normalized: Mapped[str] = mapped_column(String(320))
    # For company stops and recipient-domain caps; filled from the address when not given.
    email_domain: Mapped[str | None] = mapped_column(
        String(253), default=_domain_of("email_normalized")
    )
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(300))
    title: Mapped[str | None] = mapped_column(String(300))
    timezone: Mapped[str | None] = mapped_column(String(64))
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source: Mapped[str | None] = mapped_column(String(1000))  # file and row it came from
    created_at: Mapped[datetime]


class Enrollment(Base):
    """A lead in a campaign: which step is next, when, and from which mailbox."""

    __tablename__ = "enrollment"
    __table_args__ = (
        UniqueConstraint("campaign_id", "lead_id"),
        Index("ix_enrollment_due", "status", "next_due_at"),
        Index("ix_enrollment_lead", "lead_id"),
        # The planner's due query: first steps and follow-ups by step, oldest first.
        Index("ix_enrollment_step_due", "status", "next_step", "next_due_at"),
        # A thread mailbox's due follow-ups (the engine asks only for mailboxes ready to send).
        Index("ix_enrollment_mailbox_due", "mailbox_id", "status", "next_due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=EnrollmentStatus.ACTIVE)
    next_step: Mapped[int] = mapped_column(Integer, default=1)
    next_due_at: Mapped[datetime | None]
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailbox.id", ondelete="SET NULL"))
    thread_message_id: Mapped[str | None] = mapped_column(String(998))
    last_message_id: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[list[str]] = mapped_column(default=list)
    thread_subject: Mapped[str | None] = mapped_column(Text)
    stop_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Send(Base):
    """One message, claimed durably before the connection opens."""

    __tablename__ = "send"
    __table_args__ = (
        Index("ix_send_mailbox_time", "mailbox_id", "claimed_at"),
        Index("ix_send_status", "status"),
        Index("ix_send_recipient_domain", "recipient_domain", "claimed_at"),
        # The usage ledger's re-sync reads every send of the last day or so.
        Index("ix_send_claimed_at", "claimed_at"),
        # A step is sent to an enrollment at most once (exactly-once, in SQL).
        UniqueConstraint("enrollment_id", "step_position", name="uq_send_enrollment_step"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default=SendKind.COLD)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    enrollment_id: Mapped[int | None] = mapped_column(
        ForeignKey("enrollment.id", ondelete="CASCADE")
    )
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    step_position: Mapped[int | None] = mapped_column(Integer)
    variant: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    from_address: Mapped[str] = mapped_column(String(320))
    to_address: Mapped[str] = mapped_column(String(320))
    recipient_domain: Mapped[str | None] = mapped_column(
        String(253), default=_domain_of("to_address")
    )
    recipients: Mapped[int] = mapped_column(Integer, default=1)
    subject: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=SendStatus.CLAIMED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    reply_code: Mapped[int | None] = mapped_column(Integer)
    reply_enhanced: Mapped[str | None] = mapped_column(String(16))
    reply_text: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    # When its Message-ID was last looked up in the mailbox's Sent folder.
    reconciled_at: Mapped[datetime | None]


class Event(Base):
    """Something that happened, for the timeline, the dashboard and audits."""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_workspace_at", "workspace_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(64))
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailbox.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id", ondelete="SET NULL"))
    enrollment_id: Mapped[int | None] = mapped_column(
        ForeignKey("enrollment.id", ondelete="SET NULL")
    )
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", ondelete="SET NULL"))
    send_id: Mapped[int | None] = mapped_column(ForeignKey("send.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Suppression(Base):
    """An address or a whole domain that no campaign of the workspace may mail."""

    __tablename__ = "suppression"
    __table_args__ = (UniqueConstraint("workspace_id", "kind", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # email, domain
    value: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(64))  # hard_bounce, unsubscribe, complaint, manual
    created_at: Mapped[datetime]


class MailboxLease(Base):
    """Which worker owns a mailbox's sending right now (multi-worker PostgreSQL)."""

    __tablename__ = "mailbox_lease"

    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("mailbox.id", ondelete="CASCADE"), primary_key=True
    )
    worker_id: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]


class LeadValidation(Base):
    """One validation of a campaign's lead list: when, from what, and what it found.

    ``leads import`` writes one per file: every row was parsed (address syntax,
    required columns), checked against the workspace's suppressions and de-duplicated
    before anything was enrolled. The pre-launch gate requires one, and that no
    active enrollment was made after the latest (leads that bypassed validation).
    """

    __tablename__ = "lead_validation"
    __table_args__ = (Index("ix_lead_validation_campaign", "campaign_id", "validated_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    validated_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(1000))  # the file, as given
    rows: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)  # parsed and not suppressed
    rejected: Mapped[int] = mapped_column(Integer)  # bad rows, with their reasons in the report
    enrolled: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)  # already in this or another sequence


class WarmupSettings(Base):
    """A mailbox's warmup: when its ramp began, overrides, pause, and its cold-cap factor."""

    __tablename__ = "warmup_settings"

    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("mailbox.id", ondelete="CASCADE"), primary_key=True
    )
    started_on: Mapped[date] = mapped_column(Date)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_reason: Mapped[str | None] = mapped_column(Text)
    # Ramp overrides; None: the defaults (5 a day, +2 a day, up to 40).
    ramp_start: Mapped[int | None] = mapped_column(Integer)
    ramp_step: Mapped[int | None] = mapped_column(Integer)
    ramp_ceiling: Mapped[int | None] = mapped_column(Integer)
    weekdays_only: Mapped[bool] = mapped_column(Boolean, default=False)
    shared_pool: Mapped[bool] = mapped_column(Boolean, default=False)
    # The planner multiplies the mailbox's cold cap by this (1: no cut); see warmup.health.
    cold_cap_factor: Mapped[float] = mapped_column(Float, default=1.0)
    cap_changed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    # Bumped in SQL by every update of the row: the warmup sender keeps the settings in
    # memory and re-reads them when (count, sum of revisions) changes.
    revision: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", onupdate=literal_column("revision + 1")
    )
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - read revision back, never lazily


class WarmupThread(Base):
    """A warmup conversation between two mailboxes, continued over several days."""

    __tablename__ = "warmup_thread"
    __table_args__ = (Index("ix_warmup_thread_pair", "opener_mailbox_id", "peer_mailbox_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"))
    opener_mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    peer_mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    topic: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(Text)
    root_message_id: Mapped[str] = mapped_column(String(998))
    last_message_id: Mapped[str] = mapped_column(String(998))
    references: Mapped[list[str]] = mapped_column(default=list)
    messages: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime]
    last_at: Mapped[datetime]
    # Each side archives or deletes its copies once the thread went quiet; a thread
    # that one side cleaned up is never continued.
    opener_cleaned_at: Mapped[datetime | None]
    peer_cleaned_at: Mapped[datetime | None]


class WarmupMessage(Base):
    """One warmup send and what its peer saw: placement, flag, the reply it got."""

    __tablename__ = "warmup_message"
    __table_args__ = (
        Index("ix_warmup_message_sender_time", "sender_mailbox_id", "planned_at"),
        Index("ix_warmup_message_peer", "peer_mailbox_id", "placement"),
        # The replies still to send, by due time: ``reply_send_id IS NULL`` comes first so
        # the replies already sent are never scanned.
        Index("ix_warmup_message_reply_due", "reply_send_id", "reply_due_at"),
        # A slot of a mailbox's daily plan is sent at most once.
        UniqueConstraint("sender_mailbox_id", "plan_day", "slot", name="uq_warmup_message_slot"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    send_id: Mapped[int] = mapped_column(ForeignKey("send.id", ondelete="CASCADE"), unique=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("warmup_thread.id", ondelete="CASCADE"))
    sender_mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    peer_mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    token: Mapped[str] = mapped_column(String(40))
    origin: Mapped[str] = mapped_column(String(16))  # plan, reply
    plan_day: Mapped[date | None] = mapped_column(Date)
    slot: Mapped[int | None] = mapped_column(Integer)
    planned_at: Mapped[datetime]
    placement: Mapped[str | None] = mapped_column(String(16))  # inbox, junk; None: not seen yet
    observed_at: Mapped[datetime | None]
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    reply_due_at: Mapped[datetime | None]
    reply_send_id: Mapped[int | None] = mapped_column(ForeignKey("send.id", ondelete="SET NULL"))
    cleaned_at: Mapped[datetime | None]
