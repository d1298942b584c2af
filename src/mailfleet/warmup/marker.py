"""The warmup marker: how peers recognise warmup mail without it looking like a label.

Each warmup message carries a short identifier in a header (by default
``X-Entity-Ref-ID``, a header many mail tools already set) and the same token in
the body's closing line. The token is ``prefix`` plus eight base-32 characters
derived from the message, so it reads like an internal reference. The prefix and
header are an installation's choice (:class:`WarmupMarker`); the inbound
classifier's ``warmup_marker`` must be set to the same prefix.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import Message

from mailfleet.content.mime import OutgoingMessage, build_message

_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,60}")
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{3,15}")


@dataclass(frozen=True, slots=True)
class WarmupMarker:
    """An installation's marker: the token prefix and the header that carries it."""

    prefix: str = "mfwu-"
    header: str = "X-Entity-Ref-ID"

    def __post_init__(self) -> None:
        if not _PREFIX.fullmatch(self.prefix):
            raise ValueError(
                f"warmup marker prefix {self.prefix!r} must be 4-16 letters, digits, '.', '_' "
                "or '-', starting with a letter or digit"
            )
        if not _HEADER_NAME.fullmatch(self.header) or self.header.lower() in {
            "from",
            "to",
            "cc",
            "subject",
            "message-id",
        }:
            raise ValueError(f"warmup marker header {self.header!r} is not a usable header name")

    def token(self, unique: str) -> str:
        """The marker token of the message identified by ``unique`` (its Message-ID)."""
        digest = hashlib.blake2b(unique.encode(), digest_size=5, person=b"mf-warmup").digest()
        return self.prefix + base64.b32encode(digest).decode("ascii").lower()

    @property
    def pattern(self) -> re.Pattern[str]:
        """A regular expression matching any token of this marker."""
        return re.compile(re.escape(self.prefix) + r"[a-z2-7]{8}")

    def find(self, message: Message) -> str | None:
        """The token a parsed message carries in the header or the body, or None."""
        value = message.get(self.header)
        if value is not None:
            found = self.pattern.search(str(value))
            if found:
                return found.group(0)
        for part in message.walk():
            if part.get_content_maintype() != "text":
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            found = self.pattern.search(payload.decode("utf-8", "replace"))
            if found:
                return found.group(0)
        return None


def stamp_body(text: str, token: str) -> str:
    """The body with the token as a discreet closing reference line."""
    return f"{text.rstrip()}\n\nRef. {token}\n"


def warmup_message(
    marker: WarmupMarker,
    token: str,
    *,
    sender: str,
    sender_name: str,
    peer: str,
    peer_name: str,
    subject: str,
    body: str,
    message_id: str,
    at: datetime,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
) -> bytes:
    """The raw warmup message: plain text, the token in the marker header and the body."""
    return build_message(
        OutgoingMessage(
            from_address=sender,
            from_name=sender_name or None,
            to_address=peer,
            to_name=peer_name or None,
            subject=subject,
            text=stamp_body(body, token),
            message_id=message_id,
            date=at,
            in_reply_to=in_reply_to,
            references=references,
            extra_headers={marker.header: token},
        )
    ).as_bytes()
