"""Microsoft 365's client-submission limits, enforced per sandbox mailbox on the injected clock.

Every sandbox mailbox carries a :class:`LimitMeter` that the submission server asks
after the mailbox's own behaviour (the fault, if any), so a fault never switches
the limits off. By default the meter enforces what Exchange Online enforces:

- 30 messages a minute: beyond it ``451 4.7.500 Server busy …`` at MAIL FROM (and at
  the end of DATA, for sessions that passed MAIL FROM together);
- 3 concurrent authenticated sessions: the 4th AUTH gets ``432 4.3.2``;
- 10,000 recipients in a rolling 24 hours: the message that would pass it gets
  ``554 5.2.0 …SubmissionQuotaExceededException`` at the end of DATA.

Counts are kept whatever the limits are, so lifting and restoring limits
(:meth:`~mailfleet.sandbox.Sandbox.set_limits`) never loses history.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailfleet.sandbox.behaviour import MailboxBehaviour, Submission
from mailfleet.sandbox.replies import Reply

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
DEFAULT_HOSTNAME = "smtp.sandbox.test"
LOOPBACK = "127.0.0.1"  # the sandbox listens on loopback only, so this is every client's IP


@dataclass(frozen=True, slots=True)
class SubmissionLimits:
    """Limits of one mailbox's client submission; ``None`` lifts that limit."""

    messages_per_minute: int | None = 30
    concurrent_connections: int | None = 3
    recipients_per_day: int | None = 10_000  # rolling 24 hours, recipients not messages


MICROSOFT_365_LIMITS = SubmissionLimits()
"""Exchange Online's real limits: the default of every sandbox mailbox."""

NO_LIMITS = SubmissionLimits(None, None, None)
"""Everything lifted: for benchmarks that measure the transport, not the provider."""


def server_busy(hostname: str = DEFAULT_HOSTNAME, ip: str = LOOPBACK) -> Reply:
    """Exchange Online's throttling reply (more than 30 messages a minute, or IP greylisting)."""
    return Reply(
        451, f"4.7.500 Server busy. Please try again later from [{ip}]. (S77719) [{hostname}]"
    )


CONCURRENT_CONNECTIONS = Reply(
    432,
    "4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending "
    "for more information.",
)


def submission_quota_exceeded(hostname: str = DEFAULT_HOSTNAME) -> Reply:
    """The reply once a mailbox sent to 10,000 recipients in a rolling 24 hours."""
    return Reply(
        554,
        "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to "
        "process message due to a permanent exception with message [BeginDiagnosticData]"
        f"Cannot submit message.[EndDiagnosticData] [Hostname={hostname}]",
    )


class LimitMeter(MailboxBehaviour):
    """Counts one mailbox's sessions, messages and recipients; refuses beyond its limits."""

    def __init__(
        self, limits: SubmissionLimits = MICROSOFT_365_LIMITS, hostname: str = DEFAULT_HOSTNAME
    ) -> None:
        self.limits = limits
        self.hostname = hostname
        self.sessions = 0
        """Authenticated sessions open right now."""
        self.refusals: list[Reply] = []
        """Every reply this meter refused with, oldest first."""
        self._messages: deque[datetime] = deque()  # accepted in the last minute
        self._recipients: deque[tuple[datetime, int]] = deque()  # accepted in the last 24 h

    # -- counts ---------------------------------------------------------------------------

    def messages_last_minute(self, now: datetime) -> int:
        """Messages accepted in the minute ending at ``now`` (a message counts 60 s)."""
        while self._messages and self._messages[0] <= now - MINUTE:
            self._messages.popleft()
        return len(self._messages)

    def recipients_last_day(self, now: datetime) -> int:
        """Recipients of the messages accepted in the 24 hours ending at ``now``."""
        while self._recipients and self._recipients[0][0] <= now - DAY:
            self._recipients.popleft()
        return sum(n for _, n in self._recipients)

    def day_frees_at(self) -> datetime | None:
        """When the oldest counted recipient leaves the rolling window (None: none counted)."""
        return self._recipients[0][0] + DAY if self._recipients else None

    # -- hooks ----------------------------------------------------------------------------

    async def on_auth(self, address: str, mechanism: str, now: datetime) -> Reply | None:
        limit = self.limits.concurrent_connections
        if limit is not None and self.sessions >= limit:
            return self._refuse(CONCURRENT_CONNECTIONS)
        self.sessions += 1
        return None

    def on_disconnect(self, address: str, now: datetime) -> None:
        self.sessions = max(0, self.sessions - 1)

    async def on_mail_from(self, address: str, now: datetime) -> Reply | None:
        return self._rate(now)

    async def on_data(self, address: str, submission: Submission, now: datetime) -> Reply | None:
        busy = self._rate(now)
        if busy is not None:
            return busy
        count = len(submission.recipients)
        per_day = self.limits.recipients_per_day
        if per_day is not None and self.recipients_last_day(now) + count > per_day:
            return self._refuse(submission_quota_exceeded(self.hostname))
        # The meter is the last layer asked: admitting here means the message is accepted.
        self._messages.append(now)
        self._recipients.append((now, count))
        return None

    def _rate(self, now: datetime) -> Reply | None:
        per_minute = self.limits.messages_per_minute
        if per_minute is not None and self.messages_last_minute(now) >= per_minute:
            return self._refuse(server_busy(self.hostname))
        return None

    def _refuse(self, reply: Reply) -> Reply:
        self.refusals.append(reply)
        return reply
