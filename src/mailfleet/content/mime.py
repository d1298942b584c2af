"""Building outgoing messages with the standard library, and the threading headers.

:func:`build_message` turns an :class:`OutgoingMessage` into an
:class:`email.message.EmailMessage` under :data:`SEND_POLICY`: ``email.policy.SMTP``
(CRLF line ends) restricted to 7-bit bodies, so non-ASCII text goes out
quoted-printable or base64 and never depends on the server's 8BITMIME. Names
and subjects are RFC 2047 encoded; internationalised domains are sent in their
IDNA (``xn--``) form. Message-IDs, References and List-Unsubscribe are folded
only between their ``<…>`` tokens, never encoded (the stdlib would encode a
token longer than a line), so the bytes to send are ``msg.as_bytes()``.

Lead data reaches headers (names, subject), so every header value is checked
for line breaks and control characters first and the message is refused with
:class:`HeaderInjectionError` naming the header: stripping would silently send
something other than what the user saw.

Nothing here reads a clock or a random source: the date, the Message-ID's
entropy and hence the MIME boundary all come from the caller, so the same
:class:`OutgoingMessage` always gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mailfleet.content.unsubscribe import is_loopback_url

__all__ = [
    "MAX_REFERENCES",
    "SEND_POLICY",
    "HeaderInjectionError",
    "MessageBuildError",
    "OutgoingMessage",
    "build_message",
    "make_message_id",
    "reply_subject",
    "thread_references",
]

MAX_REFERENCES = 20
"""References kept in a reply: the thread's first id plus the most recent ones."""

# C0 controls (CR and LF among them), DEL, and the Unicode line breaks that
# str.splitlines() honours and so could split a header somewhere downstream.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_MSG_ID = re.compile(r"<[^<>@\s]+@[^<>@\s]+>")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII except ":" (RFC 5322 ftext)
_REPLY_PREFIX = re.compile(r"^(?:\s*re\s*(?:\[\d+\])?\s*:)+\s*", re.IGNORECASE)
# Headers whose value is a list of <…> tokens. The stdlib folds a token longer
# than a line into RFC 2047 encoded words, which would turn a long one-click URL
# or an Outlook Message-ID into gibberish; these are folded at spaces only.
_VERBATIM = frozenset(
    {"message-id", "in-reply-to", "references", "list-unsubscribe", "list-unsubscribe-post"}
)
_MAX_LINE = 78
_MAX_TOKEN = 900  # RFC 5322 hard limit is 998 octets a line, header name included
# Headers build_message owns; an extra header may not replace or duplicate them.
_RESERVED = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)


if TYPE_CHECKING:
    _PolicyBase = EmailPolicy[EmailMessage]
else:
    _PolicyBase = EmailPolicy


class _SendPolicy(_PolicyBase):
    """``email.policy.SMTP`` with 7-bit bodies, folding token-list headers only at spaces."""

    def header_store_parse(self, name: str, value: str) -> tuple[str, str]:
        if name.lower() in _VERBATIM:
            # Kept as given, but with the injection guard the stdlib applies.
            if _CONTROL.search(value):
                raise HeaderInjectionError(f"header {name} contains a control character", name)
            return name, value
        return super().header_store_parse(name, value)

    def fold(self, name: str, value: str) -> str:
        if name.lower() not in _VERBATIM:
            return str(super().fold(name, value))
        lines = [f"{name}:"]
        for token in str(value).split():
            if len(lines[-1]) + 1 + len(token) > _MAX_LINE and lines[-1] != f"{name}:":
                lines.append("")
            lines[-1] += f" {token}"
        return self.linesep.join(lines) + self.linesep

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() not in _VERBATIM:
            return super().fold_binary(name, value)
        return self.fold(name, value).encode("ascii")


SEND_POLICY = _SendPolicy().clone(linesep="\r\n", cte_type="7bit")
"""The policy of every built message: CRLF, RFC 2047 names and subjects, 7-bit bodies."""


class MessageBuildError(ValueError):
    """The message cannot be built from this spec; ``header`` names the culprit if any."""

    def __init__(self, message: str, header: str | None = None) -> None:
        self.header = header
        super().__init__(message)


class HeaderInjectionError(MessageBuildError):
    """A header value holds a line break or another control character."""


