"""Mailbox and domain health: rates over rolling windows, a score, and the auto-pause decision.

Pure: the store gathers :class:`Counts` per mailbox for the windows that
:func:`window_starts` names (time is passed in), and :func:`assess_mailbox` /
:func:`assess_domain` decide. The engine applies a :class:`PauseDecision`
(``mailfleet.engine.health``).

Rates are over *cold* sends the server accepted (warmup goes to our own peers and
would dilute a prospect-list problem): hard bounces (a dead address, read from a
delivery report or refused at RCPT), complaints (ARF feedback reports) and
authentication failures (bounces or refusals that name SPF, DKIM or DMARC).
Spam placement is the warmup engine's ``junk_share_28d`` (None until it reports).

A person who resumes a mailbox that health paused has acknowledged that evidence:
from then on only evidence gathered after the resume counts (``acknowledged_at``),
so the next pass does not pause it again for the same bounces, yet new bounces
past the threshold pause it again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

#: Enhanced status codes that mean an authentication failure (RFC 7372 and providers).
AUTH_STATUS = frozenset(
    {"5.7.20", "5.7.21", "5.7.22", "5.7.23", "5.7.24", "5.7.25", "5.7.26", "5.7.27"}
    | {"5.7.509", "5.7.510", "5.7.515", "4.7.26", "4.7.27"}
)
_AUTH_WORDS = re.compile(r"\b(spf|dkim|dmarc|unauthenticated|not authenticated)\b", re.I)


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """Thresholds of the health pass; the defaults are issue 8's."""

    window: timedelta = timedelta(days=28)
    short_window: timedelta = timedelta(days=7)
    min_sends: int = 20  # no automatic pause before this many cold sends in the window
    hard_bounce_rate: float = 0.02  # pause above 2 %
    complaint_rate: float = 0.001  # pause above 0.1 %
    junk_share: float = 0.25  # spam placement above this share is flagged (not paused here)
    domain_paused_share: float = 0.5  # a domain is flagged when more than this share is paused

    def __post_init__(self) -> None:
        if self.short_window > self.window or self.short_window <= timedelta(0):
            raise ValueError("health policy: short_window must be positive and within window")
        if self.min_sends < 1:
            raise ValueError("health policy: min_sends must be at least 1")
        for name in ("hard_bounce_rate", "complaint_rate", "junk_share", "domain_paused_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"health policy: {name} must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class Counts:
    """What one mailbox (or domain) did in one window."""

    sends: int = 0  # cold sends accepted (or possibly accepted)
    hard_bounces: int = 0
    soft_bounces: int = 0
    complaints: int = 0
    auth_failures: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.sends + other.sends,
            self.hard_bounces + other.hard_bounces,
            self.soft_bounces + other.soft_bounces,
            self.complaints + other.complaints,
            self.auth_failures + other.auth_failures,
        )


@dataclass(frozen=True, slots=True)
class Rates:
    """Shares of sends; None when nothing was sent."""

    hard_bounce: float | None
    complaint: float | None
    auth_failure: float | None

    @classmethod
    def of(cls, counts: Counts) -> Rates:
        """The rates of ``counts``."""
        if counts.sends == 0:
            return cls(None, None, None)
        return cls(
            counts.hard_bounces / counts.sends,
            counts.complaints / counts.sends,
            counts.auth_failures / counts.sends,
        )


@dataclass(frozen=True, slots=True)
class MailboxEvidence:
    """What the store knows about one mailbox, gathered for :func:`assess_mailbox`."""

    mailbox_id: int
    address: str
    domain: str
    status: str  # active, paused, disconnected
    week: Counts  # the short window
    month: Counts  # the full window
    # Counts since a person resumed this mailbox after a health pause (None: never).
    since_ack: Counts | None = None
    acknowledged_at: datetime | None = None
    junk_share_28d: float | None = None  # from warmup placement, when it reports


@dataclass(frozen=True, slots=True)
class PauseDecision:
    """Pause this mailbox: which rule, why, and the evidence."""

    rule: str  # hard_bounce_rate, complaint_rate
    reason: str
    rate: float
    threshold: float
    sends: int
    events: int  # the bounces or complaints counted


@dataclass(frozen=True, slots=True)
class MailboxHealth:
    """The verdict on one mailbox."""

    evidence: MailboxEvidence
    week: Rates
    month: Rates
    score: int  # 0 (stop) … 100 (healthy)
    pause: PauseDecision | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DomainHealth:
    """The verdict on one sending domain, from its mailboxes."""

    name: str
    mailboxes: int
    paused: int
    disconnected: int
    month: Counts
    rates: Rates
    score: int
    flagged: bool
    reason: str | None = None
    addresses: tuple[str, ...] = field(default=())


def window_starts(now: datetime, policy: HealthPolicy) -> tuple[datetime, datetime]:
    """Where the short and the full window begin at ``now``."""
    return now - policy.short_window, now - policy.window


def is_auth_failure(status: str | None, text: str | None) -> bool:
    """Whether a bounce or refusal says the message failed SPF, DKIM or DMARC."""
    if status and status.strip() in AUTH_STATUS:
        return True
    return bool(text and _AUTH_WORDS.search(text))


