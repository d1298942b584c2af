"""SMTP submission on aiosmtplib: one connection per mailbox, reused, always verified TLS.

The transport speaks the protocol and reports exactly what happened — which
stage, which reply — as a :class:`SubmitResult`; deciding what to do about a
reply belongs to ``providers.replies`` and the engine. Rules kept here because
they are about the wire, not policy: STARTTLS is mandatory when the endpoint
says so (never AUTH over plaintext, even if offered), TLS 1.2 is the minimum,
certificates are always verified (a private CA file may be added), and a
connection that died after the message was handed over is reported as
*unknown*, never as failed, so nobody resends it blindly.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import aiosmtplib

from mailfleet.clock import Clock
from mailfleet.providers.outcomes import Stage
from mailfleet.transport.oauth import TokenError, TokenProvider


@dataclass(frozen=True, slots=True)
class SmtpEndpoint:
    """Where and how to reach a submission server."""

    host: str
    port: int
    security: str = "starttls"  # starttls, tls (implicit) or plain (loopback sandbox only)
    ca_file: str | None = None
    helo_name: str | None = None
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class SmtpCredentials:
    """Who to log in as: XOAUTH2 through a token provider, or a password."""

    username: str
    tokens: TokenProvider | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.tokens is None) == (self.password is None):
            raise ValueError("give exactly one of a token provider or a password")


class Delivery(enum.StrEnum):
    """What is known about a message after a submission attempt."""

    ACCEPTED = "accepted"  # the server took responsibility (250 after DATA)
    REFUSED = "refused"  # the server did not take it; nothing was delivered
    UNKNOWN = "unknown"  # the connection died after the message was handed over


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The outcome of one submission, with the reply that decided it."""

    delivery: Delivery
    stage: Stage
    code: int | None = None
    text: str = ""
    refused_recipients: dict[str, tuple[int, str]] = field(default_factory=dict)
    exception: str | None = None  # type name of a transport failure, if any
    error: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def accepted(self) -> bool:
        """Whether the server accepted the message."""
        return self.delivery is Delivery.ACCEPTED


