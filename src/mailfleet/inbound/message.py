"""Reading a raw message within fixed bounds: headers, addresses, ids and body text.

Everything here accepts hostile input. The bytes read are capped (a message's
own ``Content-Length`` is never believed), MIME nesting deeper than
:data:`MAX_NESTING` is not parsed (the standard parser recurses once per level),
walks stop after :data:`MAX_PARTS` parts, and decoded text is cut at
:data:`MAX_TEXT_CHARS`. Headers with raw 8-bit bytes are read as UTF-8 with
replacement characters; RFC 2047 encoded words are decoded when they are valid.
Nothing raises on bad input.
"""

from __future__ import annotations

import email
import email.errors
import email.header
import html
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

MAX_MESSAGE_BYTES = 1024 * 1024
"""Bytes of a message the classifier reads; reports and replies say what matters early."""
MAX_NESTING = 40
"""Multipart or message/* declarations beyond which only the top headers are parsed."""
MAX_PARTS = 200
"""Parts a walk visits before it stops."""
MAX_TEXT_CHARS = 64 * 1024
"""Characters of decoded body text kept for matching."""
MAX_HEADER_CHARS = 8 * 1024
"""Characters of one header value kept (a long References chain fits)."""
MAX_DECODED_HEADER = 1000
"""Characters of a header value decoded from RFC 2047 (names and subjects are short)."""

_IDENTITY_ENCODINGS = frozenset({"", "7bit", "8bit", "binary"})
_NESTED = re.compile(rb"(?:multipart|message)/", re.IGNORECASE)
_FOLD = re.compile(r"\r?\n[ \t]*")
_ONE_ADDRESS = re.compile(
    r'\s*(?:((?:"[^"\\]{0,200}"|[^"<>,;:@()\\]{0,200}?))\s*<([^<>@\s,;:()"\\]{1,64}@[\w.-]{1,255})>'
    r'|([^<>@\s,;:()"\\]{1,64}@[\w.-]{1,255}))\s*$'
)
_MSG_ID = re.compile(r"<([^<>\s]{1,900})>")
_HTML_DROP = re.compile(r"<(style|script|head|title)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_BREAK = re.compile(r"<(?:br|/p|/div|/tr|/li|/h[1-6]|/blockquote|hr)\b[^>]{0,2000}>", re.I)
_HTML_TAG = re.compile(r"<[^>]{0,2000}>")
_BLANKS = re.compile(r"[ \t\xa0]+")
_MANY_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True, slots=True)
class Parsed:
    """A message as parsed, with its headers by lower-cased name (raw, unfolded values)."""

    message: Message
    headers: dict[str, list[str]]
    truncated: bool
    headers_only: bool
    data: bytes  # the bytes that were parsed

    def header(self, name: str) -> str:
        """The first value of a header, decoded to text; "" when absent."""
        values = self.headers.get(name)
        return decode_header(values[0]) if values else ""

    def raw(self, name: str) -> str:
        """The first value of a header, unfolded but not decoded (for ids and tokens)."""
        values = self.headers.get(name)
        return values[0].strip() if values else ""

    def has(self, name: str) -> bool:
        """Whether the header is present."""
        return name in self.headers


