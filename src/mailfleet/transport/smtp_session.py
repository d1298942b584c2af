"""One SMTP submission session on aiosmtplib, and what a submission's outcome is.

A :class:`SmtpSession` connects, secures (STARTTLS or implicit TLS, verified, TLS
1.2 at least), authenticates (XOAUTH2, or PLAIN/LOGIN with a password — never over
plaintext, and ``plain`` security only on loopback), then runs one transaction per
message. Every failure becomes a :class:`SubmitResult` naming the stage and, when
the server answered, its reply verbatim; ``Delivery.UNKNOWN`` only once the message
body has left. Pooling and limits are :mod:`mailfleet.transport.smtp`'s business.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import aiosmtplib

from mailfleet.providers.outcomes import Stage
from mailfleet.transport.oauth import TokenProvider

SECURITY_MODES = ("starttls", "tls", "plain")
"""``starttls`` (587), ``tls`` (implicit, 465) or ``plain`` (loopback sandbox only)."""


@dataclass(frozen=True, slots=True)
class SmtpTimeouts:
    """Seconds to wait at each stage before the attempt ends in a classified result."""

    connect: float = 30.0  # TCP connect, the banner, and each TLS handshake
    command: float = 60.0  # the reply to each command: EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA
    data: float = 300.0  # the reply after the message body (RFC 5321 allows 10 minutes)


@dataclass(frozen=True, slots=True)
class SmtpEndpoint:
    """Where and how to reach a submission server, and how many sessions one mailbox may hold."""

    host: str
    port: int
    security: str = "starttls"  # one of SECURITY_MODES
    ca_file: str | None = None
    helo_name: str | None = None
    timeouts: SmtpTimeouts = SmtpTimeouts()
    max_sessions: int = 1  # see mailfleet.transport.smtp.session_limit()


@dataclass(frozen=True, slots=True)
class SmtpCredentials:
    """Who to log in as: XOAUTH2 through a token provider, or a password (PLAIN/LOGIN)."""

    username: str
    tokens: TokenProvider | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.tokens is None) == (self.password is None):
            raise ValueError("give exactly one of a token provider or a password")


class Delivery(enum.StrEnum):
    """What is known about a message after a submission attempt."""

    ACCEPTED = "accepted"  # the server took responsibility (2xx after the body)
    REFUSED = "refused"  # the server did not take it; nothing was delivered
    UNKNOWN = "unknown"  # the connection died after the message was handed over


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The outcome of one submission, with the reply that decided it.

    ``code`` and ``text`` are the server's reply verbatim when there was one; for a
    transport failure ``code`` is None, ``text`` says what happened in plain words,
    ``exception`` names the failure's type and ``error`` holds it for
    ``providers.faults.classify_exception``.
    """

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


# -- results -------------------------------------------------------------------------------


class _Failure(Exception):
    """Ends an attempt early with the result that says why."""

    def __init__(self, result: SubmitResult) -> None:
        super().__init__(result.text)
        self.result = result


def refused(stage: Stage, text: str, error: BaseException | None = None) -> SubmitResult:
    """A REFUSED result the server did not word: ``text`` says why, ``error`` is the cause."""
    return SubmitResult(
        Delivery.REFUSED,
        stage,
        None,
        text,
        exception=type(error).__name__ if error is not None else None,
        error=error,
    )


def _not_supported(stage: Stage, text: str) -> _Failure:
    # SMTPNotSupported is what providers.faults reads as "fix the configuration".
    return _Failure(refused(stage, text, aiosmtplib.SMTPNotSupported(text)))


def _reply_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) and 200 <= code <= 599 else None


def _root_cause(exc: BaseException) -> BaseException:
    # aiosmtplib wraps connect-time OSErrors (refused, reset, a failed implicit-TLS
    # handshake) in SMTPConnectError; the cause is what classification needs.
    if isinstance(exc, aiosmtplib.SMTPConnectError) and isinstance(exc.__cause__, OSError):
        return exc.__cause__
    return exc


def _failure_stage(exc: BaseException, stage: Stage) -> Stage:
    if isinstance(exc, ssl.SSLError):
        return Stage.TLS
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return Stage.BANNER  # connected, but the greeting was not 220
    message = str(getattr(exc, "message", "") or "")
    if stage is Stage.STARTTLS and "upgrading transport" in message:
        return Stage.TLS  # aiosmtplib's words for a handshake that timed out or was reset
    return stage


