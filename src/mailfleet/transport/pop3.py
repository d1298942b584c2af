"""POP3 on :mod:`poplib` in a worker thread: log in, list by UIDL, read — verified TLS only.

For mailboxes that offer no IMAP. The rules are the IMAP client's: TLS 1.2 is the
floor, certificates are always verified (a private CA file may be added),
credentials never cross a plaintext connection except to a loopback host, and
every failure names its stage and carries the server's words. There is no
``DELE``: mailfleet never deletes a user's mail, so the caller remembers the
UIDLs it has read instead.

``Pop3Client(endpoint)``
    ``await connect()``, ``capabilities()``, ``login_xoauth2(user, token)`` /
    ``login_password(user, password)`` / ``login(user, tokens=…|password=…)``,
    ``uidl()``, ``sizes()``, ``top(number, lines)``, ``retr(number)``, ``quit()``.
    ``async with Pop3Client(endpoint) as client:`` connects and quits.

Errors, one flat tree like IMAP's; each carries ``stage`` and ``text`` (the
server's reply when there was one)::

    Pop3Error
     ├── Pop3ConnectionError   (also ConnectionError) refused, reset, closed by server
     ├── Pop3TimeoutError      (also TimeoutError)    no answer in time
     ├── Pop3TlsError                                 handshake, certificate, TLS version
     ├── Pop3AuthenticationError                      USER/PASS or AUTH refused
     └── Pop3CommandError                             any other -ERR
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import ipaddress
import poplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, TypeVar

from mailfleet.transport.oauth import TokenError, TokenProvider
from mailfleet.transport.smtp import client_tls_context

__all__ = [
    "MAX_LINE",
    "Pop3AuthenticationError",
    "Pop3Client",
    "Pop3CommandError",
    "Pop3ConnectionError",
    "Pop3Endpoint",
    "Pop3Error",
    "Pop3Stage",
    "Pop3TimeoutError",
    "Pop3TlsError",
]

SECURITY_MODES: Final = ("tls", "starttls", "plain")
MAX_LINE: Final = 1 << 20
"""Longest line read; poplib's own 2,048 bytes refuses ordinary HTML mail."""

T = TypeVar("T")


class Pop3Stage(enum.StrEnum):
    """Where in a POP3 session a reply arrived or a connection failed."""

    CONNECT = "connect"
    TLS = "tls"
    GREETING = "greeting"
    CAPABILITIES = "capabilities"
    STARTTLS = "starttls"
    TOKEN = "token"
    AUTH = "auth"
    UIDL = "uidl"
    LIST = "list"
    TOP = "top"
    RETR = "retr"
    QUIT = "quit"


class Pop3Error(Exception):
    """A POP3 step failed; ``text`` is the server's reply when there was one."""

    def __init__(self, stage: Pop3Stage, text: str, *, detail: str = "") -> None:
        super().__init__(f"{stage}: {text}")
        self.stage = stage
        self.text = text
        self.detail = detail


class Pop3ConnectionError(Pop3Error, ConnectionError):
    """The connection could not be made, or the server closed it."""


class Pop3TimeoutError(Pop3Error, TimeoutError):
    """The server did not answer within the endpoint's timeout."""


class Pop3TlsError(Pop3Error):
    """The TLS handshake failed: untrusted certificate, old TLS version, not TLS at all."""


class Pop3AuthenticationError(Pop3Error):
    """USER/PASS or AUTH XOAUTH2 was refused (or could not be attempted safely)."""


class Pop3CommandError(Pop3Error):
    """A command other than login was answered ``-ERR``."""


@dataclass(frozen=True, slots=True)
class Pop3Endpoint:
    """Where and how to reach a POP3 server; ``security`` is tls (995), starttls or plain."""

    host: str
    port: int = 995
    security: str = "tls"
    ca_file: str | None = None
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(
                f"POP3 security must be one of {SECURITY_MODES}, not {self.security!r}"
            )


