"""What the classifier says about one message: its kind and everything the engine acts on.

A :class:`Classification` is frozen and holds only plain values (strings, tuples,
dates, enums), so the engine can store it, compare it and turn it into events
without reaching back into the parsed message.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class Kind(enum.StrEnum):
    """What a received message is, from the point of view of a sequence."""

    BOUNCE = "bounce"  # a failed or delayed delivery report (RFC 3464 or an MTA's own format)
    DELIVERED = "delivered"  # a success report: delivered, relayed or expanded
    AUTO_REPLY = "auto_reply"  # RFC 3834 automatic answer: out of office, vacation, ticket bot
    COMPLAINT = "complaint"  # an ARF feedback report (RFC 5965)
    UNSUBSCRIBE = "unsubscribe"  # a person asking to be removed
    REPLY = "reply"  # a person answering
    WARMUP = "warmup"  # warmup traffic, recognised by its marker
    OTHER = "other"  # anything else, including what cannot be read


class BounceReason(enum.StrEnum):
    """Why a delivery failed, as far as the status code and the server's words tell.

    The reason describes the cause; whether the address is dead is the separate
    ``hard`` flag from :func:`mailfleet.providers.bounce_kind` (a transient
    ``450 4.1.1 user unknown`` is ``user_unknown`` yet soft).
    """

    USER_UNKNOWN = "user_unknown"  # no such mailbox (5.1.1, 5.1.10)
    MAILBOX_DISABLED = "mailbox_disabled"  # mailbox disabled, suspended or moved (5.2.1, 5.1.6)
    HOST_UNKNOWN = "host_unknown"  # no such domain or host, no MX (5.1.2)
    MAILBOX_FULL = "mailbox_full"  # over quota (5.2.2)
    MESSAGE_TOO_LARGE = "message_too_large"  # 5.3.4, 5.2.3
    SPAM = "spam"  # the content was judged spam, junk or unsafe
    BLOCKED = "blocked"  # the sender, its IP or domain is on a block list or has bad reputation
    POLICY = "policy"  # authentication (SPF, DKIM, DMARC), relaying or another local policy
    RATE_LIMITED = "rate_limited"  # too many messages or connections; deferred for volume
    GREYLISTED = "greylisted"  # try again later, by design
    EXPIRED = "expired"  # gave up after retrying for the queue lifetime (4.4.7, 5.4.7)
    ROUTING = "routing"  # host unreachable, connection refused or timed out, mail loop
    SYSTEM = "system"  # the receiving system failed or is not accepting mail
    UNKNOWN = "unknown"  # nothing in the report says why


class Action(enum.StrEnum):
    """A recipient's fate in a report: RFC 3464's actions plus ``complained`` for ARF."""

    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    RELAYED = "relayed"
    EXPANDED = "expanded"
    COMPLAINED = "complained"


@dataclass(frozen=True, slots=True)
class Recipient:
    """One recipient of a report: a failed, delayed or delivered address, or a complainant.

    ``address`` is the address we sent to (``Original-Recipient`` when the report
    carries it, else ``Final-Recipient``); ``hard`` means the address is dead and
    must be suppressed; ``reason`` is None for deliveries and complaints.
    """

    address: str
    action: Action
    status: str | None = None  # RFC 3463 enhanced code, e.g. "5.1.1"
    diagnostic: str = ""  # the remote server's words (Diagnostic-Code without its type)
    hard: bool = False
    reason: BounceReason | None = None
    final_recipient: str | None = None  # when it differs from ``address`` (forwarding)
    remote_mta: str | None = None


@dataclass(frozen=True, slots=True)
class Complaint:
    """The machine-readable part of an ARF feedback report (RFC 5965)."""

    feedback_type: str  # abuse, fraud, virus, other, not-spam, auth-failure
    user_agent: str | None = None
    original_mail_from: str | None = None
    original_recipient: str | None = None  # Original-Rcpt-To, else the returned message's To
    reported_domain: str | None = None
    source_ip: str | None = None
    arrival_date: str | None = None


@dataclass(frozen=True, slots=True)
class Classification:
    """The classifier's verdict on one raw message.

    ``matched_message_id`` is the first id this message points at (the returned
    original's Message-ID, In-Reply-To, then References newest first) that the
    caller's ``our_message_ids`` recognised; without that callback it is None and
    the caller matches on ``original_message_id``, ``in_reply_to`` and
    ``references``, or on ``from_address`` plus ``thread_subject``.
    ``text`` is the new text of the message without quoted history (for reports,
    their human-readable part), capped in length. ``signals`` name the evidence
    behind ``kind`` (``"header:auto-submitted"``, ``"dsn"``, ``"wording:ooo:de"``, …)
    for logs and tests; their spelling is not an interface.
    """

    kind: Kind
    from_address: str | None = None
    from_name: str | None = None
    to_addresses: tuple[str, ...] = ()
    subject: str = ""
    thread_subject: str = ""
    message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    date: dt.datetime | None = None
    matched_message_id: str | None = None
    recipients: tuple[Recipient, ...] = ()
    original_message_id: str | None = None
    complaint: Complaint | None = None
    return_date: dt.date | None = None
    language: str | None = None  # the language whose wording decided the kind, if any
    text: str = ""
    signals: tuple[str, ...] = ()
    truncated: bool = False  # the input was longer than the classifier reads

    @property
    def hard_bounce(self) -> bool:
        """True when a failed recipient's address is dead and must be suppressed."""
        return self.kind is Kind.BOUNCE and any(r.hard for r in self.recipients)
