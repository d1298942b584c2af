"""SMTP submission that behaves like Microsoft 365 on its happy path, built on aiosmtpd.

STARTTLS comes first (TLS 1.2 or newer), ``AUTH LOGIN XOAUTH2`` is offered only
after it, the envelope sender must be the authenticated mailbox, and accepted mail
is handed to a ``deliver`` callback. Each step asks the mailbox's
:class:`~mailfleet.sandbox.behaviour.MailboxBehaviour`, the seam for injected faults.

The server runs on the caller's event loop (``loop.create_server``), not in
aiosmtpd's thread-based Controller, so it shares the loop and the clock with the
engine under test.
"""

from __future__ import annotations

import asyncio
import binascii
import collections
import json
import logging
import secrets
import ssl
import warnings
from base64 import b64decode
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import AnyStr

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, TLSSetupException

from mailfleet.clock import Clock
from mailfleet.sandbox.behaviour import MailboxBehaviour, Submission
from mailfleet.sandbox.directory import Directory, normalize_address
from mailfleet.sandbox.headers import summarize_headers
from mailfleet.sandbox.replies import (
    AUTH_UNSUCCESSFUL,
    BANNER_TEXT,
    CLOSING,
    NOOP_OK,
    NOT_AUTHENTICATED,
    READY_FOR_TLS,
    RECIPIENT_OK,
    RESET_OK,
    SEND_AS_DENIED,
    SEND_HELLO_FIRST,
    SENDER_OK,
    STARTTLS_REQUIRED,
    TEMPORARY_ERROR,
    UNRECOGNIZED_AUTH,
    queued,
)
from mailfleet.sandbox.tokens import TokenService

log = logging.getLogger(__name__)

MAX_MESSAGE_SIZE = 35_882_577
"""The SIZE Exchange Online advertises."""

MAX_LINE = 16_384
"""Longest command line read: real XOAUTH2 initial responses run to several kilobytes."""

XOAUTH2_FAILURE_CHALLENGE = json.dumps(
    {"status": "401", "schemes": "bearer", "scope": "https://outlook.office.com/SMTP.Send"},
    separators=(",", ":"),
)

# aiosmtpd writes these replies from inside its command loop, where no hook reaches;
# they are swapped for Microsoft's wording on the way out.
_REWRITES: dict[str, str] = {
    "220 Ready to start TLS": str(READY_FOR_TLS),
    "530 Must issue a STARTTLS command first": str(STARTTLS_REQUIRED),
    "504 5.5.4 Unrecognized authentication type": str(UNRECOGNIZED_AUTH),
    "503 Error: send EHLO first": str(SEND_HELLO_FIRST),
    "503 Error: send HELO first": str(SEND_HELLO_FIRST),
}

Deliver = Callable[[Submission, datetime], None]
"""Called with each accepted message and the time it was accepted."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who an SMTP session authenticated as, and how."""

    address: str
    tenant: str
    mechanism: str


class _LoginDataWarningFilter(logging.Filter):
    # aiosmtpd 1.4 logs a deprecation warning on every successful AUTH because its own
    # smtp_AUTH still sets Session.login_data; it says nothing about our code.
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Session.login_data is deprecated")


def _quiet_aiosmtpd() -> None:
    logger = logging.getLogger("mail.log")
    if not any(isinstance(f, _LoginDataWarningFilter) for f in logger.filters):
        logger.addFilter(_LoginDataWarningFilter())