def _from_exception(
    exc: BaseException, stage: Stage, endpoint: SmtpEndpoint, *, handed_over: bool = False
) -> SubmitResult:
    """Turn a failure at ``stage`` into a result whose text says what happened, in words."""
    cause = _root_cause(exc)
    stage = _failure_stage(cause, stage)
    delivery = Delivery.UNKNOWN if handed_over else Delivery.REFUSED
    where = f"{endpoint.host}:{endpoint.port}"
    at = stage.value.upper()
    code = _reply_code(exc)
    error: BaseException | None = cause
    if code is not None:
        text = str(getattr(exc, "message", "") or "")
    elif isinstance(exc, aiosmtplib.SMTPResponseException):
        # aiosmtplib reports a reply it could not parse with code -1; without a code the
        # reply table reads it as malformed (unknown after the body, retry before).
        text = f"unreadable reply from {where} at {at}: {exc.message}"
        error = None
    elif isinstance(cause, ssl.SSLCertVerificationError):
        detail = cause.verify_message or str(cause)
        text = f"the TLS certificate of {where} failed verification: {detail}"
    elif isinstance(cause, ssl.SSLError):
        text = f"TLS handshake with {where} failed: {cause.reason or cause}"
    elif isinstance(cause, TimeoutError):
        kind, seconds = _timeout_of(stage, endpoint.timeouts, handed_over)
        text = f"no answer from {where} at {at} within {seconds:g} s ({kind} timeout)"
    elif isinstance(cause, ConnectionRefusedError):
        text = f"{where} refused the connection (is anything listening on that port?)"
    elif isinstance(cause, ConnectionError | EOFError):
        text = f"{where} closed the connection at {at}"
    elif isinstance(cause, OSError):
        text = f"cannot reach {where} at {at}: {cause}"
    else:
        text = f"{type(cause).__name__} at {at}: {cause}"
    if handed_over and code is None:
        text += "; the message was handed over and may have been accepted"
    return SubmitResult(delivery, stage, code, text, exception=type(cause).__name__, error=error)


def _timeout_of(stage: Stage, timeouts: SmtpTimeouts, handed_over: bool) -> tuple[str, float]:
    if stage in (Stage.CONNECT, Stage.BANNER, Stage.TLS):
        return "connect", timeouts.connect
    if handed_over:
        return "data", timeouts.data
    return "command", timeouts.command


# -- the wire ------------------------------------------------------------------------------


def wire_body(message: bytes) -> bytes:
    """The message as sent after DATA: CRLF line ends, leading dots doubled, the final dot."""
    # bytes.count and bytes.replace run in C; the regexes they replace cost about 5 % of
    # the client's CPU per message in bench/smtp_throughput.py.
    crlf = message.count(b"\r\n")
    if message.count(b"\n") != crlf or message.count(b"\r") != crlf:  # a bare LF or CR
        message = message.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    body = message.replace(b"\r\n.", b"\r\n..")
    if body.startswith(b"."):
        body = b"." + body
    return body + b".\r\n"


def _path(address: str) -> str:
    """``<local@domain>`` for MAIL FROM or RCPT TO, from a bare or bracketed address."""
    text = address.strip()
    start, end = text.rfind("<"), text.rfind(">")
    if 0 <= start < end:
        text = text[start + 1 : end]
    return f"<{text}>"


