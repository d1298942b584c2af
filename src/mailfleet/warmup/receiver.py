"""What a receiving peer does with a warmup message it found (pure decisions).

Where the message landed is recorded as found; then it is taken out of Junk,
marked read, flagged important for a share of messages, answered in its thread
for about ``reply_share`` of them after a realistic delay (a person reads mail
in batches: minutes to hours), and archived or deleted once its thread is older
than ``cleanup_after`` so mailboxes do not fill (Sent Items count toward
Microsoft's quota). Choices are seeded by the message, so a retried pass
decides the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from mailfleet.warmup.plan import unit


class Placement(StrEnum):
    """Where a warmup message was found in the peer's mailbox."""

    INBOX = "inbox"
    JUNK = "junk"


class Cleanup(StrEnum):
    """What happens to old warmup threads."""

    ARCHIVE = "archive"
    DELETE = "delete"
    KEEP = "keep"


@dataclass(frozen=True, slots=True)
class ReceiverPolicy:
    """How peers treat warmup mail."""

    reply_share: float = 0.30
    flag_share: float = 0.25
    reply_delay_min: timedelta = timedelta(minutes=20)
    reply_delay_max: timedelta = timedelta(hours=5)
    max_thread_messages: int = 6  # no reply once a thread has this many messages
    cleanup: Cleanup = Cleanup.ARCHIVE
    cleanup_after: timedelta = timedelta(days=7)
    archive_folder: str = "Archive"
    deleted_folder: str = "Deleted Items"

    def __post_init__(self) -> None:
        if not (0 <= self.reply_share <= 1 and 0 <= self.flag_share <= 1):
            raise ValueError("warmup reply_share and flag_share must be in [0, 1]")
        if self.reply_delay_min < timedelta(0) or self.reply_delay_max < self.reply_delay_min:
            raise ValueError("warmup reply delay must satisfy 0 <= min <= max")


@dataclass(frozen=True, slots=True)
class ReceiverAction:
    """The peer's moves for one warmup message."""

    placement: Placement
    rescue: bool  # move Junk -> INBOX
    mark_read: bool
    flag: bool
    reply_at: datetime | None  # None: no reply


def decide_receipt(
    message_id: str,
    placement: Placement,
    received_at: datetime,
    *,
    thread_messages: int = 1,
    policy: ReceiverPolicy | None = None,
    seed: int = 0,
) -> ReceiverAction:
    """The moves for a warmup message ``message_id`` found in ``placement``."""
    policy = policy or ReceiverPolicy()
    reply = (
        thread_messages < policy.max_thread_messages
        and unit("reply", seed, message_id) < policy.reply_share
    )
    reply_at = None
    if reply:
        span = policy.reply_delay_max - policy.reply_delay_min
        reply_at = received_at + policy.reply_delay_min + span * unit("delay", seed, message_id)
        reply_at = reply_at.replace(microsecond=0)
    return ReceiverAction(
        placement=placement,
        rescue=placement is Placement.JUNK,
        mark_read=True,
        flag=unit("flag", seed, message_id) < policy.flag_share,
        reply_at=reply_at,
    )


def cleanup_folder(policy: ReceiverPolicy) -> str | None:
    """The folder old warmup mail moves to (None: it stays)."""
    if policy.cleanup is Cleanup.ARCHIVE:
        return policy.archive_folder
    if policy.cleanup is Cleanup.DELETE:
        return policy.deleted_folder
    return None


def is_stale(last_activity: datetime, now: datetime, policy: ReceiverPolicy) -> bool:
    """Whether a thread last active at ``last_activity`` is due for cleanup at ``now``."""
    return policy.cleanup is not Cleanup.KEEP and now - last_activity >= policy.cleanup_after