def _parse_xoauth2(blob: bytes) -> tuple[str, str] | None:
    """``user=<addr>^Aauth=Bearer <token>^A^A`` → (address, token), or None if malformed."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        return None
    user = token = None
    for part in text.split("\x01"):
        key, _, value = part.partition("=")
        if key == "user":
            user = value
        elif key == "auth" and value[:7].lower() == "bearer ":
            token = value[7:].strip()
    if not user or not token:
        return None
    return normalize_address(user), token


class _Handler:
    """aiosmtpd hooks: Microsoft's replies, the sender check and the behaviour hooks."""

    def __init__(self, server: SubmissionServer) -> None:
        self._server = server

    async def handle_EHLO(
        self,
        smtp: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        # With an EHLO hook present aiosmtpd leaves recording the client's name to it;
        # without this every later command gets "503 send HELO first".
        session.host_name = hostname
        peer = session.peer[0] if isinstance(session.peer, tuple) else session.peer
        responses[0] = f"250-{self._server.hostname} Hello [{peer}]"
        return responses

    async def handle_MAIL(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        principal = _principal(session)
        if normalize_address(address) != principal.address:
            return str(SEND_AS_DENIED)
        reply = await self._server.behaviour(principal.address).on_mail_from(
            principal.address, self._server.clock.now()
        )
        if reply is not None:
            return str(reply)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return str(SENDER_OK)

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        principal = _principal(session)
        reply = await self._server.behaviour(principal.address).on_rcpt_to(
            principal.address, normalize_address(address), self._server.clock.now()
        )
        if reply is not None:
            return str(reply)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return str(RECIPIENT_OK)

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        principal = _principal(session)
        raw = envelope.original_content or b""
        message_id = summarize_headers(raw).message_id
        if message_id is None:
            # Exchange stamps a Message-ID on mail that arrives without one.
            message_id = f"<{secrets.token_hex(16)}@{self._server.hostname}>"
            raw = f"Message-ID: {message_id}\r\n".encode("ascii") + raw
        submission = Submission(
            sender=principal.address,
            recipients=tuple(normalize_address(r) for r in envelope.rcpt_tos),
            raw=raw,
            message_id=message_id,
        )
        now = self._server.clock.now()
        reply = await self._server.behaviour(principal.address).on_data(
            principal.address, submission, now
        )
        if reply is not None:
            return str(reply)
        self._server.deliver(submission, now)
        return str(queued(message_id, self._server.hostname))

    async def handle_RSET(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        return str(RESET_OK)

    async def handle_NOOP(self, smtp: SMTP, session: Session, envelope: Envelope, arg: str) -> str:
        return str(NOOP_OK)

    async def handle_QUIT(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        return str(CLOSING)

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):
            # A refused handshake (TLS 1.0/1.1, untrusted CA) is the client's problem, not ours.
            log.info("sandbox SMTP: TLS handshake failed: %r", error.__cause__)
            self._server.tls_failures.append(str(error.__cause__))
        else:
            log.exception("sandbox SMTP: error while handling a command")
        return str(TEMPORARY_ERROR)


def _principal(session: Session) -> Principal:
    # auth_required=True guarantees MAIL/RCPT/DATA only run after our AUTH succeeded.
    principal = session.auth_data
    assert isinstance(principal, Principal), "command ran without authentication"
    return principal


class _SandboxSMTP(SMTP):
    """One submission session; aiosmtpd creates one protocol object per connection."""

    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"
    # aiosmtpd sizes its StreamReader by this (1001 by default), so a longer line, such as
    # "AUTH XOAUTH2 <3 KB of base64>", would be refused "500 Command line too long". It
    # also bounds DATA lines, which the sandbox has no reason to police more strictly.
    line_length_limit = MAX_LINE

    def __init__(self, server: SubmissionServer) -> None:
        self._owner = server
        self._disconnect_reported = False
        super().__init__(
            server.handler,
            hostname=server.hostname,
            ident=BANNER_TEXT,
            # Benchmark/test-only plaintext listener: no STARTTLS, AUTH in the clear.
            tls_context=None if server.plaintext else server.tls_context,
            require_starttls=not server.plaintext,
            auth_required=True,
            auth_require_tls=not server.plaintext,
            auth_exclude_mechanism=["PLAIN"],
            authenticator=self._check_password,
            data_size_limit=MAX_MESSAGE_SIZE,
            loop=asyncio.get_running_loop(),
        )
        # aiosmtpd keeps command_size_limits in a class-level dict that every new session
        # clears and every EHLO grows; a per-session dict keeps sessions independent.
        self.command_size_limits = collections.defaultdict(
            lambda: SMTP.command_size_limit, {"AUTH": MAX_LINE}
        )

    # -- replies aiosmtpd words differently from Microsoft ------------------------------

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            await super().push(_REWRITES.get(status, status))
        else:
            await super().push(status)

    async def check_auth_needed(self, caller_method: str) -> bool:
        assert self.session is not None
        if not self.session.authenticated:
            await self.push(str(NOT_AUTHENTICATED))
            return True
        return False

    # -- authentication -----------------------------------------------------------------

    def _check_password(
        self, smtp: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        refused = AuthResult(success=False, handled=False, message=str(AUTH_UNSUCCESSFUL))
        if not isinstance(data, LoginPassword):
            return refused
        try:
            login = data.login.decode("utf-8")
            password = data.password.decode("utf-8")
        except UnicodeDecodeError:
            return refused
        mailbox = self._owner.directory.mailbox(login)
        if mailbox is None or mailbox.password is None:
            return refused
        if not secrets.compare_digest(mailbox.password.encode(), password.encode()):
            return refused
        return AuthResult(success=True, auth_data=mailbox.address)

    async def auth_LOGIN(self, smtp: SMTP, args: list[str]) -> AuthResult:
        result = await super().auth_LOGIN(smtp, args)
        if not result.success:
            return result
        return await self._admit(str(result.auth_data), "LOGIN")

    async def auth_XOAUTH2(self, smtp: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            response = await self.challenge_auth("", encode_to_b64=False)
            if not isinstance(response, bytes):
                return AuthResult(success=False, handled=True)  # "*" or bad base64, answered
            blob = response
        else:
            try:
                blob = b64decode(args[1], validate=True)
            except binascii.Error:
                await self.push("501 5.5.2 Cannot decode base64")
                return AuthResult(success=False, handled=True)
        credentials = _parse_xoauth2(blob)
        if credentials is not None:
            address, token = credentials
            check = self._owner.tokens.check(token, address, "SMTP")
            if check.valid and self._owner.directory.mailbox(address) is not None:
                return await self._admit(address, "XOAUTH2")
            log.info("sandbox SMTP: XOAUTH2 for %s refused (%s)", address, check.status)
        # As at Exchange, the failure is first stated in a 334 challenge; the client must
        # answer it (an empty line) before it gets the final 535, so clients are tested
        # against that dance. A client that does not answer waits here until it times out.
        answer = await self.challenge_auth(XOAUTH2_FAILURE_CHALLENGE)
        if not isinstance(answer, bytes):
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False, message=str(AUTH_UNSUCCESSFUL))

    async def _admit(self, address: str, mechanism: str) -> AuthResult:
        mailbox = self._owner.directory.mailbox(address)
        if mailbox is None:
            return AuthResult(success=False, handled=False, message=str(AUTH_UNSUCCESSFUL))
        reply = await mailbox.hooks().on_auth(address, mechanism, self._owner.clock.now())
        if reply is not None:
            return AuthResult(success=False, handled=False, message=str(reply))
        principal = Principal(address=mailbox.address, tenant=mailbox.tenant, mechanism=mechanism)
        return AuthResult(success=True, auth_data=principal)

    # -- connection bookkeeping for a clean stop ----------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._owner.sessions.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self._owner.sessions.discard(self)
        session = self.session
        if session is not None and session.authenticated and not self._disconnect_reported:
            self._disconnect_reported = True
            principal = _principal(session)
            self._owner.behaviour(principal.address).on_disconnect(
                principal.address, self._owner.clock.now()
            )

    @property
    def handler_task(self) -> asyncio.Task[None] | None:
        """The task reading this session's commands (aiosmtpd keeps it private)."""
        return self._handler_coroutine

    def close_connection(self, *, abort: bool = False) -> None:
        """Close the connection; ``abort`` drops it without the TLS goodbye."""
        for transport in (self.transport, self._original_transport):
            if transport is None:
                continue
            if abort and isinstance(transport, asyncio.WriteTransport):
                transport.abort()
            else:
                transport.close()


class SubmissionServer:
    """The listening submission service on 127.0.0.1 and its live sessions."""

    def __init__(
        self,
        *,
        clock: Clock,
        directory: Directory,
        tokens: TokenService,
        tls_context: ssl.SSLContext,
        deliver: Deliver,
        hostname: str = "smtp.sandbox.test",
        plaintext: bool = False,
    ) -> None:
        self.clock = clock
        self.plaintext = plaintext
        """Benchmark/test only: no STARTTLS and AUTH over plaintext (always on loopback)."""
        if plaintext:
            # aiosmtpd warns on every session that AUTH without TLS is risky: here it is the point.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
        self.directory = directory
        self.tokens = tokens
        self.tls_context = tls_context
        self.deliver = deliver
        self.hostname = hostname
        self.handler = _Handler(self)
        self.sessions: set[_SandboxSMTP] = set()
        self.tls_failures: collections.deque[str] = collections.deque(maxlen=100)
        """Why recent STARTTLS handshakes failed (OpenSSL's words), newest last."""
        self.host = "127.0.0.1"
        self.port = 0
        self._server: asyncio.Server | None = None
        self._default_behaviour = MailboxBehaviour()

    def behaviour(self, address: str) -> MailboxBehaviour:
        """What mailbox ``address`` does at each step: its behaviour, then its limits."""
        mailbox = self.directory.mailbox(address)
        return mailbox.hooks() if mailbox is not None else self._default_behaviour

    async def start(self) -> None:
        """Listen on ``port`` (set beforehand; 0: a free loopback port) of the running loop."""
        _quiet_aiosmtpd()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _SandboxSMTP(self), self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self, grace: float = 1.0) -> None:
        """Stop listening, close every session (aborting those not gone after ``grace`` s)."""
        if self._server is None:
            return
        self._server.close()
        sessions = list(self.sessions)
        for session in sessions:
            session.close_connection()
        tasks = [t for t in (s.handler_task for s in sessions) if t is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            if pending:
                for session in sessions:
                    session.close_connection(abort=True)
                for task in pending:
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None
