"""What IMAP says and how to read it: stages, errors, values, and pure parsers.

No I/O here. :mod:`mailfleet.transport.imap` drives aioimaplib and hands the
response lines it collects (``bytes`` for text, ``bytearray`` for literals) to
the parsers below; they are tested on their own with recorded lines.

Errors, one flat tree; each carries ``stage``, ``status`` (``NO``, ``BAD``,
``BYE`` or None for a transport fault) and ``text`` (the server's exact words)::

    ImapError
     ├── ImapConnectionError   (also ConnectionError) refused, reset, closed by server
     ├── ImapTimeoutError      (also TimeoutError)    no answer in time
     ├── ImapTlsError                                 handshake, certificate, TLS version
     ├── ImapAuthenticationError                      LOGIN / AUTHENTICATE refused
     └── ImapCommandError                             any other NO or BAD
"""

from __future__ import annotations

import base64
import enum
import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

SPECIAL_USE_FLAGS: Final = (
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
)
"""RFC 6154 folder roles, as LIST attributes."""


class ImapStage(enum.StrEnum):
    """Where in an IMAP session a reply arrived or a connection failed."""

    CONNECT = "connect"
    TLS = "tls"
    GREETING = "greeting"
    CAPABILITIES = "capabilities"
    STARTTLS = "starttls"
    TOKEN = "token"
    AUTH = "auth"
    LIST = "list"
    SELECT = "select"
    SEARCH = "search"
    FETCH = "fetch"
    STORE = "store"
    MOVE = "move"
    IDLE = "idle"
    LOGOUT = "logout"


# -- errors ------------------------------------------------------------------------------------


class ImapError(Exception):
    """An IMAP step failed; ``text`` is the server's exact reply text when there was one."""

    def __init__(
        self, stage: ImapStage, text: str, *, status: str | None = None, detail: str = ""
    ) -> None:
        super().__init__(f"{stage}: {status + ' ' if status else ''}{text}")
        self.stage = stage
        self.status = status
        self.text = text
        self.detail = detail

    @property
    def reply(self) -> str:
        """The reply as the server sent it after the tag (``NO AUTHENTICATE failed.``)."""
        return f"{self.status} {self.text}" if self.status else self.text


class ImapConnectionError(ImapError, ConnectionError):
    """The connection could not be made, or the server closed it."""


class ImapTimeoutError(ImapError, TimeoutError):
    """The server did not answer within the endpoint's timeout."""


class ImapTlsError(ImapError):
    """The TLS handshake failed: untrusted certificate, old TLS version, not TLS at all."""


class ImapAuthenticationError(ImapError):
    """LOGIN or AUTHENTICATE was refused (or could not be attempted safely)."""


class ImapCommandError(ImapError):
    """A command other than login was answered NO or BAD."""


# -- values ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsInfo:
    """The negotiated TLS version and cipher suite."""

    version: str
    cipher: str

    def __str__(self) -> str:
        return f"{self.version} {self.cipher}"


@dataclass(frozen=True, slots=True)
class Folder:
    """One LIST entry: the decoded name and its attributes (``\\Junk``, ``\\HasNoChildren``…)."""

    name: str
    delimiter: str | None
    flags: frozenset[str]

    @property
    def special_use(self) -> str | None:
        """The RFC 6154 role (``\\Sent``, ``\\Junk``, …) of the folder, if it has one."""
        lowered = {flag.lower() for flag in self.flags}
        for role in SPECIAL_USE_FLAGS:
            if role.lower() in lowered:
                return role
        return None


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """What SELECT (or EXAMINE) said about a folder: sync by UID within one UIDVALIDITY."""

    name: str
    uid_validity: int
    uid_next: int | None
    exists: int
    read_only: bool


@dataclass(frozen=True, slots=True)
class FetchedMessage:
    """One message fetched by UID: the raw RFC 5322 bytes and its flags."""

    uid: int
    raw: bytes = field(repr=False)
    flags: frozenset[str] = frozenset()
    internal_date: datetime | None = None


# -- codecs and parsers ---------------------------------------------------------------------


def quote(value: str) -> str:
    """An IMAP quoted string (mailbox names go through modified UTF-7 first)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_mailbox_name(name: str) -> str:
    """Modified UTF-7 (RFC 3501 §5.1.3), the form IMAP4rev1 carries folder names in."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            utf16 = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(utf16).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def decode_mailbox_name(name: str) -> str:
    """The inverse of :func:`encode_mailbox_name`; a malformed run is left as it was."""

    def decode(match: re.Match[str]) -> str:
        body = match.group(1)
        if not body:
            return "&"
        padded = body.replace(",", "/") + "=" * (-len(body) % 4)
        try:
            return base64.b64decode(padded).decode("utf-16-be")
        except (ValueError, UnicodeDecodeError):
            return match.group(0)

    return re.sub(r"&([A-Za-z0-9+,]*)-", decode, name)


