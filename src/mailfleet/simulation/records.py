"""What the sandbox saw, in the order it saw it: the auditor's only evidence.

:class:`SubmissionLog` is filled from the sandbox's side of the wire — every
message the submission server accepted (with the virtual time it accepted it)
and every refusal the world made on its own account (a dead address at RCPT
TO). Nothing here comes from the engine's tables.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

from mailfleet.sandbox.headers import summarize_headers

_BOUNDARY = re.compile(rb'boundary="?([^";\r\n]+)"?', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Received:
    """One message the sandbox accepted from a mailbox."""

    at: datetime
    sender: str
    recipients: tuple[str, ...]
    message_id: str | None = None
    in_reply_to: str | None = None
    subject: str | None = None
    fingerprint: str = ""  # subject and body, without what changes between copies


@dataclass(frozen=True, slots=True)
class Bounced:
    """A recipient the world refused as not existing (a hard bounce at RCPT TO)."""

    at: datetime
    sender: str
    recipient: str


def fingerprint(raw: bytes, subject: str | None) -> str:
    """A digest of what a reader sees: the subject and the body.

    Date, Message-ID and the MIME boundary (derived from the Message-ID) differ
    between two copies of the same step; the text does not, because rendering is
    deterministic per lead and step.
    """
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, _, body = raw.partition(b"\n\n")
    match = _BOUNDARY.search(head)
    if match is not None:
        body = body.replace(match.group(1), b"")
    digest = hashlib.blake2b(digest_size=16)
    digest.update((subject or "").encode("utf-8", "surrogatepass") + b"\x00")
    digest.update(body)
    return digest.hexdigest()


@dataclass(slots=True)
class SubmissionLog:
    """Accepted messages and world-side refusals, oldest first."""

    received: list[Received] = field(default_factory=list)
    bounced: list[Bounced] = field(default_factory=list)

    def accept(
        self, at: datetime, sender: str, recipients: tuple[str, ...], raw: bytes
    ) -> Received:
        """Record a message the sandbox accepted at ``at``."""
        headers = summarize_headers(raw)
        item = Received(
            at=at,
            sender=sender,
            recipients=recipients,
            message_id=headers.message_id,
            in_reply_to=headers.in_reply_to,
            subject=headers.subject,
            fingerprint=fingerprint(raw, headers.subject),
        )
        self.received.append(item)
        return item

    def bounce(self, at: datetime, sender: str, recipient: str) -> None:
        """Record a recipient refused as unknown at ``at``."""
        self.bounced.append(Bounced(at, sender, recipient))