def score(rates: Rates, policy: HealthPolicy, junk_share: float | None = None) -> int:
    """A 0–100 health score: each signal takes off up to its weight as it nears its threshold.

    Hard bounces and complaints weigh 40 each (at their threshold the score is at most
    60), authentication failures 10 (at 1 %), spam placement 30 (at ``policy.junk_share``).
    """
    penalty = 0.0
    if rates.hard_bounce is not None:
        penalty += 40 * min(1.0, rates.hard_bounce / max(policy.hard_bounce_rate, 1e-9))
    if rates.complaint is not None:
        penalty += 40 * min(1.0, rates.complaint / max(policy.complaint_rate, 1e-9))
    if rates.auth_failure is not None:
        penalty += 10 * min(1.0, rates.auth_failure / 0.01)
    if junk_share is not None:
        penalty += 30 * min(1.0, max(0.0, junk_share) / max(policy.junk_share, 1e-9))
    return max(0, min(100, round(100 - penalty)))


def _pause(counts: Counts, policy: HealthPolicy, since: str) -> PauseDecision | None:
    if counts.sends < policy.min_sends:
        return None
    bounce = counts.hard_bounces / counts.sends
    if bounce > policy.hard_bounce_rate:
        return PauseDecision(
            "hard_bounce_rate",
            f"hard-bounce rate {bounce:.1%} over {counts.sends} cold sends {since} "
            f"({counts.hard_bounces} hard bounces) passed {policy.hard_bounce_rate:.1%}: "
            "clean the lead list before sending more",
            bounce,
            policy.hard_bounce_rate,
            counts.sends,
            counts.hard_bounces,
        )
    complaint = counts.complaints / counts.sends
    if complaint > policy.complaint_rate:
        return PauseDecision(
            "complaint_rate",
            f"complaint rate {complaint:.2%} over {counts.sends} cold sends {since} "
            f"({counts.complaints} complaints) passed {policy.complaint_rate:.2%}: "
            "review targeting and content before sending more",
            complaint,
            policy.complaint_rate,
            counts.sends,
            counts.complaints,
        )
    return None


def assess_mailbox(evidence: MailboxEvidence, policy: HealthPolicy) -> MailboxHealth:
    """Rates, score and the pause decision of one mailbox."""
    week, month = Rates.of(evidence.week), Rates.of(evidence.month)
    days = policy.window.days
    if evidence.since_ack is not None and evidence.acknowledged_at is not None:
        since = f"since it was resumed on {evidence.acknowledged_at:%Y-%m-%d %H:%M} UTC"
        decision = _pause(evidence.since_ack, policy, since)
    else:
        decision = _pause(evidence.month, policy, f"in {days} days")
    notes: list[str] = []
    if evidence.month.sends < policy.min_sends:
        notes.append(
            f"{evidence.month.sends} cold sends in {days} days: too few to judge "
            f"(auto-pause needs {policy.min_sends})"
        )
    if evidence.junk_share_28d is not None and evidence.junk_share_28d > policy.junk_share:
        notes.append(f"{evidence.junk_share_28d:.0%} of warmup mail landed in Junk in 28 days")
    if evidence.month.auth_failures:
        notes.append(
            f"{evidence.month.auth_failures} authentication failures (SPF/DKIM/DMARC) in "
            f"{days} days: check the domain's DNS"
        )
    return MailboxHealth(
        evidence,
        week,
        month,
        score(month, policy, evidence.junk_share_28d),
        decision,
        tuple(notes),
    )


def assess_domain(
    name: str, mailboxes: Sequence[MailboxHealth], policy: HealthPolicy
) -> DomainHealth:
    """A domain's totals; flagged when more than ``domain_paused_share`` of its mailboxes
    are paused (counting those this pass is about to pause)."""
    paused = sum(
        1
        for m in mailboxes
        if m.evidence.status == "paused" or (m.pause is not None and m.evidence.status == "active")
    )
    disconnected = sum(1 for m in mailboxes if m.evidence.status == "disconnected")
    month = sum((m.evidence.month for m in mailboxes), Counts())
    rates = Rates.of(month)
    shares = [m.evidence.junk_share_28d for m in mailboxes if m.evidence.junk_share_28d is not None]
    junk = sum(shares) / len(shares) if shares else None
    flagged = bool(mailboxes) and paused / len(mailboxes) > policy.domain_paused_share
    reason = (
        f"{paused} of {len(mailboxes)} mailboxes are paused: the domain's reputation may be "
        "hurt; check its DNS, blocklists and lead sources before resuming"
        if flagged
        else None
    )
    return DomainHealth(
        name,
        len(mailboxes),
        paused,
        disconnected,
        month,
        rates,
        score(rates, policy, junk),
        flagged,
        reason,
        tuple(m.evidence.address for m in mailboxes),
    )


def assess_fleet(
    evidence: Sequence[MailboxEvidence], policy: HealthPolicy
) -> tuple[list[MailboxHealth], list[DomainHealth]]:
    """Every mailbox and every domain, each sorted by name."""
    boxes = [assess_mailbox(e, policy) for e in sorted(evidence, key=lambda e: e.address)]
    by_domain: dict[str, list[MailboxHealth]] = {}
    for box in boxes:
        by_domain.setdefault(box.evidence.domain, []).append(box)
    domains = [assess_domain(name, by_domain[name], policy) for name in sorted(by_domain)]
    return boxes, domains