def uid_set(uids: Iterable[int]) -> str:
    """A compact UID set (``1:3,7``) for UID FETCH, STORE and MOVE."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("an empty UID set")
    ranges: list[str] = []
    start = previous = ordered[0]
    for uid in [*ordered[1:], None]:
        if uid is not None and uid == previous + 1:
            previous = uid
            continue
        ranges.append(str(start) if start == previous else f"{start}:{previous}")
        if uid is not None:
            start = previous = uid
    return ",".join(ranges)


def header_criterion(name: str, value: str) -> tuple[str, str, str]:
    """``UID SEARCH`` criteria matching a header, e.g. the Message-ID of a sent message."""
    return ("HEADER", quote(name), quote(value))


_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?P<delim>NIL|"(?:[^"\\]|\\.)*") ?(?P<name>.*)$')
_FETCH_START = re.compile(rb"^\d+ FETCH \(")
_BODY_LITERAL = re.compile(rb"(?:BODY\[\]|RFC822) \{\d+\}$")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')


def _unquote(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def parse_list(lines: Sequence[bytes | bytearray]) -> list[Folder]:
    """Folders from the untagged LIST lines aioimaplib collects (names may be literals)."""
    folders: list[Folder] = []
    index = 0
    while index < len(lines):
        line = bytes(lines[index])
        index += 1
        match = _LIST_LINE.match(line)
        if match is None:
            continue
        raw_name = match.group("name")
        literal = re.fullmatch(rb"\{\d+\}", raw_name)
        if literal and index < len(lines):
            name = bytes(lines[index]).decode("utf-8", "replace")
            index += 1
        else:
            name = _unquote(raw_name)
        delimiter = match.group("delim")
        folders.append(
            Folder(
                name=decode_mailbox_name(name),
                delimiter=None if delimiter == b"NIL" else _unquote(delimiter),
                flags=frozenset(match.group("flags").decode("ascii", "replace").split()),
            )
        )
    return folders


def parse_select(name: str, lines: Sequence[bytes | bytearray]) -> FolderStatus:
    """UIDVALIDITY, UIDNEXT, EXISTS and access from a SELECT/EXAMINE response."""
    text = b"\n".join(bytes(line) for line in lines)
    validity = re.search(rb"\[UIDVALIDITY (\d+)\]", text)
    if validity is None:
        raise ImapCommandError(ImapStage.SELECT, "the server sent no UIDVALIDITY", status="OK")
    uid_next = re.search(rb"\[UIDNEXT (\d+)\]", text)
    exists = re.search(rb"^(\d+) EXISTS$", text, re.MULTILINE)
    return FolderStatus(
        name=name,
        uid_validity=int(validity.group(1)),
        uid_next=int(uid_next.group(1)) if uid_next else None,
        exists=int(exists.group(1)) if exists else 0,
        read_only=b"[READ-ONLY]" in bytes(lines[-1]) if lines else False,
    )


def parse_fetch(lines: Sequence[bytes | bytearray]) -> list[FetchedMessage]:
    """Messages from untagged FETCH responses; unsolicited flag updates are skipped."""
    groups: list[list[bytes | bytearray]] = []
    for line in lines:
        if isinstance(line, bytes) and _FETCH_START.match(line):
            groups.append([line])
        elif groups:
            groups[-1].append(line)
    messages: list[FetchedMessage] = []
    for group in groups:
        texts = [part for part in group if isinstance(part, bytes)]
        raw: bytes | None = None
        for before, after in itertools.pairwise(group):
            literal = isinstance(before, bytes) and isinstance(after, bytearray)
            if literal and _BODY_LITERAL.search(before):
                raw = bytes(after)
        joined = b" ".join(texts)
        uid = re.search(rb"\bUID (\d+)", joined)
        if raw is None or uid is None:
            continue
        flags = re.search(rb"\bFLAGS \(([^)]*)\)", joined)
        when = _INTERNALDATE.search(joined)
        messages.append(
            FetchedMessage(
                uid=int(uid.group(1)),
                raw=raw,
                flags=frozenset(flags.group(1).decode("ascii", "replace").split())
                if flags
                else frozenset(),
                internal_date=_internal_date(when.group(1)) if when else None,
            )
        )
    return messages


def _internal_date(value: bytes) -> datetime | None:
    try:
        return datetime.strptime(value.decode("ascii").strip(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None


def expand_uid_set(text: str) -> list[int]:
    uids: list[int] = []
    for part in text.split(","):
        start, _, end = part.partition(":")
        uids.extend(range(int(start), int(end or start) + 1))
    return uids


def challenge_detail(challenge: bytes | None) -> str:
    """The decoded error a server put in an XOAUTH2 challenge (Gmail's JSON), if any."""
    if not challenge:
        return ""
    try:
        decoded = base64.b64decode(challenge, validate=True).decode("utf-8")
        return json.dumps(json.loads(decoded), separators=(",", ":"))
    except (ValueError, UnicodeDecodeError):
        return challenge.decode("ascii", "replace")
