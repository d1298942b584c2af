"""What the engine does about one submission result.

``providers.replies`` owns the table of what each server reply means; this
module only maps its :class:`~mailfleet.providers.Outcome` to the engine's
moves (see the outcome tree in ``providers/replies.py``), and holds the pure
arithmetic of those moves (backoff, lowered rates, when a rolling window frees):

- ACCEPTED → the send is ``sent``; the mailbox's failure streak resets.
- UNKNOWN → ``unknown``: reconciled, never resent.
- RETRY → ``deferred``. At RCPT the fault is the recipient's: only that message
  backs off (by its own attempts). Anywhere else the *mailbox* backs off: its
  failure streak grows and it is held for ``backoff(streak)`` (or the server's
  "try again in N"), exponential with jitter; first steps move to other mailboxes,
  follow-ups wait for the hold to end. After :data:`ESCALATE_AFTER` in a row the
  mailbox is paused for a person.
- SLOW → as a mailbox-level RETRY with a longer base, and the mailbox's rate is
  multiplied by ``rate_factor`` (compounding, never below :data:`MIN_RATE_FACTOR`)
  for :data:`SLOW_FOR` after the last "too fast".
- PAUSE_MAILBOX / FIX_CONFIG → ``deferred``: the message is not at fault. The
  mailbox pauses with the remedy, until a person resumes it — or, when the
  provider counts a rolling 24 hours, until the mailbox's oldest counted send
  leaves that window. Its queued first steps move to other mailboxes; follow-ups
  wait for their thread's mailbox. Nothing is sent from it again meanwhile, so
  nothing Microsoft punishes for repeating (mailbox full, SendAs denied, 5.2.25x
  throttles, disabled AUTH) is repeated.
- PAUSE_TENANT → every mailbox of the tenant pauses until the tenant's oldest
  counted send leaves the rolling window.
- DROP_RECIPIENT → ``failed``, hard bounce: the address is suppressed and the
  enrollment ends. REJECTED → ``failed``: this message is refused for good, the
  enrollment ends, the mailbox carries on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from mailfleet.providers.faults import classify_exception
from mailfleet.providers.outcomes import Outcome, OutcomeKind, Stage
from mailfleet.providers.replies import classify_reply
from mailfleet.transport.smtp import Delivery, SubmitResult

ROLLING_WINDOW = timedelta(hours=24)
MIN_WINDOW_PAUSE = timedelta(hours=1)
"""A window pause lasts at least this long: the provider may count sends we do not see."""
RETRY_BASE = timedelta(minutes=1)
SLOW_BASE = timedelta(minutes=5)
BACKOFF_CAP = timedelta(hours=4)
SLOW_FOR = timedelta(hours=1)
"""How long a lowered rate lasts after the provider last said "too fast"."""
MIN_RATE_FACTOR = 0.1
ESCALATE_AFTER = 8
"""Transient failures in a row after which a person is asked to look at the mailbox."""


@dataclass(frozen=True, slots=True)
class Reaction:
    """The engine's response to a submission result."""

    outcome: Outcome
    message: str
    drop_recipient: bool = False
    suppress: bool = False
    reject_message: bool = False
    pause_mailbox: bool = False
    pause_tenant: bool = False
    until_window_frees: bool = False  # a pause that ends when the rolling 24 h frees
    hold_mailbox: bool = False  # transient at the mailbox: it backs off
    backoff_base: timedelta = RETRY_BASE
    rate_factor: float = 1.0  # SLOW: multiply the mailbox's rate by this for a while
    retry_after: timedelta | None = None  # the server's own "try again in N"

    @property
    def enhanced(self) -> str | None:
        """The enhanced status code of the reply, if it had one."""
        return self.outcome.enhanced

    @property
    def deferred(self) -> bool:
        """Whether the message will be submitted again later."""
        return not (self.drop_recipient or self.reject_message)