class _Reader:
    """poplib's line reading with a longer line limit (the rest of poplib is kept)."""

    def _getline(self) -> tuple[bytes, int]:
        line: bytes = getattr(self, "file").readline(MAX_LINE + 1)  # noqa: B009 - set by poplib
        if len(line) > MAX_LINE:
            raise poplib.error_proto("line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        octets = len(line)
        if line[-2:] == b"\r\n":
            return line[:-2], octets
        if line[:1] == b"\r":
            return line[1:-1], octets
        return line[:-1], octets


class _Plain(_Reader, poplib.POP3):
    pass


class _Tls(_Reader, poplib.POP3_SSL):
    pass


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _error_text(exc: poplib.error_proto) -> str:
    return _text(exc.args[0]) if exc.args else str(exc)


class Pop3Client:
    """One POP3 session; each call runs poplib in a worker thread and never blocks the loop."""

    def __init__(self, endpoint: Pop3Endpoint) -> None:
        self.endpoint = endpoint
        self.greeting: str | None = None
        self.tls_version: str | None = None
        self._pop: poplib.POP3 | None = None
        self._lock = asyncio.Lock()
        self._capabilities: frozenset[str] | None = None

    async def __aenter__(self) -> Pop3Client:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.quit()

    @property
    def is_connected(self) -> bool:
        """Whether a connection is held."""
        return self._pop is not None

    async def _run(self, stage: Pop3Stage, call: Callable[[], T]) -> T:
        async with self._lock:
            try:
                return await asyncio.to_thread(call)
            except Pop3Error:
                raise
            except poplib.error_proto as exc:
                text = _error_text(exc)
                if text.startswith("-ERR EOF") or text == "line too long":
                    self._drop()
                    raise Pop3ConnectionError(stage, f"connection lost: {text}") from exc
                raise Pop3CommandError(stage, text) from exc
            except TimeoutError as exc:
                self._drop()
                raise Pop3TimeoutError(
                    stage, f"no reply within {self.endpoint.timeout:g}s"
                ) from exc
            except ssl.SSLError as exc:
                self._drop()
                if isinstance(exc, ssl.SSLCertVerificationError):
                    detail = exc.verify_message or str(exc)
                    raise Pop3TlsError(
                        Pop3Stage.TLS, f"certificate verification failed: {detail}"
                    ) from exc
                raise Pop3TlsError(Pop3Stage.TLS, f"TLS failed: {exc}") from exc
            except OSError as exc:
                self._drop()
                raise Pop3ConnectionError(stage, str(exc) or type(exc).__name__) from exc

    def _require(self) -> poplib.POP3:
        if self._pop is None:
            raise Pop3ConnectionError(Pop3Stage.CONNECT, "not connected")
        return self._pop

    def _drop(self) -> None:
        pop, self._pop = self._pop, None
        if pop is not None:
            with contextlib.suppress(OSError):
                pop.close()

    # -- connection -------------------------------------------------------------------------

    async def connect(self) -> str:
        """Open TCP and TLS (implicit, or STLS when the endpoint says so), read the greeting."""
        ep = self.endpoint

        def open_session() -> poplib.POP3:
            context = client_tls_context(ep.ca_file)
            try:
                if ep.security == "tls":
                    return _Tls(ep.host, ep.port, timeout=ep.timeout, context=context)
                pop = _Plain(ep.host, ep.port, timeout=ep.timeout)
            except ssl.SSLError:
                raise
            except (ConnectionError, socket.gaierror) as exc:
                raise Pop3ConnectionError(
                    Pop3Stage.CONNECT, f"cannot connect to {ep.host}:{ep.port}: {exc}"
                ) from exc
            if ep.security == "starttls":
                try:
                    pop.stls(context)
                except poplib.error_proto as exc:
                    pop.close()
                    raise Pop3TlsError(
                        Pop3Stage.STARTTLS,
                        f"{ep.host}:{ep.port} refused STLS ({_error_text(exc)}); "
                        "refusing to log in over plaintext",
                    ) from exc
            return pop

        pop = await self._run(Pop3Stage.CONNECT, open_session)
        self._pop = pop
        welcome = _text(pop.getwelcome())
        self.greeting = welcome
        sock = pop.sock
        if isinstance(sock, ssl.SSLSocket):
            self.tls_version = sock.version()
        return welcome

    # -- commands ---------------------------------------------------------------------------

    async def capabilities(self) -> frozenset[str]:
        """The CAPA list (``UIDL``, ``SASL XOAUTH2 PLAIN``, …); empty when CAPA is unknown."""
        if self._capabilities is None:
            pop = self._require()

            def capa() -> frozenset[str]:
                try:
                    found = pop.capa()
                except poplib.error_proto:
                    return frozenset()
                words: set[str] = set()
                for name, args in found.items():
                    words.add(name.upper())
                    if name.upper() == "SASL":
                        words.update(f"SASL={arg.upper()}" for arg in args)
                return frozenset(words)

            self._capabilities = await self._run(Pop3Stage.CAPABILITIES, capa)
        return self._capabilities

    def _refuse_plaintext(self) -> None:
        if self.tls_version is None and not _is_loopback(self.endpoint.host):
            raise Pop3AuthenticationError(
                Pop3Stage.AUTH, f"refusing to send credentials to {self.endpoint.host} without TLS"
            )

    async def login_xoauth2(self, username: str, token: str) -> str:
        """``AUTH XOAUTH2``; on an error challenge answers an empty line, as servers expect."""
        self._refuse_plaintext()
        pop = self._require()
        blob = base64.b64encode(f"user={username}\x01auth=Bearer {token}\x01\x01".encode())

        def authenticate() -> str:
            pop._putcmd("AUTH XOAUTH2")  # type: ignore[attr-defined]
            first: bytes = pop._getline()[0]  # type: ignore[attr-defined]
            if not first.startswith(b"+") or first.startswith(b"+OK"):
                raise Pop3AuthenticationError(Pop3Stage.AUTH, _text(first))
            pop._putline(blob)  # type: ignore[attr-defined]
            reply: bytes = pop._getline()[0]  # type: ignore[attr-defined]
            if reply.startswith(b"+OK"):
                return _text(reply)
            detail = ""
            if reply.startswith(b"+"):
                detail = _challenge(reply[1:].strip())
                pop._putline(b"")  # type: ignore[attr-defined]
                reply = pop._getline()[0]  # type: ignore[attr-defined]
            raise Pop3AuthenticationError(Pop3Stage.AUTH, _text(reply), detail=detail)

        reply = await self._run(Pop3Stage.AUTH, authenticate)
        self._capabilities = None
        return reply

    async def login_password(self, username: str, password: str) -> str:
        """``USER`` and ``PASS``."""
        self._refuse_plaintext()
        pop = self._require()

        def user_pass() -> str:
            try:
                pop.user(username)
                return _text(pop.pass_(password))
            except poplib.error_proto as exc:
                raise Pop3AuthenticationError(Pop3Stage.AUTH, _error_text(exc)) from exc

        reply = await self._run(Pop3Stage.AUTH, user_pass)
        self._capabilities = None
        return reply

    async def login(
        self, username: str, *, tokens: TokenProvider | None = None, password: str | None = None
    ) -> str:
        """Log in with a token from ``tokens`` (XOAUTH2) or else with ``password``."""
        if tokens is not None:
            try:
                token = await tokens.access_token()
            except TokenError as exc:
                raise Pop3AuthenticationError(Pop3Stage.TOKEN, str(exc)) from exc
            return await self.login_xoauth2(username, token.token)
        if password is not None:
            return await self.login_password(username, password)
        raise ValueError("give a token provider or a password")

    async def uidl(self) -> list[tuple[int, str]]:
        """``(message number, UIDL)`` of every message in the maildrop, in order."""
        pop = self._require()

        def listing() -> list[tuple[int, str]]:
            _, lines, _ = pop.uidl()
            pairs: list[tuple[int, str]] = []
            for line in lines:
                number, _, uid = _text(line).strip().partition(" ")
                if number.isdigit() and uid:
                    pairs.append((int(number), uid.strip()))
            return pairs

        return await self._run(Pop3Stage.UIDL, listing)

    async def sizes(self) -> dict[int, int]:
        """Message number → size in octets (``LIST``)."""
        pop = self._require()

        def listing() -> dict[int, int]:
            _, lines, _ = pop.list()
            found: dict[int, int] = {}
            for line in lines:
                number, _, size = _text(line).strip().partition(" ")
                if number.isdigit() and size.strip().isdigit():
                    found[int(number)] = int(size)
            return found

        return await self._run(Pop3Stage.LIST, listing)

    async def top(self, number: int, lines: int = 0) -> bytes:
        """The headers and the first ``lines`` body lines of message ``number``."""
        pop = self._require()

        def read() -> bytes:
            _, body, _ = pop.top(number, lines)
            return b"\r\n".join(body) + b"\r\n"

        return await self._run(Pop3Stage.TOP, read)

    async def retr(self, number: int) -> bytes:
        """The whole message ``number`` (byte-stuffing removed, CRLF line ends)."""
        pop = self._require()

        def read() -> bytes:
            _, body, _ = pop.retr(number)
            return b"\r\n".join(body) + b"\r\n"

        return await self._run(Pop3Stage.RETR, read)

    async def quit(self) -> None:
        """Say QUIT (nothing was marked deleted, so nothing goes), then close; never raises."""
        pop = self._pop
        if pop is None:
            return
        try:
            with contextlib.suppress(Pop3Error):
                await self._run(Pop3Stage.QUIT, pop.quit)
        finally:
            self._drop()


def _challenge(data: bytes) -> str:
    try:
        return base64.b64decode(data, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return data.decode("ascii", "replace")