@functools.lru_cache(maxsize=64)
def client_tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying client context with TLS 1.2 as the floor, plus a private CA when given.

    Cached per CA file: loading the system trust store costs tens of milliseconds,
    and one context serves any number of connections.
    """
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class _Failure(Exception):
    def __init__(self, result: SubmitResult) -> None:
        super().__init__(result.text)
        self.result = result


def _from_exception(exc: BaseException, stage: Stage) -> SubmitResult:
    code = getattr(exc, "code", None)
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        stage = Stage.TLS
    dead = isinstance(
        exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPTimeoutError | OSError
    )
    delivery = Delivery.UNKNOWN if stage is Stage.DATA and dead else Delivery.REFUSED
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPConnectTimeoutError):
        stage = Stage.CONNECT
    return SubmitResult(
        delivery,
        stage,
        code if isinstance(code, int) and code > 0 else None,
        str(text),
        exception=type(exc).__name__,
        error=exc,
    )


class MailboxConnection:
    """One authenticated SMTP session of one mailbox, reused across messages."""

    def __init__(self, endpoint: SmtpEndpoint, credentials: SmtpCredentials, clock: Clock) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self._clock = clock
        self._smtp: aiosmtplib.SMTP | None = None
        self._token_used: str | None = None
        self.last_used: datetime | None = None
        self.lock = asyncio.Lock()

    @property
    def is_open(self) -> bool:
        """Whether a live session is held."""
        return self._smtp is not None and self._smtp.is_connected

    async def _open(self) -> aiosmtplib.SMTP:
        ep = self.endpoint
        context = client_tls_context(ep.ca_file)
        smtp = aiosmtplib.SMTP(
            hostname=ep.host,
            port=ep.port,
            use_tls=ep.security == "tls",
            start_tls=False,
            tls_context=context if ep.security != "plain" else None,
            local_hostname=ep.helo_name,
            timeout=ep.timeout,
        )
        stage = Stage.CONNECT
        try:
            await smtp.connect()
            stage = Stage.EHLO
            await smtp.ehlo()
            if ep.security == "starttls":
                if not smtp.supports_extension("starttls"):
                    raise _Failure(
                        SubmitResult(
                            Delivery.REFUSED,
                            Stage.STARTTLS,
                            None,
                            f"{ep.host}:{ep.port} does not offer STARTTLS; "
                            "refusing to authenticate over plaintext",
                        )
                    )
                stage = Stage.STARTTLS
                await smtp.starttls(tls_context=context, server_hostname=ep.host)
                stage = Stage.EHLO
                await smtp.ehlo()
            stage = Stage.AUTH
            await self._authenticate(smtp)
        except _Failure:
            smtp.close()
            raise
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            smtp.close()
            raise _Failure(_from_exception(exc, stage)) from exc
        return smtp

    async def _authenticate(self, smtp: aiosmtplib.SMTP) -> None:
        creds = self.credentials
        if creds.tokens is not None:
            try:
                token = await creds.tokens.access_token()
            except TokenError as exc:
                raise _Failure(
                    SubmitResult(
                        Delivery.REFUSED,
                        Stage.TOKEN,
                        None,
                        str(exc),
                        exception="TokenError",
                        error=exc,
                    )
                ) from exc
            if not smtp.supports_extension("auth") or "xoauth2" not in [
                m.lower() for m in smtp.server_auth_methods
            ]:
                raise _Failure(
                    SubmitResult(
                        Delivery.REFUSED,
                        Stage.AUTH,
                        None,
                        "server does not offer AUTH XOAUTH2 on this connection",
                    )
                )
            await smtp.auth_xoauth2(creds.username, token.token)
            self._token_used = token.token
        else:
            assert creds.password is not None
            await smtp.login(creds.username, creds.password)

    async def _token_changed(self) -> bool:
        tokens = self.credentials.tokens
        if tokens is None or self._token_used is None:
            return False
        try:
            return (await tokens.access_token()).token != self._token_used
        except TokenError:
            return True

    async def submit(
        self, envelope_from: str, recipients: Sequence[str], message: bytes
    ) -> SubmitResult:
        """Send one message on this mailbox's session, opening or renewing it as needed."""
        async with self.lock:
            self.last_used = self._clock.now()
            try:
                if self.is_open and await self._token_changed():
                    await self.close()
                if not self.is_open:
                    self._smtp = await self._open()
                else:
                    assert self._smtp is not None
                    try:
                        await self._smtp.rset()
                    except (aiosmtplib.SMTPException, OSError):
                        await self.close()
                        self._smtp = await self._open()
                assert self._smtp is not None
                return await self._transaction(self._smtp, envelope_from, recipients, message)
            except _Failure as failure:
                if failure.result.stage in (Stage.CONNECT, Stage.TLS, Stage.EHLO, Stage.AUTH):
                    await self.close()
                return failure.result
            finally:
                self.last_used = self._clock.now()

    async def _transaction(
        self, smtp: aiosmtplib.SMTP, envelope_from: str, recipients: Sequence[str], message: bytes
    ) -> SubmitResult:
        stage = Stage.MAIL
        try:
            await smtp.mail(envelope_from)
            stage = Stage.RCPT
            refused: dict[str, tuple[int, str]] = {}
            for rcpt in recipients:
                try:
                    await smtp.rcpt(rcpt)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refused[rcpt] = (exc.code, exc.message)
            if len(refused) == len(recipients):
                first_code, first_text = next(iter(refused.values()))
                await self._reset(smtp)
                return SubmitResult(
                    Delivery.REFUSED, Stage.RCPT, first_code, first_text, refused_recipients=refused
                )
            stage = Stage.DATA
            response = await smtp.data(message)
            return SubmitResult(
                Delivery.ACCEPTED,
                Stage.DATA,
                response.code,
                response.message,
                refused_recipients=refused,
            )
        except aiosmtplib.SMTPResponseException as exc:
            result = _from_exception(exc, stage)
            if exc.code == 421:
                await self.close()
            else:
                await self._reset(smtp)
            return result
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self.close()
            return _from_exception(exc, stage)

    async def _reset(self, smtp: aiosmtplib.SMTP) -> None:
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            await self.close()

    async def close(self) -> None:
        """Say QUIT if possible and drop the session."""
        smtp, self._smtp = self._smtp, None
        self._token_used = None
        if smtp is None:
            return
        try:
            if smtp.is_connected:
                await asyncio.wait_for(smtp.quit(), timeout=5)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            smtp.close()


class SmtpPool:
    """Sessions keyed by mailbox, closed when idle."""

    def __init__(self, clock: Clock, idle_seconds: float = 120.0) -> None:
        self._clock = clock
        self._idle = idle_seconds
        self._connections: dict[int, MailboxConnection] = {}
        self._stale: list[MailboxConnection] = []

    def connection(
        self, mailbox_id: int, endpoint: SmtpEndpoint, credentials: SmtpCredentials
    ) -> MailboxConnection:
        """The session of ``mailbox_id``, replaced if its endpoint or login changed."""
        current = self._connections.get(mailbox_id)
        if current is None or current.endpoint != endpoint or current.credentials != credentials:
            if current is not None:
                # A replaced session is closed at the next close_idle or close_all.
                self._stale.append(current)
            current = MailboxConnection(endpoint, credentials, self._clock)
            self._connections[mailbox_id] = current
        return current

    async def close_idle(self) -> int:
        """Close sessions unused for longer than the idle limit; return how many."""
        now = self._clock.now()
        closed = 0
        stale, self._stale = self._stale, []
        for old in stale:
            await old.close()
        for conn in self._connections.values():
            idle = (
                conn.last_used is not None and (now - conn.last_used).total_seconds() > self._idle
            )
            if conn.is_open and idle and not conn.lock.locked():
                await conn.close()
                closed += 1
        return closed

    async def close_all(self) -> None:
        """Close every session."""
        stale, self._stale = self._stale, []
        for old in stale:
            await old.close()
        await asyncio.gather(*(c.close() for c in self._connections.values()))
        self._connections.clear()