def classify(result: SubmitResult, provider: str, mailbox: str) -> Outcome:
    """Classify a submission result with the provider's reply table."""
    if result.delivery is Delivery.ACCEPTED:
        return classify_reply(
            result.code or 250, result.text, stage=result.stage, provider=provider, mailbox=mailbox
        )
    if result.error is not None and result.code is None:
        outcome = classify_exception(result.error, result.stage, provider=provider, mailbox=mailbox)
        return _as_delivered(result, outcome)
    outcome = classify_reply(
        result.code, result.text, stage=result.stage, provider=provider, mailbox=mailbox
    )
    return _as_delivered(result, outcome)


def _as_delivered(result: SubmitResult, outcome: Outcome) -> Outcome:
    """Let the transport's knowledge of whether the body was written decide UNKNOWN.

    The transport writes DATA itself, so it knows exactly whether the message was
    handed over; the reply table can only guess from the stage.
    """
    if result.delivery is Delivery.UNKNOWN and outcome.kind is not OutcomeKind.UNKNOWN:
        return replace(outcome, kind=OutcomeKind.UNKNOWN)
    if result.delivery is Delivery.REFUSED and outcome.kind is OutcomeKind.UNKNOWN:
        # Failed before the body was written: nothing can have been accepted, so retry.
        return replace(outcome, kind=OutcomeKind.RETRY, reconnect=True)
    return outcome


def react(result: SubmitResult, provider: str, mailbox: str) -> Reaction:
    """Decide the engine's move for ``result`` from ``provider``."""
    outcome = classify(result, provider, mailbox)
    reply = f"{result.code} {result.text}".strip() if result.code else result.text
    message = f"{result.stage.value}: {reply}"
    if outcome.remedy:
        message += f" — {outcome.remedy}"
    hint = timedelta(seconds=outcome.retry_after) if outcome.retry_after else None
    kind = outcome.kind
    if kind in (OutcomeKind.ACCEPTED, OutcomeKind.UNKNOWN):
        return Reaction(outcome, message)
    if kind is OutcomeKind.RETRY:
        # At RCPT the recipient's side is at fault (greylisting, their mailbox full).
        mailbox_level = outcome.stage is not Stage.RCPT
        return Reaction(outcome, message, hold_mailbox=mailbox_level, retry_after=hint)
    if kind is OutcomeKind.SLOW:
        return Reaction(
            outcome,
            message,
            hold_mailbox=True,
            backoff_base=SLOW_BASE,
            rate_factor=outcome.rate_factor,
            retry_after=hint,
        )
    if kind is OutcomeKind.PAUSE_TENANT:
        return Reaction(
            outcome,
            message,
            pause_mailbox=True,
            pause_tenant=True,
            until_window_frees=True,
            retry_after=hint,
        )
    if kind in (OutcomeKind.PAUSE_MAILBOX, OutcomeKind.FIX_CONFIG):
        return Reaction(
            outcome,
            message,
            pause_mailbox=True,
            until_window_frees=outcome.until_window_frees,
            retry_after=hint if outcome.until_window_frees else None,
        )
    if kind is OutcomeKind.DROP_RECIPIENT:
        return Reaction(outcome, message, drop_recipient=True, suppress=outcome.hard_bounce)
    return Reaction(outcome, message, reject_message=True)


def backoff(streak: int, base: timedelta, rng: random.Random) -> timedelta:
    """Exponential backoff with equal jitter: ``base · 2^(streak-1)``, capped, half of it random."""
    ceiling: timedelta = min(BACKOFF_CAP, base * 2 ** max(0, streak - 1))
    return ceiling / 2 + ceiling * (rng.random() / 2)


def lowered_rate(current: float | None, factor: float) -> float | None:
    """The rate multiplier after another "too fast" (None: full speed, no change asked)."""
    if factor >= 1.0:
        return current
    return max(MIN_RATE_FACTOR, (current or 1.0) * factor)


def window_frees_at(oldest: datetime | None, now: datetime, hint: timedelta | None) -> datetime:
    """When a rolling-24 h pause ends: the server's hint, else when ``oldest`` leaves the window.

    ``oldest`` is the earliest counted send inside the window (of the mailbox, or of
    the tenant); a provider that counts more than we do still gets at least an hour.
    """
    if hint is not None:
        return now + hint
    if oldest is None:
        return now + ROLLING_WINDOW
    return max(oldest + ROLLING_WINDOW, now + MIN_WINDOW_PAUSE)
