"""What the engine does about one submission result.

The reply is classified by ``providers.replies`` (the one table of what each
server reply means); this module turns that classification into the engine's
moves: retry later, pause the mailbox, drop the recipient, or reject the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from mailfleet.transport.smtp import Delivery, Stage, SubmitResult

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True, slots=True)
class Reaction:
    """The engine's response to a submission result."""

    outcome: str
    message: str
    enhanced: str | None = None
    drop_recipient: bool = False
    suppress: bool = False
    reject_message: bool = False
    pause_mailbox: bool = False
    pause_for: timedelta | None = None
    retry_after: timedelta | None = None


def react(result: SubmitResult, provider: str, *, attempts: int) -> Reaction:
    """Decide the engine's move for ``result`` from ``provider``."""
    match = _ENHANCED.search(result.text or "")
    enhanced = ".".join(match.groups()) if match else None
    where = f"{result.stage.value}: {result.code or ''} {result.text}".strip()
    if result.delivery is Delivery.ACCEPTED:
        return Reaction("accepted", "accepted", enhanced)
    if result.delivery is Delivery.UNKNOWN:
        return Reaction("unknown", where, enhanced)
    code = result.code or 0
    if result.stage in (Stage.AUTH, Stage.TOKEN, Stage.TLS, Stage.STARTTLS):
        return Reaction("pause-mailbox", where, enhanced, pause_mailbox=True)
    if result.stage is Stage.RCPT and code >= 500:
        hard = enhanced in {"5.1.1", "5.1.10", "5.1.2", "5.1.6"} or enhanced is None
        return Reaction(
            "drop-recipient", where, enhanced, drop_recipient=True, suppress=hard
        )
    if code >= 500 and result.stage is Stage.DATA:
        return Reaction("rejected", where, enhanced, reject_message=True)
    if code >= 500:
        return Reaction("pause-mailbox", where, enhanced, pause_mailbox=True)
    return Reaction("retry", where, enhanced)