def parse(raw: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> Parsed:
    """Parse at most ``max_bytes`` of ``raw``; too deep nesting gets a headers-only parse."""
    truncated = len(raw) > max_bytes
    data = bytes(raw[:max_bytes])
    headers_only = len(_NESTED.findall(data)) > MAX_NESTING
    try:
        if headers_only:
            msg = BytesParser(policy=compat32).parsebytes(data, headersonly=True)
        else:
            msg = email.message_from_bytes(data)
    except (RecursionError, MemoryError, ValueError, LookupError, TypeError):  # pragma: no cover
        # The feed parser is defensive and records defects instead; this is the last fence.
        msg = BytesParser(policy=compat32).parsebytes(data, headersonly=True)
        headers_only = True
    return Parsed(msg, header_map(msg), truncated, headers_only, data)


def header_map(msg: Message) -> dict[str, list[str]]:
    """A message's headers by lower-cased name, values unfolded and 8-bit bytes as text."""
    found: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        text = value if isinstance(value, str) else str(value)
        text = text[:MAX_HEADER_CHARS]
        if "\n" in text:
            text = _FOLD.sub(" ", text)
        if not text.isascii():
            text = _undo_surrogates(text)
        found.setdefault(name.lower(), []).append(text)
    return found


def _undo_surrogates(text: str) -> str:
    # The parser keeps undecodable bytes as lone surrogates; most 8-bit headers are UTF-8.
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def decode_header(value: str) -> str:
    """Decode RFC 2047 encoded words; text that is not validly encoded is kept as is."""
    if "=?" not in value:
        return value.strip()
    value = value[:MAX_DECODED_HEADER]
    try:
        parts = email.header.decode_header(value)
        out: list[str] = []
        for chunk, charset in parts:
            if isinstance(chunk, bytes):
                out.append(_decode_bytes(chunk, charset))
            else:
                out.append(chunk)
        return "".join(out).strip()
    except (ValueError, LookupError, AssertionError, email.errors.HeaderParseError):
        return value.strip()


def _decode_bytes(data: bytes, charset: str | None) -> str:
    name = (charset or "utf-8").lower()
    if name in ("unknown-8bit", "x-unknown", "us-ascii", "ascii"):
        name = "utf-8"
    try:
        return data.decode(name, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def addresses(value: str) -> list[tuple[str, str]]:
    """(name, address) pairs from an address header; names decoded, junk skipped."""
    if not value:
        return []
    # Most headers hold one plain address; the stdlib's full RFC 5322 parser is slow.
    simple = _ONE_ADDRESS.match(value)
    if simple is not None:
        name, addr = simple.group(1) or "", simple.group(2) or simple.group(3)
        return [(decode_header(name.strip().strip('"').strip()), addr)]
    try:
        pairs = getaddresses([value])
    except (ValueError, IndexError, TypeError):  # pragma: no cover - defensive
        return []
    out: list[tuple[str, str]] = []
    for name, addr in pairs:
        addr = addr.strip().strip("<>")
        if "@" in addr and len(addr) <= 320:
            out.append((decode_header(name), addr))
    return out


def message_ids(value: str) -> list[str]:
    """Every ``<…>`` id in a header value, in order, without duplicates."""
    if not value:
        return []
    return list(dict.fromkeys(f"<{m}>" for m in _MSG_ID.findall(value)))


def first_message_id(value: str) -> str | None:
    """The first ``<…>`` id in a header value, or a bare token when there are no brackets."""
    ids = message_ids(value)
    if ids:
        return ids[0]
    token = value.strip()
    return f"<{token}>" if token and " " not in token and "@" in token else None


def message_date(value: str) -> datetime | None:
    """The Date header as an aware datetime, or None when it cannot be read."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        return None
    return parsed


Part = tuple[Message, str]
"""A part of a message and its lower-cased content type."""


def walk(msg: Message) -> list[Part]:
    """The parts of ``msg`` depth first with their content types, at most :data:`MAX_PARTS`.

    The walk does not enter attached messages (``message/rfc822``, ``message/*``):
    their text belongs to someone else. Each content type is read once here,
    because the standard library parses the header again on every call.
    """
    found: list[Part] = []
    stack: list[Message] = [msg]
    while stack and len(found) < MAX_PARTS:
        part = stack.pop()
        ctype = part.get_content_type()
        found.append((part, ctype))
        if ctype.startswith("message/"):
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend(p for p in reversed(payload) if isinstance(p, Message))
    return found


def _is_attachment(part: Message) -> bool:
    disposition = part.get("Content-Disposition")
    return isinstance(disposition, str) and disposition.lstrip().lower().startswith("attachment")


def part_text(part: Message, limit: int = MAX_TEXT_CHARS) -> str:
    """A leaf part's decoded text (transfer encoding and charset), cut at ``limit``."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return ""
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    if isinstance(payload, str) and payload.isascii() and encoding in _IDENTITY_ENCODINGS:
        # Nothing to decode: ASCII text in an identity transfer encoding is the text.
        text = payload[:limit]
        return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, LookupError, AssertionError):  # pragma: no cover - defensive
        data = None
    if not isinstance(data, bytes):
        return str(payload)[:limit] if isinstance(payload, str) else ""
    data = data[: limit * 4]
    charset = part.get_content_charset() or "utf-8"
    text = _decode_bytes(data, charset)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text[:limit]


def html_to_text(markup: str) -> str:
    """A rough plain-text rendering of HTML: line breaks kept, tags dropped, entities decoded."""
    text = _HTML_DROP.sub("", markup)
    text = _HTML_BREAK.sub("\n", text)
    text = _HTML_TAG.sub("", text)
    text = html.unescape(text)
    text = _BLANKS.sub(" ", text)
    lines = [line.strip() for line in text.split("\n")]
    return _MANY_LINES.sub("\n\n", "\n".join(lines)).strip()


# Where the quoted history of an HTML reply starts, by client: Gmail, Outlook (desktop
# and web), Apple Mail and Thunderbird blockquotes, Yahoo.
_HTML_QUOTE = re.compile(
    r'<div[^>]{0,200}class="?gmail_quote|<div[^>]{0,200}id="?(?:divRplyFwdMsg|appendonsend)'
    r'|<div[^>]{0,200}class="?(?:moz-cite-prefix|yahoo_quoted)|<blockquote'
    r"|<hr[^>]{0,200}>\s*<div[^>]{0,200}>\s*<font[^>]{0,200}>\s*<b>From:"
    r'|<div[^>]{0,300}style="border:none;\s*border-top:solid',
    re.IGNORECASE,
)


def body_text(msg: Message, *, headers_only: bool = False, parts: list[Part] | None = None) -> str:
    """The message's own text: its first text/plain part, else its first HTML part as text.

    Attachments and attached messages are skipped; an HTML body is cut where its
    quoted history starts before tags are dropped.
    """
    if headers_only:
        # Unparsed MIME is not text anyone wrote; a plain body still is.
        payload = msg.get_payload()
        if msg.get_content_maintype() != "text" or not isinstance(payload, str):
            return ""
        return payload[:MAX_TEXT_CHARS]
    html_part: Message | None = None
    for part, ctype in walk(msg) if parts is None else parts:
        if ctype.startswith(("multipart/", "message/")) or _is_attachment(part):
            continue
        if ctype == "text/plain":
            return part_text(part)
        if ctype == "text/html":
            if html_part is None:
                html_part = part
        elif part is msg:
            return ""  # a single part that is not text
    if html_part is None:
        return ""
    markup = part_text(html_part)
    cut = _HTML_QUOTE.search(markup)
    if cut is not None:
        markup = markup[: cut.start()]
    return html_to_text(markup)
