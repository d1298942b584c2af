"""What the inbox sync is configured with and what it reports (its IMAP and POP3 passes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from mailfleet.inbound import DEFAULT_WARMUP_MARKER, Classification
from mailfleet.inbox import InboxPolicy
from mailfleet.store import Mailbox
from mailfleet.transport.smtp import SmtpCredentials

Classifier = Callable[[bytes], Classification]
"""Raw message in, classification out; the default is :func:`mailfleet.inbound.classify`."""

RFC2177_LIMIT = timedelta(minutes=29)
"""RFC 2177: a client re-issues IDLE at least this often."""


class CredentialSource(Protocol):
    """Where a mailbox's login comes from (the engine's ``CredentialCache``)."""

    def credentials(self, mailbox: Mailbox) -> SmtpCredentials:
        """The username and token provider (or password) of ``mailbox``."""
        ...


@dataclass(frozen=True, slots=True)
class InboxSettings:
    """How often and how hard the sync works; the defaults suit a production fleet."""

    concurrency: int = 64  # mailbox passes at once (connect, fetch, record)
    poll_interval: timedelta = timedelta(minutes=2)  # servers without IDLE, and POP3
    idle_renew: timedelta = timedelta(minutes=10)  # IDLE re-issued (and Junk re-read) this often
    batch: int = 25  # messages fetched and committed together
    first_sync_history: timedelta = timedelta(days=14)
    resync_margin: timedelta = timedelta(days=1)
    backoff_base: timedelta = timedelta(seconds=10)
    backoff_max: timedelta = timedelta(minutes=15)
    login_backoff: timedelta = timedelta(minutes=30)
    mailbox_refresh: timedelta = timedelta(minutes=5)  # run(): look for added or removed mailboxes
    pop3_max_bytes: int = 25 * 1024 * 1024  # larger POP3 messages are read as headers + 400 lines
    timeout: float = 60.0
    warmup_marker: str | None = DEFAULT_WARMUP_MARKER
    # Warmup mail is the warmup receiver's (engine.warmup_receiver): it records where the
    # mail landed before anything moves it. True lets this sync rescue and mark it itself
    # (for installations that run no warmup receiver).
    act_on_warmup: bool = False
    policy: InboxPolicy = field(default_factory=InboxPolicy)

    def __post_init__(self) -> None:
        if self.idle_renew >= RFC2177_LIMIT:
            raise ValueError("idle_renew must stay under 29 minutes (RFC 2177)")
        if self.concurrency < 1 or self.batch < 1:
            raise ValueError("concurrency and batch must be positive")


@dataclass(slots=True)
class SyncReport:
    """What one or more passes did."""

    mailboxes: int = 0
    folders: int = 0
    fetched: int = 0
    recorded: int = 0
    duplicates: int = 0
    moved: int = 0
    resyncs: int = 0
    stopped: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def merge(self, other: SyncReport) -> None:
        """Add ``other``'s counts to this report."""
        self.mailboxes += other.mailboxes
        self.folders += other.folders
        self.fetched += other.fetched
        self.recorded += other.recorded
        self.duplicates += other.duplicates
        self.moved += other.moved
        self.resyncs += other.resyncs
        self.stopped += other.stopped
        for kind, count in other.by_kind.items():
            self.by_kind[kind] = self.by_kind.get(kind, 0) + count
        self.errors.extend(other.errors)

    def count(self, result: Classification, new: bool) -> None:
        """Count one message read: recorded (by kind) when ``new``, else a duplicate."""
        if not new:
            self.duplicates += 1
            return
        self.recorded += 1
        kind = str(result.kind)
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
