"""IMAP on aioimaplib: log in, list folders, select, search and fetch by UID — verified TLS only.

The transport speaks the protocol and reports exactly what happened; what to do
with the mail belongs to ``inbound`` and the engine. Rules kept here because they
are about the wire: TLS 1.2 is the floor, certificates are always verified (a
private CA file may be added, as for the sandbox), credentials never cross a
plaintext connection except to a loopback host, and every failure names its
stage and carries the server's words.

Two entry points:

``ImapClient(endpoint)``
    ``await connect()`` (TCP, TLS, greeting; STARTTLS when asked), then
    ``capabilities()``, ``login_xoauth2(user, token)`` / ``login_password(user,
    password)`` / ``login(user, tokens=…|password=…)``, ``list_folders()``,
    ``select(folder)``, ``uid_search(*criteria)``, ``uid_fetch(uids)``,
    ``uid_store(uids, flags)``, ``uid_move(uids, folder)``, ``idle(seconds)``, ``logout()``.
    ``async with ImapClient(endpoint) as client:`` connects and logs out.

``await check_imap_login(endpoint, username, *, tokens=None, password=None) -> ImapCheck``
    The one-shot check ``mailfleet doctor`` runs as its IMAP step. It never
    raises for a server or network fault; it returns every step it reached, in
    order, as :class:`ImapStep` ``(step, ok, reply, remedy)``. ``step`` runs
    ``connect``, ``tls``, ``greeting``, ``capabilities``, ``token`` (XOAUTH2 only),
    ``auth``, ``list``; a STARTTLS endpoint has ``connect``, ``greeting``,
    ``starttls``, ``tls`` first, a plain one no ``tls``. ``reply`` is the server's exact reply
    (``NO AUTHENTICATE failed.``) or what was observed (``TLSv1.3
    TLS_AES_256_GCM_SHA384``), and ``remedy`` says what to fix when ``ok`` is
    false. The steps stop at the first failure. This signature is stable.

Every failure is an :class:`ImapError` (tree in :mod:`mailfleet.transport.imap_wire`,
where the stages, values and pure parsers live; they are re-exported here).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import re
import ssl
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, cast

import aioimaplib

from mailfleet.transport.imap_wire import (
    FetchedMessage,
    Folder,
    FolderStatus,
    ImapAuthenticationError,
    ImapCommandError,
    ImapConnectionError,
    ImapError,
    ImapStage,
    ImapTimeoutError,
    ImapTlsError,
    TlsInfo,
    challenge_detail,
    encode_mailbox_name,
    expand_uid_set,
    header_criterion,
    parse_fetch,
    parse_list,
    parse_select,
    quote,
    uid_set,
)
from mailfleet.transport.oauth import (
    TokenError,
    TokenProvider,
    is_graph_audience,
    token_audience,
)
from mailfleet.transport.smtp import client_tls_context

__all__ = [
    "FetchedMessage",
    "Folder",
    "FolderStatus",
    "ImapAuthenticationError",
    "ImapCheck",
    "ImapClient",
    "ImapCommandError",
    "ImapConnectionError",
    "ImapEndpoint",
    "ImapError",
    "ImapStage",
    "ImapStep",
    "ImapTimeoutError",
    "ImapTlsError",
    "TlsInfo",
    "check_imap_login",
    "header_criterion",
]

SECURITY_MODES: Final = ("tls", "starttls", "plain")


@dataclass(frozen=True, slots=True)
class ImapEndpoint:
    """Where and how to reach an IMAP server; ``security`` is tls, starttls or plain."""

    host: str
    port: int = 993
    security: str = "tls"  # tls (implicit, 993), starttls (143) or plain (loopback only)
    ca_file: str | None = None
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(
                f"IMAP security must be one of {SECURITY_MODES}, not {self.security!r}"
            )


# -- the wire protocol ------------------------------------------------------------------------


class _Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    """aioimaplib's protocol, adjusted where it leaves a caller hanging or guessing.

    The greeting is recorded (not followed by an implicit CAPABILITY whose failure
    would be lost in a background task), a dropped connection resolves ``closed``,
    ``* BYE`` lines are kept, and SASL continuations are answered: with the
    initial response when SASL-IR is off, with an empty line after an error
    challenge (Gmail's base64 JSON), which otherwise leaves the command waiting.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop, None)
        self.greeting: asyncio.Future[bytes] = loop.create_future()
        self.closed: asyncio.Future[str] = loop.create_future()
        self.bye: str | None = None
        self.sasl_response: bytes | None = None
        self.sasl_challenge: bytes | None = None

    async def welcome(self, command: bytes) -> None:
        if not self.greeting.done():
            self.greeting.set_result(bytes(command))
        async with self.state_condition:
            if command.startswith(b"* PREAUTH"):
                self.state = aioimaplib.AUTH
            elif command.startswith(b"* OK"):
                self.state = aioimaplib.NONAUTH
            self.state_condition.notify_all()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.closed.done():
            reason = self.bye or (str(exc) if exc else "connection closed by the server")
            self.closed.set_result(reason)

    def _untagged_response(self, line: bytes) -> Any:
        if line.startswith(b"* BYE"):
            self.bye = line[2:].decode("utf-8", "replace")
        return super()._untagged_response(line)

    def _continuation(self, line: bytes) -> None:
        pending = self.pending_sync_command
        if pending is not None and pending.name == "AUTHENTICATE":
            answer, self.sasl_response = self.sasl_response, None
            if answer is None:
                self.sasl_challenge = line[1:].strip()
                answer = b""
            self.transport.write(answer + aioimaplib.CRLF)
            return
        super()._continuation(line)


def _reply_text(response: Any) -> str:
    lines = response.lines
    last = lines[-1] if lines else b""
    return bytes(last).decode("utf-8", "replace")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tls_failure(exc: BaseException) -> ImapTlsError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or str(exc)
        return ImapTlsError(ImapStage.TLS, f"certificate verification failed: {detail}")
    return ImapTlsError(ImapStage.TLS, f"TLS handshake failed: {exc or type(exc).__name__}")


# -- the client -------------------------------------------------------------------------------


class ImapClient:
    """One IMAP session: connect, log in, read folders; every failure is an :class:`ImapError`."""

    def __init__(self, endpoint: ImapEndpoint) -> None:
        self.endpoint = endpoint
        self.greeting: str | None = None
        """The greeting line after ``*`` (``OK The Microsoft Exchange IMAP4 service…``)."""
        self.tls: TlsInfo | None = None
        self.completed: list[tuple[ImapStage, str]] = []
        """Each step that succeeded and what was seen, in order (for diagnostics)."""
        self._protocol: _Protocol | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._capabilities: frozenset[str] | None = None

    async def __aenter__(self) -> ImapClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.logout()

    @property
    def is_connected(self) -> bool:
        """Whether a live connection is held."""
        return self._protocol is not None and not self._protocol.closed.done()

    # -- connection ---------------------------------------------------------------------

    async def connect(self) -> str:
        """Open TCP, TLS (implicit, or STARTTLS when the endpoint says so), read the greeting."""
        ep = self.endpoint
        loop = asyncio.get_running_loop()
        protocol = _Protocol(loop)
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(lambda: protocol, ep.host, ep.port), ep.timeout
            )
        except TimeoutError as exc:
            raise ImapTimeoutError(
                ImapStage.CONNECT, f"no connection to {ep.host}:{ep.port} within {ep.timeout:g}s"
            ) from exc
        except OSError as exc:
            raise ImapConnectionError(
                ImapStage.CONNECT, f"cannot connect to {ep.host}:{ep.port}: {exc}"
            ) from exc
        self._protocol, self._transport = protocol, transport
        peer = transport.get_extra_info("peername")
        self.completed.append((ImapStage.CONNECT, f"connected to {ep.host}:{ep.port} ({peer[0]})"))
        try:
            if ep.security == "tls":
                await self._start_tls()
            await self._read_greeting()
            if ep.security == "starttls":
                await self._starttls()
        except BaseException:
            self.close()
            raise
        assert self.greeting is not None
        return self.greeting

    async def _start_tls(self) -> None:
        assert self._protocol is not None and self._transport is not None
        ep = self.endpoint
        context = client_tls_context(ep.ca_file)
        loop = asyncio.get_running_loop()
        try:
            transport = await asyncio.wait_for(
                loop.start_tls(
                    cast(asyncio.WriteTransport, self._transport),
                    self._protocol,
                    context,
                    server_hostname=ep.host,
                ),
                ep.timeout,
            )
        except TimeoutError as exc:
            raise ImapTimeoutError(ImapStage.TLS, "no TLS handshake within the timeout") from exc
        except (ssl.SSLError, ssl.CertificateError, OSError, EOFError) as exc:
            raise _tls_failure(exc) from exc
        if transport is None:
            raise ImapTlsError(ImapStage.TLS, "TLS handshake failed: the connection closed")
        self._transport = transport
        self._protocol.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        version = ssl_object.version() if ssl_object is not None else None
        cipher = ssl_object.cipher() if ssl_object is not None else None
        self.tls = TlsInfo(version or "unknown", cipher[0] if cipher else "unknown")
        self.completed.append((ImapStage.TLS, str(self.tls)))

    async def _read_greeting(self) -> None:
        protocol = self._require_protocol()
        line = await self._wait(ImapStage.GREETING, asyncio.shield(protocol.greeting))
        text = line[2:].decode("utf-8", "replace") if line.startswith(b"* ") else line.decode()
        self.greeting = text
        if not (line.startswith(b"* OK") or line.startswith(b"* PREAUTH")):
            status, _, rest = text.partition(" ")
            raise ImapConnectionError(ImapStage.GREETING, rest, status=status)
        self.completed.append((ImapStage.GREETING, text))

    async def _starttls(self) -> None:
        capabilities = await self.capabilities()
        if "STARTTLS" not in capabilities:
            raise ImapTlsError(
                ImapStage.STARTTLS,
                f"{self.endpoint.host}:{self.endpoint.port} does not offer STARTTLS; "
                "refusing to log in over plaintext",
            )
        response = await self._command(ImapStage.STARTTLS, "STARTTLS")
        self.completed.append((ImapStage.STARTTLS, f"OK {_reply_text(response)}"))
        await self._start_tls()
        self._capabilities = None  # RFC 3501: forget what was said before TLS

    def _require_protocol(self) -> _Protocol:
        if self._protocol is None:
            raise ImapConnectionError(ImapStage.CONNECT, "not connected")
        return self._protocol

    async def _wait(self, stage: ImapStage, awaitable: Awaitable[Any]) -> Any:
        """Await a reply, failing fast when the connection drops or the timeout passes."""
        protocol = self._require_protocol()
        task = asyncio.ensure_future(awaitable)
        closed = protocol.closed
        done, _ = await asyncio.wait(
            {task, closed}, timeout=self.endpoint.timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if task in done:
            try:
                return task.result()
            except aioimaplib.AioImapException as exc:
                # aioimaplib refusing a command in this state (SEARCH before SELECT…).
                raise ImapCommandError(stage, str(exc) or type(exc).__name__) from exc
        task.cancel()
        self.close()
        if closed in done:
            reason = closed.result()
            status, _, rest = reason.partition(" ")
            if status == "BYE":
                raise ImapConnectionError(stage, rest, status="BYE")
            raise ImapConnectionError(stage, reason)
        raise ImapTimeoutError(stage, f"no reply within {self.endpoint.timeout:g}s")

    async def _command(
        self,
        stage: ImapStage,
        name: str,
        *args: str,
        prefix: str | None = None,
        scrub: str | None = None,
        error: type[ImapError] = ImapCommandError,
    ) -> Any:
        protocol = self._require_protocol()
        if name == "FETCH":
            command = aioimaplib.FetchCommand(protocol.new_tag(), *args, prefix=prefix)
        else:
            command = aioimaplib.Command(name, protocol.new_tag(), *args, prefix=prefix)
        response = await self._wait(stage, protocol.execute(command, scrub=scrub))
        if response.result != "OK":
            raise error(stage, _reply_text(response), status=response.result)
        return response

    # -- commands ------------------------------------------------------------------------

    async def capabilities(self) -> frozenset[str]:
        """The server's CAPABILITY list (cached until TLS or login changes it)."""
        if self._capabilities is None:
            response = await self._command(ImapStage.CAPABILITIES, "CAPABILITY")
            words = b" ".join(bytes(line) for line in response.lines[:-1]).decode().split()
            self._capabilities = frozenset(word.upper() for word in words)
        return self._capabilities

    def _refuse_plaintext(self) -> None:
        if self.tls is None and not _is_loopback(self.endpoint.host):
            raise ImapAuthenticationError(
                ImapStage.AUTH,
                f"refusing to send credentials to {self.endpoint.host} without TLS",
            )

    async def login_xoauth2(self, username: str, token: str) -> str:
        """AUTHENTICATE XOAUTH2 (with SASL-IR when offered); returns the server's OK text."""
        self._refuse_plaintext()
        protocol = self._require_protocol()
        capabilities = await self.capabilities()
        if "AUTH=XOAUTH2" not in capabilities:
            raise ImapAuthenticationError(
                ImapStage.AUTH, "the server does not offer AUTH=XOAUTH2 on this connection"
            )
        blob = base64.b64encode(f"user={username}\x01auth=Bearer {token}\x01\x01".encode())
        args: tuple[str, ...] = ("XOAUTH2",)
        protocol.sasl_challenge = None
        if "SASL-IR" in capabilities:
            args = ("XOAUTH2", blob.decode("ascii"))
        else:
            protocol.sasl_response = blob
        try:
            response = await self._command(
                ImapStage.AUTH,
                "AUTHENTICATE",
                *args,
                scrub=blob.decode("ascii"),
                error=ImapAuthenticationError,
            )
        except ImapAuthenticationError as exc:
            exc.detail = challenge_detail(protocol.sasl_challenge)
            raise
        finally:
            protocol.sasl_response = None
        return self._logged_in(response)

    async def login_password(self, username: str, password: str) -> str:
        """LOGIN with a password; returns the server's OK text."""
        self._refuse_plaintext()
        if "LOGINDISABLED" in await self.capabilities():
            raise ImapAuthenticationError(
                ImapStage.AUTH, "the server advertises LOGINDISABLED on this connection"
            )
        response = await self._command(
            ImapStage.AUTH,
            "LOGIN",
            quote(username),
            quote(password),
            scrub=password,
            error=ImapAuthenticationError,
        )
        return self._logged_in(response)

    async def login(
        self, username: str, *, tokens: TokenProvider | None = None, password: str | None = None
    ) -> str:
        """Log in with a token from ``tokens`` (XOAUTH2) or else with ``password``."""
        if tokens is not None:
            try:
                token = await tokens.access_token()
            except TokenError as exc:
                raise ImapAuthenticationError(ImapStage.TOKEN, str(exc)) from exc
            return await self.login_xoauth2(username, token.token)
        if password is not None:
            return await self.login_password(username, password)
        raise ValueError("give a token provider or a password")

    def _logged_in(self, response: Any) -> str:
        self._require_protocol().state = aioimaplib.AUTH
        self._capabilities = None  # servers may announce more once authenticated
        return f"OK {_reply_text(response)}"

    async def list_folders(self) -> list[Folder]:
        """Every folder with the attributes the server lists (``\\Sent``, ``\\Junk``, …)."""
        response = await self._command(ImapStage.LIST, "LIST", '""', '"*"')
        return parse_list(response.lines[:-1])

    async def select(self, folder: str, *, read_only: bool = False) -> FolderStatus:
        """SELECT (or EXAMINE when ``read_only``) a folder; returns UIDVALIDITY, UIDNEXT, EXISTS."""
        verb = "EXAMINE" if read_only else "SELECT"
        response = await self._command(ImapStage.SELECT, verb, quote(encode_mailbox_name(folder)))
        self._require_protocol().state = aioimaplib.SELECTED
        return parse_select(folder, response.lines)

    async def uid_search(self, *criteria: str) -> list[int]:
        """UIDs matching ``criteria`` (``"ALL"``, ``"UID", "42:*"``, :func:`header_criterion`)."""
        response = await self._command(
            ImapStage.SEARCH, "SEARCH", *(criteria or ("ALL",)), prefix="UID"
        )
        numbers = b" ".join(bytes(line) for line in response.lines[:-1]).split()
        return sorted(int(n) for n in numbers if n.isdigit())

    async def uid_fetch(self, uids: Iterable[int]) -> list[FetchedMessage]:
        """The raw messages with these UIDs (``BODY.PEEK[]``: fetching does not mark them read)."""
        response = await self._command(
            ImapStage.FETCH,
            "FETCH",
            uid_set(uids),
            "(UID FLAGS INTERNALDATE BODY.PEEK[])",
            prefix="UID",
        )
        return parse_fetch(response.lines[:-1])

    async def uid_store(
        self, uids: Iterable[int], flags: Iterable[str], *, add: bool = True
    ) -> None:
        """Add (or remove) flags such as ``\\Seen`` on these UIDs."""
        action = "+FLAGS.SILENT" if add else "-FLAGS.SILENT"
        await self._command(
            ImapStage.STORE,
            "STORE",
            uid_set(uids),
            action,
            "(" + " ".join(flags) + ")",
            prefix="UID",
        )

    async def uid_move(self, uids: Iterable[int], folder: str) -> dict[int, int]:
        """MOVE these UIDs to ``folder``; returns old UID → new UID when told (UIDPLUS)."""
        response = await self._command(
            ImapStage.MOVE,
            "MOVE",
            uid_set(uids),
            quote(encode_mailbox_name(folder)),
            prefix="UID",
        )
        text = b" ".join(bytes(line) for line in response.lines)
        copy_uid = re.search(rb"\[COPYUID \d+ ([\d:,]+) ([\d:,]+)\]", text)
        if copy_uid is None:
            return {}
        old, new = (expand_uid_set(g.decode()) for g in copy_uid.groups())
        return dict(zip(old, new, strict=False))

    async def idle(self, seconds: float, *, wake: asyncio.Event | None = None) -> list[str]:
        """IDLE (RFC 2177) on the selected folder until the server reports a change,
        ``seconds`` pass or ``wake`` is set; then DONE.

        Returns the untagged lines pushed meanwhile (``3 EXISTS``, ``2 EXPUNGE``…),
        empty when nothing happened. RFC 2177 asks to re-issue IDLE within 29 minutes.
        """
        protocol = self._require_protocol()
        if "IDLE" not in await self.capabilities():
            raise ImapCommandError(ImapStage.IDLE, "the server does not offer IDLE", status="NO")
        while not protocol.idle_queue.empty():
            protocol.idle_queue.get_nowait()
        command = aioimaplib.IdleCommand(protocol.new_tag(), protocol.idle_queue)
        running = asyncio.ensure_future(protocol.execute(command))
        started = asyncio.ensure_future(protocol.wait_for_idle_response())
        pushed: asyncio.Future[Any] | None = None
        woken: asyncio.Future[Any] | None = None
        try:
            done, _ = await asyncio.wait(
                {running, started, protocol.closed},
                timeout=self.endpoint.timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if running in done:
                response = running.result()
                raise ImapCommandError(
                    ImapStage.IDLE, _reply_text(response), status=response.result
                )
            if started not in done:
                return self._idle_lost(protocol, done)
            pushed = asyncio.ensure_future(protocol.idle_queue.get())
            waiters: set[asyncio.Future[Any]] = {pushed, running, protocol.closed}
            if wake is not None:
                woken = asyncio.ensure_future(wake.wait())
                waiters.add(woken)
            done, _ = await asyncio.wait(
                waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
            if protocol.closed in done:
                return self._idle_lost(protocol, done)
            lines: list[bytes] = list(pushed.result()) if pushed in done else []
            if not running.done():
                protocol.idle_done()
            response = await self._wait(ImapStage.IDLE, asyncio.shield(running))
        finally:
            for task in (running, started, pushed, woken):
                if task is not None and not task.done():
                    task.cancel()
        while not protocol.idle_queue.empty():
            lines.extend(protocol.idle_queue.get_nowait())
        if response.result != "OK":
            raise ImapCommandError(ImapStage.IDLE, _reply_text(response), status=response.result)
        return [bytes(line).decode("utf-8", "replace") for line in lines]

    def _idle_lost(self, protocol: _Protocol, done: set[asyncio.Future[Any]]) -> list[str]:
        self.close()
        if protocol.closed in done:
            reason = protocol.closed.result()
            status, _, rest = reason.partition(" ")
            if status == "BYE":
                raise ImapConnectionError(ImapStage.IDLE, rest, status="BYE")
            raise ImapConnectionError(ImapStage.IDLE, reason)
        raise ImapTimeoutError(ImapStage.IDLE, "the server did not start IDLE in time")

    async def logout(self) -> None:
        """Say LOGOUT if the connection is alive, then close it (never raises)."""
        protocol = self._protocol
        if protocol is not None and not protocol.closed.done():
            with contextlib.suppress(ImapError):
                await self._command(ImapStage.LOGOUT, "LOGOUT")
        self.close()

    def close(self) -> None:
        """Drop the connection without a goodbye; later commands fail at once."""
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
        protocol = self._protocol
        if protocol is not None and not protocol.closed.done():
            protocol.closed.set_result("connection closed by the client")


# -- the one-shot check -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImapStep:
    """One step of :func:`check_imap_login`: passed or not, what was seen, what to fix."""

    step: str
    ok: bool
    reply: str
    remedy: str = ""


@dataclass(slots=True)
class ImapCheck:
    """Every step :func:`check_imap_login` reached, in order, and what it learned."""

    endpoint: ImapEndpoint
    username: str
    steps: list[ImapStep] = field(default_factory=list)
    tls: TlsInfo | None = None
    capabilities: frozenset[str] = frozenset()
    folders: list[Folder] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the login and the folder list worked."""
        return bool(self.steps) and all(step.ok for step in self.steps)

    @property
    def failed(self) -> ImapStep | None:
        """The step that failed, if one did."""
        return next((step for step in self.steps if not step.ok), None)


_MICROSOFT_XOAUTH2 = (
    "Microsoft answers every OAuth problem with 'AUTHENTICATE failed.'; check in order: "
    "(1) the token's audience is https://outlook.office365.com (app-only, scope "
    "https://outlook.office365.com/.default) or https://outlook.office.com (delegated), "
    "not Graph; (2) delegated: the IMAP.AccessAsUser.All scope was consented by this "
    "very account; app-only: the app has IMAP.AccessAsApp with admin consent, its service "
    "principal is registered in Exchange (New-ServicePrincipal with the Enterprise "
    "Application object id) and `Add-MailboxPermission -Identity <mailbox> -User "
    "<service principal id> -AccessRights FullAccess` was run for this mailbox; "
    "(3) IMAP is enabled for the mailbox: `Set-CASMailbox -Identity <mailbox> "
    "-ImapEnabled $true`; (4) the user name is the address the token was granted for."
)
_GOOGLE_XOAUTH2 = (
    "Google: the token needs the scope https://mail.google.com/, IMAP must be enabled "
    "for the user (Gmail settings, or the Workspace admin console), and a refresh "
    "token dies when the user changes the password: reconnect the mailbox."
)
_PASSWORD = (
    "Check the user name and password. Microsoft 365 no longer accepts passwords over "
    "IMAP (basic auth is retired): reconnect the mailbox with OAuth. Google needs an app "
    "password when 2-step verification is on. IMAP must be enabled for the mailbox "
    "(Microsoft: `Set-CASMailbox -Identity <mailbox> -ImapEnabled $true`)."
)


def _auth_remedy(endpoint: ImapEndpoint, username: str, oauth: bool) -> str:
    host = endpoint.host.lower()
    if not oauth:
        remedy = _PASSWORD
    elif "gmail" in host or "google" in host:
        remedy = _GOOGLE_XOAUTH2
    else:
        remedy = _MICROSOFT_XOAUTH2
    return remedy.replace("<mailbox>", username)


def _failure_remedy(error: ImapError, endpoint: ImapEndpoint) -> str:
    where = f"{endpoint.host}:{endpoint.port}"
    if error.stage is ImapStage.CONNECT:
        return (
            f"Check the host and port ({where}); Microsoft 365 is outlook.office365.com:993 "
            "and Google imap.gmail.com:993, both implicit TLS. A firewall may block the port."
        )
    if error.stage in (ImapStage.TLS, ImapStage.STARTTLS):
        if "certificate verification failed" in error.text:
            return (
                "The server's certificate could not be verified (unknown issuer, expired, or "
                "another host name). For a private CA, as the sandbox's, give its CA file "
                "(ca_file); never turn verification off."
            )
        if "STARTTLS" in error.text:
            return "Use security 'tls' on port 993, or a server that offers STARTTLS."
        return (
            "The TLS handshake failed: the server may need TLS 1.2 or newer than offered, "
            "or the port speaks another mode (993 is implicit TLS, 143 is STARTTLS)."
        )
    if error.stage is ImapStage.GREETING:
        return f"{where} did not greet like an IMAP server; check the host, port and security."
    if isinstance(error, ImapTimeoutError):
        return f"{where} stopped answering; retry, and check the network path if it persists."
    return "The server closed or refused the session; retry, then check the mailbox's state."


async def check_imap_login(
    endpoint: ImapEndpoint,
    username: str,
    *,
    tokens: TokenProvider | None = None,
    password: str | None = None,
) -> ImapCheck:
    """Connect, secure, greet, list capabilities, log in and list folders, step by step.

    Uses ``tokens`` (XOAUTH2) when given, else ``password``. Never raises for a
    server or network fault: each step reached is in ``ImapCheck.steps`` with the
    server's exact reply and, on the failing one, the remedy. Logs out at the end.
    """
    check = ImapCheck(endpoint, username)
    client = ImapClient(endpoint)
    oauth = tokens is not None

    def passed(step: ImapStage, reply: str) -> None:
        check.steps.append(ImapStep(str(step), True, reply))

    def fail(step: ImapStage, reply: str, remedy: str) -> ImapCheck:
        check.steps.append(ImapStep(str(step), False, reply, remedy))
        return check

    try:
        try:
            await client.connect()
        except ImapError as exc:
            for stage, seen in client.completed:
                passed(stage, seen)
            return fail(exc.stage, exc.reply, _failure_remedy(exc, endpoint))
        for stage, seen in client.completed:
            passed(stage, seen)
        check.tls = client.tls
        try:
            check.capabilities = await client.capabilities()
        except ImapError as exc:
            return fail(ImapStage.CAPABILITIES, exc.reply, _failure_remedy(exc, endpoint))
        passed(ImapStage.CAPABILITIES, " ".join(sorted(check.capabilities)))

        if tokens is not None:
            try:
                token = await tokens.access_token()
            except TokenError as exc:
                return fail(
                    ImapStage.TOKEN,
                    str(exc),
                    "The identity provider refused a token: check the client id and secret "
                    "(or reconnect the mailbox) and the admin consent for IMAP.",
                )
            audience = token_audience(token.token)
            if is_graph_audience(audience):
                return fail(
                    ImapStage.TOKEN,
                    f"token audience is {audience}",
                    "This is a Microsoft Graph token; IMAP needs one for "
                    "https://outlook.office365.com/.default (app-only) or "
                    "https://outlook.office.com/IMAP.AccessAsUser.All (delegated).",
                )
            passed(
                ImapStage.TOKEN,
                f"access token acquired, audience {audience or 'opaque'}, "
                f"expires {token.expires_at.isoformat()}",
            )
        elif password is None:
            return fail(ImapStage.AUTH, "no token provider and no password", _PASSWORD)

        try:
            if tokens is not None:
                reply = await client.login_xoauth2(username, token.token)
            else:
                assert password is not None
                reply = await client.login_password(username, password)
        except ImapAuthenticationError as exc:
            reply = exc.reply + (f" ({exc.detail})" if exc.detail else "")
            return fail(ImapStage.AUTH, reply, _auth_remedy(endpoint, username, oauth))
        except ImapError as exc:
            return fail(ImapStage.AUTH, exc.reply, _failure_remedy(exc, endpoint))
        passed(ImapStage.AUTH, reply)

        try:
            check.folders = await client.list_folders()
        except ImapError as exc:
            return fail(
                ImapStage.LIST,
                exc.reply,
                "Logged in but the folders cannot be listed: check the account's "
                "permissions on the mailbox (FullAccess for an app).",
            )
        listing = ", ".join(
            f"{f.name} ({f.special_use})" if f.special_use else f.name for f in check.folders
        )
        passed(ImapStage.LIST, listing or "(no folders)")
        return check
    finally:
        await client.logout()
