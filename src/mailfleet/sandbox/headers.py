"""The few header fields the sandbox reads from a submitted message."""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser

# compat32 never raises on odd header values and returns them as plain strings.
_PARSER = BytesHeaderParser(policy=policy.compat32)


@dataclass(frozen=True, slots=True)
class HeaderSummary:
    """Threading and display fields of one message; absent fields are None."""

    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str | None


def _field(value: object) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _decoded(value: str | None) -> str | None:
    # Subjects arrive as RFC 2047 encoded words; a malformed one is kept as sent.
    if value is None:
        return None
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeDecodeError):
        return value


def summarize_headers(raw: bytes) -> HeaderSummary:
    """Read Message-ID, In-Reply-To, References and Subject from a raw message."""
    message = _PARSER.parsebytes(raw)
    references = _field(message.get("References"))
    return HeaderSummary(
        message_id=_field(message.get("Message-ID")),
        in_reply_to=_field(message.get("In-Reply-To")),
        references=tuple(references.split()) if references else (),
        subject=_decoded(_field(message.get("Subject"))),
    )


def same_message_id(a: str, b: str) -> bool:
    """Compare two Message-IDs, ignoring angle brackets and surrounding space."""
    return a.strip().strip("<>") == b.strip().strip("<>")