def _is_loopback(host: str) -> bool:
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class SmtpSession:
    """One SMTP session of a mailbox: connect, secure, authenticate, then transactions.

    Not safe for concurrent use: one message at a time (the pool sees to that).
    """

    __slots__ = ("credentials", "endpoint", "last_used", "on_open", "retire", "smtp", "token")

    def __init__(
        self,
        endpoint: SmtpEndpoint,
        credentials: SmtpCredentials,
        on_open: Callable[[], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.on_open = on_open  # told each time a session is opened (connect + TLS + AUTH)
        self.smtp: aiosmtplib.SMTP | None = None
        self.token: str | None = None  # the access token this session authenticated with
        self.last_used: datetime | None = None  # set by the pool, on its clock
        self.retire = False  # close once the current message is done

    @property
    def is_open(self) -> bool:
        """Whether the connection is alive (as far as the event loop knows)."""
        return self.smtp is not None and self.smtp.is_connected

    async def send(
        self, envelope_from: str, recipients: Sequence[str], body: bytes
    ) -> SubmitResult:
        """One message on this session, opening or renewing the session first if needed."""
        try:
            reused = self.is_open
            if self.smtp is not None and (not reused or await self._token_changed()):
                await self.close()
                reused = False
            if self.smtp is None:
                await self._open()
            result = await self._transaction(envelope_from, recipients, body, reused=reused)
            if result is None:
                # The server dropped this session while it was idle; nothing was handed
                # over, so a fresh session may carry the same message.
                self.abort()
                await self._open()
                result = await self._transaction(envelope_from, recipients, body, reused=False)
            assert result is not None
            return result
        except _Failure as failure:
            self.abort()
            return failure.result

    async def _token_changed(self) -> bool:
        tokens = self.credentials.tokens
        if tokens is None or self.token is None:
            return False
        try:
            return (await tokens.access_token()).token != self.token
        except Exception:  # the next open will fetch again and report why at TOKEN
            return True

    async def _access_token(self) -> str | None:
        tokens = self.credentials.tokens
        if tokens is None:
            return None
        try:
            return (await tokens.access_token()).token
        except Exception as exc:
            raise _Failure(refused(Stage.TOKEN, f"no access token: {exc}", exc)) from exc

    async def _open(self) -> None:
        ep = self.endpoint
        if ep.security not in SECURITY_MODES:
            raise _not_supported(
                Stage.CONNECT,
                f"unknown security {ep.security!r} for {ep.host}:{ep.port}; "
                "use starttls (587) or tls (465)",
            )
        if ep.security == "plain" and not _is_loopback(ep.host):
            raise _not_supported(
                Stage.CONNECT,
                f"security 'plain' is only allowed on loopback (the sandbox), not {ep.host}; "
                "use starttls (587) or tls (465)",
            )
        token = await self._access_token()  # before connecting: no idle socket meanwhile
        context = client_tls_context(ep.ca_file) if ep.security != "plain" else None
        username = self.credentials.username
        smtp = aiosmtplib.SMTP(
            hostname=ep.host,
            port=ep.port,
            use_tls=ep.security == "tls",
            start_tls=False,
            tls_context=context,
            local_hostname=ep.helo_name or username.rpartition("@")[2] or "localhost",
            timeout=ep.timeouts.command,
        )
        stage = Stage.CONNECT
        try:
            await smtp.connect(timeout=ep.timeouts.connect)
            stage = Stage.EHLO
            await smtp.ehlo()
            if ep.security == "starttls":
                if not smtp.supports_extension("starttls"):
                    raise _not_supported(
                        Stage.STARTTLS,
                        f"{ep.host}:{ep.port} does not offer STARTTLS; "
                        "refusing to authenticate over plaintext",
                    )
                assert context is not None
                stage = Stage.STARTTLS
                await smtp.starttls(
                    tls_context=context, server_hostname=ep.host, timeout=ep.timeouts.connect
                )
                stage = Stage.EHLO
                await smtp.ehlo()
            stage = Stage.AUTH
            await self._authenticate(smtp, token)
        except _Failure:
            smtp.close()
            raise
        except Exception as exc:
            smtp.close()
            raise _Failure(_from_exception(exc, stage, ep)) from exc
        except BaseException:
            smtp.close()
            raise
        self.smtp = smtp
        self.token = token
        if self.on_open is not None:
            self.on_open()

    async def _authenticate(self, smtp: aiosmtplib.SMTP, token: str | None) -> None:
        ep = self.endpoint
        creds = self.credentials
        encrypted = smtp.get_transport_info("sslcontext") is not None
        if not encrypted and not (ep.security == "plain" and _is_loopback(ep.host)):
            raise _not_supported(Stage.AUTH, "refusing to send AUTH over an unencrypted session")
        offered = {m.lower() for m in smtp.server_auth_methods}
        shown = " ".join(sorted(offered)).upper() or "no AUTH"
        if token is not None:
            if "xoauth2" not in offered:
                raise _not_supported(
                    Stage.AUTH, f"{ep.host} offers {shown} on this session, not XOAUTH2"
                )
            await smtp.auth_xoauth2(creds.username, token)
            return
        assert creds.password is not None
        if "plain" in offered:
            await smtp.auth_plain(creds.username, creds.password)
        elif "login" in offered:
            await smtp.auth_login(creds.username, creds.password)
        else:
            raise _not_supported(
                Stage.AUTH, f"{ep.host} offers {shown} on this session, not PLAIN or LOGIN"
            )

    async def _transaction(
        self, envelope_from: str, recipients: Sequence[str], body: bytes, *, reused: bool
    ) -> SubmitResult | None:
        """MAIL, RCPT, DATA; None when a reused session turns out to be dead at MAIL."""
        smtp = self.smtp
        assert smtp is not None
        ep = self.endpoint
        stage = Stage.MAIL
        handed_over = False
        rejected: dict[str, tuple[int, str]] = {}
        try:
            # MAIL and RCPT go through execute_command with paths built here: aiosmtplib's
            # mail() and rcpt() parse each address with the email package first.
            paths = [_path(envelope_from), *(_path(r) for r in recipients)]
            utf8 = not all(p.isascii() for p in paths)
            if utf8 and not smtp.supports_extension("smtputf8"):
                text = f"an address is not ASCII and {ep.host} does not offer SMTPUTF8"
                return refused(stage, text, ValueError(text))
            encoding = "utf-8" if utf8 else "ascii"
            options = [b"SMTPUTF8"] if utf8 else []
            try:
                reply = await smtp.execute_command(
                    b"MAIL", b"FROM:" + paths[0].encode(encoding), *options
                )
            except aiosmtplib.SMTPServerDisconnected:
                if reused:
                    return None
                raise
            if reply.code != 250:
                raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, envelope_from)
            stage = Stage.RCPT
            for rcpt, path in zip(recipients, paths[1:], strict=True):
                reply = await smtp.execute_command(b"RCPT", b"TO:" + path.encode(encoding))
                if reply.code == 421:  # the server is closing the session, not refusing rcpt
                    raise aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, rcpt)
                if reply.code not in (250, 251):
                    rejected[rcpt] = (reply.code, reply.message)
            if len(rejected) == len(recipients):
                first_code, first_text = next(iter(rejected.values()))
                await self._reset()
                return SubmitResult(
                    Delivery.REFUSED,
                    Stage.RCPT,
                    first_code,
                    first_text,
                    refused_recipients=rejected,
                )
            stage = Stage.DATA
            start = await smtp.execute_command(b"DATA")
            if start.code != 354:
                raise aiosmtplib.SMTPDataError(start.code, start.message)
            protocol = smtp.protocol
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("Connection lost")
            # Written and awaited directly rather than through SMTP.data(), to know
            # exactly when the message left (refused before, unknown after) and to
            # give the final reply its own, longer timeout.
            protocol.write(body)
            handed_over = True
            reply = await protocol.read_response(timeout=ep.timeouts.data)
            if reply.code // 100 != 2:
                raise aiosmtplib.SMTPDataError(reply.code, reply.message)
            return SubmitResult(
                Delivery.ACCEPTED,
                Stage.DATA,
                reply.code,
                reply.message,
                refused_recipients=rejected,
            )
        except aiosmtplib.SMTPResponseException as exc:
            result = _from_exception(exc, stage, ep, handed_over=handed_over)
            if result.code is not None:
                # The server answered: the message was refused, whatever the stage.
                result = SubmitResult(
                    Delivery.REFUSED,
                    stage,
                    result.code,
                    result.text,
                    refused_recipients=rejected,
                    exception=result.exception,
                    error=exc,
                )
                if result.code == 421:
                    await self.close()
                else:
                    await self._reset()
            else:
                self.abort()  # an unreadable reply leaves the session out of step
            return result
        except Exception as exc:
            self.abort()
            return _from_exception(exc, stage, ep, handed_over=handed_over)

    async def _reset(self) -> None:
        """RSET after an unfinished transaction; a session that cannot reset is dropped."""
        smtp = self.smtp
        if smtp is None:
            return
        try:
            await smtp.rset()
        except Exception:
            self.abort()

    def abort(self) -> None:
        """Drop the connection without a goodbye (it is broken or out of step)."""
        smtp, self.smtp = self.smtp, None
        self.token = None
        if smtp is not None:
            smtp.close()

    async def close(self) -> None:
        """Say QUIT if the session is alive, then drop it."""
        smtp, self.smtp = self.smtp, None
        self.token = None
        if smtp is None:
            return
        try:
            if smtp.is_connected:
                timeout = min(self.endpoint.timeouts.command, 5.0)
                await smtp.quit(timeout=timeout)
        except Exception:
            pass  # a session that cannot say goodbye is closed all the same
        finally:
            smtp.close()
