"""What the engine does about one submission result.

``providers.replies`` owns the table of what each server reply means; this
module only maps its :class:`~mailfleet.providers.Outcome` to the engine's
moves (see the outcome tree in ``providers/replies.py``):

- ACCEPTED → the send is ``sent``; UNKNOWN → ``unknown``, reconciled, never resent;
- RETRY → ``deferred`` with exponential backoff and jitter, or the server's hint;
- SLOW → ``deferred``, and the mailbox is held back for a while;
- PAUSE_MAILBOX / FIX_CONFIG → ``deferred``, the mailbox is paused with the remedy
  (until its rolling window frees when the provider says so);
- PAUSE_TENANT → every mailbox of the tenant pauses until the window frees;
- DROP_RECIPIENT → ``failed``, hard bounce: the address is suppressed, the
  enrollment ends; REJECTED → ``failed``, the enrollment ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from mailfleet.providers.faults import classify_exception
from mailfleet.providers.outcomes import Outcome, OutcomeKind
from mailfleet.providers.replies import classify_reply
from mailfleet.transport.smtp import Delivery, SubmitResult

ROLLING_WINDOW = timedelta(hours=24)
SLOW_HOLD = timedelta(minutes=15)


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
    pause_for: timedelta | None = None  # None with a pause: until a person resumes it
    hold_for: timedelta | None = None  # SLOW: keep the mailbox quiet this long
    retry_after: timedelta | None = None

    @property
    def enhanced(self) -> str | None:
        """The enhanced status code of the reply, if it had one."""
        return self.outcome.enhanced


def classify(result: SubmitResult, provider: str, mailbox: str) -> Outcome:
    """Classify a submission result with the provider's reply table."""
    if result.delivery is Delivery.ACCEPTED:
        return classify_reply(
            result.code or 250, result.text, stage=result.stage, provider=provider, mailbox=mailbox
        )
    if result.error is not None and result.code is None:
        return classify_exception(result.error, result.stage, provider=provider, mailbox=mailbox)
    outcome = classify_reply(
        result.code, result.text, stage=result.stage, provider=provider, mailbox=mailbox
    )
    if result.delivery is Delivery.UNKNOWN and outcome.kind is not OutcomeKind.UNKNOWN:
        # The transport knows the message was handed over; that beats any reading of the text.
        from dataclasses import replace

        outcome = replace(outcome, kind=OutcomeKind.UNKNOWN)
    return outcome


def react(result: SubmitResult, provider: str, mailbox: str) -> Reaction:
    """Decide the engine's move for ``result`` from ``provider``."""
    outcome = classify(result, provider, mailbox)
    reply = f"{result.code} {result.text}".strip() if result.code else result.text
    message = f"{result.stage.value}: {reply}"
    if outcome.remedy:
        message += f" — {outcome.remedy}"
    retry = timedelta(seconds=outcome.retry_after) if outcome.retry_after else None
    kind = outcome.kind
    if kind in (OutcomeKind.ACCEPTED, OutcomeKind.UNKNOWN, OutcomeKind.RETRY):
        return Reaction(outcome, message, retry_after=retry)
    if kind is OutcomeKind.SLOW:
        hold = SLOW_HOLD / max(outcome.rate_factor, 0.1)
        return Reaction(outcome, message, hold_for=retry or hold, retry_after=retry or hold)
    if kind is OutcomeKind.PAUSE_TENANT:
        return Reaction(
            outcome, message, pause_tenant=True, pause_mailbox=True, pause_for=ROLLING_WINDOW
        )
    if kind in (OutcomeKind.PAUSE_MAILBOX, OutcomeKind.FIX_CONFIG):
        until = ROLLING_WINDOW if outcome.until_window_frees else None
        return Reaction(outcome, message, pause_mailbox=True, pause_for=until)
    if kind is OutcomeKind.DROP_RECIPIENT:
        return Reaction(outcome, message, drop_recipient=True, suppress=outcome.hard_bounce)
    return Reaction(outcome, message, reject_message=True)