@dataclass(frozen=True)
class OutgoingMessage:
    """Everything a message is built from; the caller supplies the date and Message-ID.

    ``unsubscribe_url`` adds RFC 8058 one-click headers (receivers honour only
    ``https``; ``http`` is accepted for the loopback sandbox).
    ``unsubscribe_mailto`` adds a ``mailto:`` alternative to ``List-Unsubscribe``.
    """

    from_address: str
    from_name: str | None
    to_address: str
    to_name: str | None
    subject: str
    text: str
    message_id: str
    date: datetime
    html: str | None = None
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)


def _check_value(header: str, value: str) -> None:
    match = _CONTROL.search(value)
    if match is not None:
        raise HeaderInjectionError(
            f"header {header} contains control character U+{ord(match.group()):04X} "
            f"at position {match.start()}; refusing to build the message",
            header,
        )


def _idna_domain(domain: str, header: str) -> str:
    try:
        ascii_domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError as exc:
        raise MessageBuildError(f"header {header}: domain {domain!r} is not valid", header) from exc
    if not _DOMAIN.fullmatch(ascii_domain):
        raise MessageBuildError(f"header {header}: domain {domain!r} is not valid", header)
    return ascii_domain.lower()


def _address(header: str, addr_spec: str, name: str | None) -> Address:
    _check_value(header, addr_spec)
    if name is not None:
        _check_value(header, name)
    local, at, domain = addr_spec.rpartition("@")
    if not at or not local:
        raise MessageBuildError(f"header {header}: {addr_spec!r} is not an address", header)
    if not local.isascii():
        raise MessageBuildError(
            f"header {header}: {addr_spec!r} has a non-ASCII local part, which needs "
            "SMTPUTF8; mailfleet does not send those",
            header,
        )
    try:
        return Address(display_name=name or "", addr_spec=f"{local}@{_idna_domain(domain, header)}")
    except (ValueError, IndexError) as exc:
        raise MessageBuildError(
            f"header {header}: {addr_spec!r} is not an address", header
        ) from exc


def _token(header: str, value: str) -> str:
    """Check a value for a header of <…> tokens: no controls, ASCII, each token foldable."""
    _check_value(header, value)
    if not value.isascii() or any(len(t) > _MAX_TOKEN for t in value.split()):
        raise MessageBuildError(f"header {header}: {value!r} is not ASCII or too long", header)
    return value


def _message_id(header: str, value: str) -> str:
    _token(header, value)
    if not _MSG_ID.fullmatch(value):
        raise MessageBuildError(
            f"header {header}: {value!r} is not a <id@domain> message id", header
        )
    return value


def _unsubscribe(url: str | None, mailto: str | None) -> list[str]:
    links: list[str] = []
    if url is not None:
        _token("List-Unsubscribe", url)
        parts = urlsplit(url)
        plain_ok = parts.scheme == "http" and is_loopback_url(url)  # a rehearsal on this host
        if (
            (parts.scheme != "https" and not plain_ok)
            or not parts.netloc
            or any(c in url for c in " <>,")
        ):
            raise MessageBuildError(
                f"header List-Unsubscribe: {url!r} is not an absolute https URL "
                "(plain http only for a loopback host)",
                "List-Unsubscribe",
            )
        links.append(f"<{url}>")
    if mailto is not None:
        _token("List-Unsubscribe", mailto)
        target = mailto if mailto.lower().startswith("mailto:") else f"mailto:{mailto}"
        if "@" not in target or any(c in target for c in " <>,"):
            raise MessageBuildError(
                f"header List-Unsubscribe: {mailto!r} is not a mailto address", "List-Unsubscribe"
            )
        links.append(f"<{target}>")
    return links


def _boundary(spec: OutgoingMessage) -> str:
    # Derived from the content so the same spec gives the same bytes; a body
    # cannot contain a hash of itself, and the check below covers the rest.
    digest = hashlib.blake2b(digest_size=16, person=b"mf-boundary")
    for part in (spec.message_id, spec.text, spec.html or ""):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    return f"=_mf_{digest.hexdigest()}"


