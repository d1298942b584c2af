"""``mailfleet doctor``: walk the submission flow one step at a time and say what broke.

Each step records the server's exact reply and, on failure, the remedy from the
providers' reply table. Nothing is sent: the walk ends with ``MAIL FROM`` and
``RSET``. Steps: dns, connect, banner, ehlo, starttls, tls, auth-mechanisms,
token, auth, mail-from, rset — then the IMAP (or POP3) login the caller adds.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from dataclasses import asdict, dataclass, field
from typing import Any

import aiosmtplib

from mailfleet.providers.faults import classify_exception
from mailfleet.providers.outcomes import Stage
from mailfleet.providers.replies import classify_reply
from mailfleet.transport.oauth import TokenError, is_graph_audience, token_audience
from mailfleet.transport.smtp import SmtpCredentials, SmtpEndpoint, client_tls_context


@dataclass(slots=True)
class DoctorStep:
    """One checked step: whether it passed, what the server said, what to do if not."""

    step: str
    ok: bool
    reply: str
    remedy: str = ""


@dataclass(slots=True)
class DoctorReport:
    """Every step of one mailbox's check."""

    address: str
    steps: list[DoctorStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every step passed."""
        return all(s.ok for s in self.steps)

    def as_json(self) -> dict[str, Any]:
        """``{"address", "ok", "steps": [{"step", "ok", "reply", "remedy"}]}``."""
        return {"address": self.address, "ok": self.ok, "steps": [asdict(s) for s in self.steps]}


class _Stop(Exception):
    """A step failed; later SMTP steps cannot run."""


class SubmissionDoctor:
    """Runs the SMTP part of the check for one mailbox."""

    def __init__(
        self,
        address: str,
        endpoint: SmtpEndpoint,
        credentials: SmtpCredentials,
        *,
        provider: str,
        timeout: float = 20.0,
    ) -> None:
        self.address = address
        self.endpoint = endpoint
        self.credentials = credentials
        self.provider = provider
        self.timeout = timeout
        self.steps: list[DoctorStep] = []

    def _pass(self, step: str, reply: str) -> None:
        self.steps.append(DoctorStep(step, True, reply))

    def _fail(self, step: str, reply: str, remedy: str) -> _Stop:
        self.steps.append(DoctorStep(step, False, reply, remedy))
        return _Stop(step)

    def _fail_reply(self, step: str, stage: Stage, code: int | None, text: str) -> _Stop:
        outcome = classify_reply(
            code, text, stage=stage, provider=self.provider, mailbox=self.address
        )
        reply = f"{code} {text}".strip() if code else text
        return self._fail(step, reply, outcome.remedy or outcome.explanation)

    def _fail_exception(self, step: str, stage: Stage, exc: BaseException) -> _Stop:
        outcome = classify_exception(exc, stage, provider=self.provider, mailbox=self.address)
        code = getattr(exc, "code", None)
        text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        reply = (
            f"{code} {text}"
            if isinstance(code, int) and code > 0
            else f"{type(exc).__name__}: {text}"
        )
        return self._fail(step, reply, outcome.remedy or outcome.explanation)

    async def run(self) -> list[DoctorStep]:
        """Walk every step until one fails; return what was checked."""
        smtp: aiosmtplib.SMTP | None = None
        try:
            await self._dns()
            await self._tcp()
            smtp = await self._banner()
            await self._ehlo(smtp, "ehlo")
            if self.endpoint.security == "starttls":
                await self._starttls(smtp)
                await self._ehlo(smtp, "ehlo-after-tls")
            if self.endpoint.security != "plain":
                self._tls_details(smtp)
            await self._auth(smtp)
            await self._mail_from(smtp)
        except _Stop:
            pass
        finally:
            if smtp is not None:
                try:
                    if smtp.is_connected:
                        await asyncio.wait_for(smtp.quit(), 5)
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    pass
                smtp.close()
        return self.steps

    async def _dns(self) -> None:
        host, port = self.endpoint.host, self.endpoint.port
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM),
                self.timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise self._fail(
                "dns",
                f"{host}: {exc}",
                f"check the host name {host!r}; "
                "it must resolve (for Microsoft 365: smtp.office365.com)",
            ) from None
        addresses = sorted({str(info[4][0]) for info in infos})
        self._pass("dns", f"{host} -> {', '.join(addresses)}")

    async def _tcp(self) -> None:
        host, port = self.endpoint.host, self.endpoint.port
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), self.timeout)
        except (OSError, TimeoutError) as exc:
            remedy = f"nothing accepts connections on {host}:{port}"
            if self.provider == "microsoft365" and port == 465:
                remedy += "; Microsoft 365 does not offer port 465: use 587 with STARTTLS"
            else:
                remedy += "; check the port and any firewall between here and the server"
            raise self._fail("connect", f"{type(exc).__name__}: {exc}", remedy) from None
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        self._pass("connect", f"TCP connection to {host}:{port} opened")

    async def _banner(self) -> aiosmtplib.SMTP:
        ep = self.endpoint
        context = client_tls_context(ep.ca_file) if ep.security != "plain" else None
        smtp = aiosmtplib.SMTP(
            hostname=ep.host,
            port=ep.port,
            use_tls=ep.security == "tls",
            start_tls=False,
            tls_context=context,
            local_hostname=ep.helo_name,
            timeout=self.timeout,
        )
        try:
            response = await smtp.connect()
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            stage = Stage.TLS if ep.security == "tls" else Stage.BANNER
            raise self._fail_exception("banner", stage, exc) from None
        self._pass("banner", f"{response.code} {response.message}")
        return smtp

    async def _ehlo(self, smtp: aiosmtplib.SMTP, step: str) -> None:
        try:
            response = await smtp.ehlo()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._fail_exception(step, Stage.EHLO, exc) from None
        extensions = " ".join(sorted(k.upper() for k in smtp.esmtp_extensions))
        self._pass(step, f"{response.code} {smtp.hostname or ''}; extensions: {extensions}")

    async def _starttls(self, smtp: aiosmtplib.SMTP) -> None:
        if not smtp.supports_extension("starttls"):
            raise self._fail(
                "starttls",
                "STARTTLS not advertised in EHLO",
                "the server does not offer STARTTLS; mailfleet never authenticates over "
                "plaintext — check host and port (Microsoft 365: smtp.office365.com:587)",
            )
        try:
            response = await smtp.starttls(
                tls_context=client_tls_context(self.endpoint.ca_file),
                server_hostname=self.endpoint.host,
            )
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise self._fail_exception("starttls", Stage.STARTTLS, exc) from None
        self._pass("starttls", f"{response.code} {response.message}")

    def _tls_details(self, smtp: aiosmtplib.SMTP) -> None:
        transport = smtp.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
            raise self._fail(
                "tls",
                "no TLS session on the connection",
                "the connection is not encrypted; use STARTTLS on 587",
            )
        version = ssl_object.version() or "unknown"
        cipher = ssl_object.cipher()
        cert = ssl_object.getpeercert() or {}
        subject = ", ".join("=".join(x) for rdn in cert.get("subject", ()) for x in rdn)
        issuer = ", ".join("=".join(x) for rdn in cert.get("issuer", ()) for x in rdn)
        reply = (
            f"{version}, {cipher[0] if cipher else 'unknown cipher'}; certificate {subject} "
            f"issued by {issuer}, valid until {cert.get('notAfter', '?')}"
        )
        if version not in ("TLSv1.2", "TLSv1.3"):
            raise self._fail("tls", reply, "TLS 1.2 or newer is required (421 4.7.66)")
        self._pass("tls", reply)

    async def _auth(self, smtp: aiosmtplib.SMTP) -> None:
        methods = [m.upper() for m in smtp.server_auth_methods]
        creds = self.credentials
        wanted = "XOAUTH2" if creds.tokens is not None else "LOGIN or PLAIN"
        if creds.tokens is not None:
            usable = "XOAUTH2" in methods
        else:
            usable = bool({"LOGIN", "PLAIN"} & set(methods))
        reply = "AUTH " + (" ".join(methods) if methods else "(none advertised)")
        if not usable:
            raise self._fail(
                "auth-mechanisms",
                reply,
                f"the server does not offer {wanted} here; Microsoft 365 offers "
                "AUTH LOGIN XOAUTH2 only after STARTTLS on smtp.office365.com:587",
            )
        self._pass("auth-mechanisms", reply)
        token = await self._token() if creds.tokens is not None else None
        try:
            if token is not None:
                response = await smtp.auth_xoauth2(creds.username, token)
            else:
                response = await smtp.login(creds.username, creds.password or "")
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise self._fail_reply("auth", Stage.AUTH, exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._fail_exception("auth", Stage.AUTH, exc) from None
        self._pass("auth", f"{response.code} {response.message}")

    async def _token(self) -> str:
        assert self.credentials.tokens is not None
        try:
            token = await self.credentials.tokens.access_token(force_refresh=True)
        except TokenError as exc:
            raise self._fail(
                "token",
                str(exc),
                "the identity provider refused: check tenant, client id and secret or "
                "certificate, and admin consent for SMTP.SendAsApp / SMTP.Send; then "
                "reconnect the mailbox",
            ) from None
        audience = token_audience(token.token)
        if is_graph_audience(audience):
            raise self._fail(
                "token",
                f"token audience is {audience}",
                "this is a Microsoft Graph token; SMTP needs a token for "
                "https://outlook.office.com (scope https://outlook.office.com/SMTP.Send, "
                "or https://outlook.office365.com/.default for app-only)",
            )
        self._pass(
            "token",
            f"access token acquired, audience {audience or 'opaque'}, "
            f"expires {token.expires_at.isoformat(timespec='seconds')}",
        )
        return token.token

    async def _mail_from(self, smtp: aiosmtplib.SMTP) -> None:
        try:
            response = await smtp.mail(self.address)
        except aiosmtplib.SMTPResponseException as exc:
            raise self._fail_reply("mail-from", Stage.MAIL, exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._fail_exception("mail-from", Stage.MAIL, exc) from None
        self._pass("mail-from", f"{response.code} {response.message}")
        try:
            response = await smtp.rset()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._fail_exception("rset", Stage.RSET, exc) from None
        self._pass("rset", f"{response.code} {response.message} (no message was sent)")
