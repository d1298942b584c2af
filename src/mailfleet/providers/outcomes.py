"""The vocabulary of a classified SMTP reply: where it happened and what to do about it.

The tree of kinds and the rules that choose them are drawn in
:mod:`mailfleet.providers.replies`; this module only holds the types, so that the
table (``reply_rules``), the matcher (``replies``) and the transport-fault
classifier (``faults``) share them without importing each other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Stage(enum.StrEnum):
    """Where in the submission flow a reply arrived or a connection failed.

    The values match ``mailfleet.transport.smtp.Stage`` so the engine can map one
    to the other with ``Stage(transport_stage.value)``.
    """

    CONNECT = "connect"  # TCP connect and DNS resolution
    BANNER = "banner"  # the server's 220 greeting
    EHLO = "ehlo"
    STARTTLS = "starttls"  # the reply to the STARTTLS command
    TLS = "tls"  # a TLS handshake: implicit TLS at connect, or after STARTTLS
    TOKEN = "token"  # obtaining an OAuth access token before AUTH
    AUTH = "auth"
    MAIL = "mail"  # MAIL FROM
    RCPT = "rcpt"  # RCPT TO
    DATA = "data"  # the DATA command and the reply after the message body
    RSET = "rset"
    QUIT = "quit"


class OutcomeKind(enum.StrEnum):
    """What the engine should do after a reply; see the tree in ``providers.replies``."""

    ACCEPTED = "accepted"  # the step succeeded; go on
    RETRY = "retry"  # transient: back off with jitter, try the same message again
    SLOW = "slow"  # transient, and the provider says we go too fast: back off and slow down
    PAUSE_MAILBOX = "pause_mailbox"  # stop this mailbox; the remedy says who must act
    PAUSE_TENANT = "pause_tenant"  # stop every mailbox of this Microsoft 365 tenant
    FIX_CONFIG = "fix_config"  # our configuration is wrong (port, TLS, host, mechanism)
    DROP_RECIPIENT = "drop_recipient"  # the address is dead: hard bounce, suppress it
    REJECTED = "rejected"  # this message was refused for good; the mailbox carries on
    UNKNOWN = "unknown"  # the message may or may not have been accepted: reconcile


#: Kinds that stop the mailbox (or its tenant) until a person or the rolling window frees it.
PAUSING_KINDS = frozenset(
    {OutcomeKind.PAUSE_MAILBOX, OutcomeKind.PAUSE_TENANT, OutcomeKind.FIX_CONFIG}
)

#: Kinds after which the same message may be submitted again later. A message
#: refused because its *mailbox* is paused is not at fault, so it is deferred,
#: not failed. UNKNOWN is deliberately absent: reconcile first, never resend blindly.
RETRIABLE_KINDS = frozenset(
    {
        OutcomeKind.RETRY,
        OutcomeKind.SLOW,
        OutcomeKind.PAUSE_MAILBOX,
        OutcomeKind.PAUSE_TENANT,
        OutcomeKind.FIX_CONFIG,
    }
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One SMTP reply (or transport failure), classified.

    ``code``, ``enhanced`` and ``text`` are what the server said (``text`` verbatim);
    ``rule`` is the stable id of the table row or fallback that decided ``kind``.
    The action hints below are only meaningful for the kinds named beside them.
    """

    kind: OutcomeKind
    code: int | None
    enhanced: str | None
    text: str
    stage: Stage
    rule: str
    explanation: str  # what the provider means by this reply
    remedy: str  # what a person (or the engine) should do; empty only when ACCEPTED
    provider: str = "generic"
    # Seconds the server asked us to wait ("try again in 5 minutes"), else None:
    # the engine's own exponential backoff decides.
    retry_after: float | None = None
    # PAUSE_MAILBOX after an OAuth login failure: refresh the access token and try
    # once more; only if that fails too, pause. Password mailboxes pause at once.
    refresh_token_first: bool = False
    # The server closed (or is closing) the connection: open a new one to retry.
    reconnect: bool = False
    # RETRY: too many recipients in one message: resend in smaller batches.
    split_recipients: bool = False
    # SLOW: too many concurrent connections: use fewer for this mailbox.
    fewer_connections: bool = False
    # SLOW: suggested multiplier for the mailbox's sending rate (0.5 = half as fast).
    rate_factor: float = 1.0
    # PAUSE_*: resume on its own when the rolling 24 h window has room again,
    # rather than waiting for a person.
    until_window_frees: bool = False

    @property
    def retriable(self) -> bool:
        """Whether this message may be submitted again later (deferred, not failed)."""
        return self.kind in RETRIABLE_KINDS

    @property
    def pauses(self) -> bool:
        """Whether the mailbox (or its whole tenant) must stop sending."""
        return self.kind in PAUSING_KINDS

    @property
    def hard_bounce(self) -> bool:
        """Whether the recipient's address is dead and must be suppressed."""
        return self.kind is OutcomeKind.DROP_RECIPIENT