def make_message_id(domain: str, unique: str) -> str:
    """Return ``<token@domain>``, the token a hash of ``unique`` (pass a UUID or send key).

    The same ``unique`` always gives the same id, so a retried send keeps its id.
    """
    _check_value("Message-ID", domain)
    _check_value("Message-ID", unique)
    ascii_domain = _idna_domain(domain, "Message-ID")
    digest = hashlib.blake2b(unique.encode("utf-8"), digest_size=15, person=b"mf-message-id")
    token = base64.b32encode(digest.digest()).decode("ascii").lower()
    return f"<{token}@{ascii_domain}>"


def reply_subject(subject: str) -> str:
    """Return "Re: subject" without stacking prefixes ("RE: Re: x" gives "Re: x")."""
    rest = _REPLY_PREFIX.sub("", subject, count=1)
    return f"Re: {rest}" if rest else "Re:"


def thread_references(
    parent_references: Sequence[str],
    parent_message_id: str,
    *,
    parent_in_reply_to: str | None = None,
    limit: int = MAX_REFERENCES,
) -> list[str]:
    """Return a reply's References (RFC 5322 3.6.4): the parent's chain, then the parent.

    Without parent References, a single-id In-Reply-To stands in. Ids may be
    given one per item or as a raw header value; duplicates and anything not
    shaped like ``<id@domain>`` are dropped. A chain longer than ``limit``
    keeps the first id (the thread's root) and the latest ``limit - 1``.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2")
    chain = [m for item in parent_references for m in _MSG_ID.findall(item)]
    if not chain and parent_in_reply_to is not None:
        in_reply_to = _MSG_ID.findall(parent_in_reply_to)
        chain = in_reply_to if len(in_reply_to) == 1 else []
    chain.extend(_MSG_ID.findall(parent_message_id))
    unique = list(dict.fromkeys(chain))
    if len(unique) > limit:
        unique = [unique[0], *unique[len(unique) - (limit - 1) :]]
    return unique


def build_message(spec: OutgoingMessage) -> EmailMessage:
    """Build the message; raise :class:`HeaderInjectionError` or :class:`MessageBuildError`.

    Send ``msg.as_bytes()`` as is (``SMTP.sendmail``): flattening it again under
    another policy, as aiosmtplib's ``send_message`` does with ``email.policy.SMTP``,
    would RFC 2047-encode long List-Unsubscribe URLs and Message-IDs.
    """
    if spec.date.tzinfo is None or spec.date.utcoffset() is None:
        raise MessageBuildError("header Date: the date must be timezone-aware", "Date")
    _check_value("Subject", spec.subject)
    sender = _address("From", spec.from_address, spec.from_name)
    recipient = _address("To", spec.to_address, spec.to_name)
    message_id = _message_id("Message-ID", spec.message_id)
    in_reply_to = _message_id("In-Reply-To", spec.in_reply_to) if spec.in_reply_to else None
    references = [_message_id("References", ref) for ref in spec.references]
    unsubscribe = _unsubscribe(spec.unsubscribe_url, spec.unsubscribe_mailto)
    extra: list[tuple[str, str]] = []
    for name, value in spec.extra_headers.items():
        _check_value(name, name)
        if not _HEADER_NAME.fullmatch(name):
            raise MessageBuildError(f"header name {name!r} is not valid", name)
        if name.lower() in _RESERVED:
            raise MessageBuildError(f"header {name} is set by build_message, not extra", name)
        _check_value(name, value)
        extra.append((name, value))

    msg = EmailMessage(policy=SEND_POLICY)
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = spec.subject
    msg["Date"] = format_datetime(spec.date)
    msg["Message-ID"] = message_id
    if in_reply_to is not None:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    if unsubscribe:
        msg["List-Unsubscribe"] = ", ".join(unsubscribe)
        if spec.unsubscribe_url is not None:
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in extra:
        msg[name] = value

    msg.set_content(spec.text)
    if spec.html is not None:
        msg.add_alternative(spec.html, subtype="html")
        # add_alternative repeats MIME-Version inside a part; it belongs at the top only.
        for part in msg.iter_parts():
            del part["MIME-Version"]
        boundary = _boundary(spec)
        if boundary in spec.text or boundary in spec.html:
            raise MessageBuildError("the body contains the MIME boundary", "Content-Type")
        msg.set_boundary(boundary)
    return msg
