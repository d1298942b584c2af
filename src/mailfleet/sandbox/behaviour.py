"""Per-mailbox behaviour of the sandbox: the seam where faults are injected.

The submission server asks a mailbox's :class:`MailboxBehaviour` at each step of a
session. The base class behaves like a healthy Microsoft 365 mailbox and answers
``None`` everywhere (carry on); a subclass that returns a :class:`Reply` makes the
server send that reply instead, which is how throttling, disabled SMTP AUTH, a full
mailbox or a spent recipient quota are simulated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailfleet.sandbox.replies import Reply


@dataclass(frozen=True, slots=True)
class Submission:
    """A message as the server received it at the end of DATA."""

    sender: str
    recipients: tuple[str, ...]
    raw: bytes
    message_id: str


class MailboxBehaviour:
    """A healthy mailbox; override a hook to refuse or delay at that step."""

    async def on_auth(self, address: str, mechanism: str, now: datetime) -> Reply | None:
        """Called after the credentials of ``address`` were accepted; a reply refuses AUTH."""
        return None

    async def on_mail_from(self, address: str, now: datetime) -> Reply | None:
        """Called at MAIL FROM once the sender is known to be the mailbox itself."""
        return None

    async def on_rcpt_to(self, address: str, recipient: str, now: datetime) -> Reply | None:
        """Called at each RCPT TO; a reply refuses that recipient."""
        return None

    async def on_data(self, address: str, submission: Submission, now: datetime) -> Reply | None:
        """Called at the end of DATA before anything is stored; a reply refuses the message."""
        return None

    def on_disconnect(self, address: str, now: datetime) -> None:
        """Called when a session authenticated as ``address`` ends (for connection counts)."""


class LayeredBehaviour(MailboxBehaviour):
    """Several behaviours asked in turn: the first reply wins, every layer hears disconnects.

    A later layer is only asked when the earlier ones carried on, so a layer that counts
    what it admits (the mailbox's :class:`~mailfleet.sandbox.limits.LimitMeter`, asked
    last) counts only what the server really accepted.
    """

    def __init__(self, *layers: MailboxBehaviour) -> None:
        self.layers = layers

    async def on_auth(self, address: str, mechanism: str, now: datetime) -> Reply | None:
        for layer in self.layers:
            reply = await layer.on_auth(address, mechanism, now)
            if reply is not None:
                return reply
        return None

    async def on_mail_from(self, address: str, now: datetime) -> Reply | None:
        for layer in self.layers:
            reply = await layer.on_mail_from(address, now)
            if reply is not None:
                return reply
        return None

    async def on_rcpt_to(self, address: str, recipient: str, now: datetime) -> Reply | None:
        for layer in self.layers:
            reply = await layer.on_rcpt_to(address, recipient, now)
            if reply is not None:
                return reply
        return None

    async def on_data(self, address: str, submission: Submission, now: datetime) -> Reply | None:
        for layer in self.layers:
            reply = await layer.on_data(address, submission, now)
            if reply is not None:
                return reply
        return None

    def on_disconnect(self, address: str, now: datetime) -> None:
        for layer in self.layers:
            layer.on_disconnect(address, now)
