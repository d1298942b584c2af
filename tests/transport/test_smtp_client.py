"""The submission client against bad servers: every case ends in a classified result.

Two kinds of server: the sandbox (aiosmtpd, STARTTLS, XOAUTH2, Microsoft's words),
and tiny scripted asyncio servers on 127.0.0.1 that misbehave on cue — a stall, a
close, a garbled reply at any stage. Timeouts are a fraction of a second here; every
test also runs under a hang guard, so a regression fails instead of blocking.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st

from mailfleet.clock import VirtualClock, utc
from mailfleet.providers.faults import classify_exception
from mailfleet.providers.outcomes import Outcome, OutcomeKind, Stage
from mailfleet.providers.replies import classify_reply
from mailfleet.sandbox import (
    SENT_ITEMS,
    MailboxBehaviour,
    Reply,
    Sandbox,
    SubmissionServer,
    create_tls_material,
)
from mailfleet.transport import smtp as smtp_module
from mailfleet.transport.oauth import AccessToken
from mailfleet.transport.smtp import (
    Delivery,
    MailboxConnection,
    SmtpCredentials,
    SmtpEndpoint,
    SmtpPool,
    SmtpTimeouts,
    SubmitResult,
    session_limit,
)
from mailfleet.transport.smtp_session import wire_body

TENANT = "contoso.onmicrosoft.com"
SENDER = "alice@brand-mail.test"
PASSWORD = "correct horse battery staple"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "s3cr3t~value"
APP_SCOPE = "https://outlook.office365.com/.default"
RECIPIENT = "prospect@prospect.test"
RAW = (
    b"From: alice@brand-mail.test\r\nTo: prospect@prospect.test\r\n"
    b"Subject: Quick question\r\nMessage-ID: <m1@brand-mail.test>\r\n\r\n"
    b"Hello there.\r\n.leading dot\r\n"
)
SHORT = SmtpTimeouts(connect=0.2, command=0.2, data=0.2)
# A hang guard, not a timing assertion: far above any timeout used here.
GUARD = 10.0


class FixedTokens:
    """A token provider handing out whatever token the test sets."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def access_token(self, *, force_refresh: bool = False) -> AccessToken:
        return AccessToken(self.token, utc(2100, 1, 1))


def outcome(result: SubmitResult) -> Outcome:
    """Classify a result the way the engine does."""
    if result.error is not None and result.code is None:
        return classify_exception(result.error, result.stage)
    return classify_reply(result.code, result.text, stage=result.stage)


def expected_kind(result: SubmitResult) -> OutcomeKind:
    """UNKNOWN after the hand-over, else RETRY: what a dropped or stalled server deserves.

    A failure at the DATA command itself (before the body left) is REFUSED by the
    transport, but ``classify_exception`` cannot tell it from one after the body and
    says UNKNOWN; the engine files it by ``delivery``, so the message is retried.
    """
    if result.delivery is Delivery.UNKNOWN or result.stage is Stage.DATA:
        return OutcomeKind.UNKNOWN
    return OutcomeKind.RETRY


async def submit(conn: MailboxConnection, raw: bytes = RAW) -> SubmitResult:
    return await asyncio.wait_for(conn.submit(SENDER, [RECIPIENT], raw), GUARD)


# -- a scripted server ----------------------------------------------------------------------

STALL = "<stall>"  # never answer
CLOSE = "<close>"  # drop the connection instead of answering
Action = str | Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]
"""A reply line, STALL, CLOSE, or a coroutine that returns whether the session goes on."""


@dataclass
class ScriptedServer:
    """An SMTP server that answers each verb from a script: a reply, STALL, CLOSE or a coroutine.

    ``script[verb]`` is a list consumed one per use (across connections); when it runs
    out, ``default[verb]`` answers. ``BANNER`` is the greeting, ``BODY`` the reply after
    the message body. Every line received is kept in ``lines``.
    """

    ehlo: tuple[str, ...] = ("AUTH PLAIN LOGIN XOAUTH2", "8BITMIME")
    script: dict[str, list[Action]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    connections: int = 0
    default: dict[str, str] = field(
        default_factory=lambda: {
            "BANNER": "220 fake.test ESMTP",
            "AUTH": "235 2.7.0 Authentication successful",
            "MAIL": "250 2.1.0 Sender OK",
            "RCPT": "250 2.1.5 Recipient OK",
            "DATA": "354 Start mail input; end with <CRLF>.<CRLF>",
            "BODY": "250 2.0.0 OK queued",
            "RSET": "250 2.0.0 Resetting",
            "NOOP": "250 2.0.0 OK",
            "QUIT": "221 2.0.0 Bye",
            "STARTTLS": "220 2.0.0 SMTP server ready",
        }
    )
    tls: ssl.SSLContext | None = None  # implicit TLS (port 465 style) when set
    port: int = 0
    _last_reply: str = ""
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def verbs(self) -> list[str]:
        """The command verb of every line received, in order."""
        return [line.split(" ", 1)[0].upper() for line in self.lines]

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def endpoint(self, security: str = "plain", ca_file: str | None = None) -> SmtpEndpoint:
        return SmtpEndpoint("127.0.0.1", self.port, security, ca_file=ca_file, timeouts=SHORT)

    def _action(self, verb: str) -> Action:
        queue = self.script.get(verb)
        if queue:
            return queue.pop(0)
        if verb == "EHLO":
            lines = ["fake.test", *self.ehlo]
            return "\r\n".join(
                f"250{'-' if i < len(lines) - 1 else ' '}{line}" for i, line in enumerate(lines)
            )
        return self.default.get(verb, "502 5.5.2 Command not implemented")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            if not await self._answer(self._action("BANNER"), reader, writer):
                return
            while line := await reader.readline():
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                self.lines.append(text)
                verb = text.split(" ", 1)[0].upper()
                if not await self._answer(self._action(verb), reader, writer):
                    return
                if verb == "DATA" and self._last_reply.startswith("354"):
                    body = await self._read_body(reader)
                    self.bodies.append(body)
                    self.lines.append(f"BODY {len(body)} bytes")
                    if not await self._answer(self._action("BODY"), reader, writer):
                        return
                if verb == "QUIT":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _answer(
        self, action: Action, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Carry out ``action``; False when the connection is finished."""
        self._last_reply = action if isinstance(action, str) else ""
        if action == STALL:
            await asyncio.sleep(3600)
            return False
        if action == CLOSE:
            return False
        if isinstance(action, str):
            writer.write(action.encode() + b"\r\n")
            await writer.drain()
            return True
        return await action(reader, writer)

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader) -> bytes:
        body = b""
        while (line := await reader.readline()) not in (b".\r\n", b""):
            body += line
        return body


def password_login() -> SmtpCredentials:
    return SmtpCredentials(SENDER, password=PASSWORD)


def connection(endpoint: SmtpEndpoint, creds: SmtpCredentials | None = None) -> MailboxConnection:
    pool = SmtpPool(VirtualClock(utc(2026, 3, 2, 9)))
    return pool.connection(1, endpoint, creds or password_login())


# -- scripted: happy path and the plaintext rules -------------------------------------------


async def test_scripted_server_accepts_with_plain_auth_and_dot_stuffing() -> None:
    async with ScriptedServer() as server:
        result = await submit(connection(server.endpoint()))
    assert result.delivery is Delivery.ACCEPTED and result.code == 250
    assert result.text == "2.0.0 OK queued"
    assert server.bodies == [RAW.replace(b"\r\n.leading", b"\r\n..leading")]
    assert f"MAIL FROM:<{SENDER}>" in server.lines and f"RCPT TO:<{RECIPIENT}>" in server.lines
    assert [v for v in server.verbs() if v != "BODY"] == ["EHLO", "AUTH", "MAIL", "RCPT", "DATA"]
    auth = next(line for line in server.lines if line.startswith("AUTH"))
    assert auth.startswith("AUTH PLAIN ")
    assert base64.b64decode(auth.split()[2]) == f"\0{SENDER}\0{PASSWORD}".encode()


async def test_no_starttls_offered_means_refused_and_no_auth_is_ever_sent() -> None:
    async with ScriptedServer(ehlo=("AUTH PLAIN LOGIN XOAUTH2",)) as server:
        result = await submit(connection(server.endpoint("starttls")))
    assert result.delivery is Delivery.REFUSED and result.stage is Stage.STARTTLS
    assert "does not offer STARTTLS" in result.text
    assert "AUTH" not in server.verbs() and "MAIL" not in server.verbs()
    assert outcome(result).kind is OutcomeKind.FIX_CONFIG


async def test_plain_security_is_refused_off_loopback_before_connecting() -> None:
    conn = connection(SmtpEndpoint("smtp.example.com", 25, "plain", timeouts=SHORT))
    result = await submit(conn)
    assert result.delivery is Delivery.REFUSED and result.stage is Stage.CONNECT
    assert "only allowed on loopback" in result.text
    assert outcome(result).kind is OutcomeKind.FIX_CONFIG


async def test_unknown_security_mode_is_a_clear_refusal() -> None:
    result = await submit(connection(SmtpEndpoint("127.0.0.1", 1, "ssl", timeouts=SHORT)))
    assert result.delivery is Delivery.REFUSED and "unknown security 'ssl'" in result.text


async def test_login_is_used_when_plain_is_not_offered() -> None:
    password_lines: list[bytes] = []

    async def login(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"334 UGFzc3dvcmQ6\r\n")
        password_lines.append(await reader.readline())
        writer.write(b"235 2.7.0 Authentication successful\r\n")
        await writer.drain()
        return True

    async with ScriptedServer(ehlo=("AUTH LOGIN",), script={"AUTH": [login]}) as server:
        result = await submit(connection(server.endpoint()))
    assert result.accepted
    assert server.lines[1] == f"AUTH LOGIN {base64.b64encode(SENDER.encode()).decode()}"
    assert password_lines == [base64.b64encode(PASSWORD.encode()) + b"\r\n"]


async def test_a_server_offering_no_usable_mechanism_is_refused_at_auth() -> None:
    async with ScriptedServer(ehlo=("AUTH CRAM-MD5",)) as server:
        result = await submit(connection(server.endpoint()))
    assert result.stage is Stage.AUTH and "not PLAIN or LOGIN" in result.text
    assert "AUTH" not in server.verbs()
    assert outcome(result).kind is OutcomeKind.FIX_CONFIG


async def test_xoauth2_is_refused_when_the_server_does_not_offer_it() -> None:
    async with ScriptedServer(ehlo=("AUTH PLAIN LOGIN",)) as server:
        creds = SmtpCredentials(SENDER, tokens=FixedTokens("tok"))
        result = await submit(connection(server.endpoint(), creds))
    assert result.stage is Stage.AUTH and "not XOAUTH2" in result.text
    assert "AUTH" not in server.verbs()


async def test_bracketed_and_named_addresses_become_bare_paths() -> None:
    async with ScriptedServer() as server:
        conn = connection(server.endpoint())
        result = await conn.submit(f" <{SENDER}> ", [f"Pat Prospect <{RECIPIENT}>"], RAW)
    assert result.accepted
    assert f"MAIL FROM:<{SENDER}>" in server.lines and f"RCPT TO:<{RECIPIENT}>" in server.lines


async def test_a_non_ascii_address_needs_smtputf8() -> None:
    unicode_rcpt = "pépé@prospect.test"
    async with ScriptedServer() as server:
        refused = await connection(server.endpoint()).submit(SENDER, [unicode_rcpt], RAW)
    assert refused.delivery is Delivery.REFUSED and refused.stage is Stage.MAIL
    assert "does not offer SMTPUTF8" in refused.text and "MAIL" not in server.verbs()
    async with ScriptedServer(ehlo=("AUTH PLAIN", "SMTPUTF8")) as server:
        accepted = await connection(server.endpoint()).submit(SENDER, [unicode_rcpt], RAW)
    assert accepted.accepted
    assert f"MAIL FROM:<{SENDER}> SMTPUTF8" in server.lines
    assert f"RCPT TO:<{unicode_rcpt}>" in server.lines


async def test_some_recipients_refused_is_still_accepted_and_lists_them() -> None:
    async with ScriptedServer(script={"RCPT": ["550 5.1.1 User unknown"]}) as server:
        conn = connection(server.endpoint())
        result = await conn.submit(SENDER, ["gone@prospect.test", RECIPIENT], RAW)
    assert result.accepted
    assert result.refused_recipients == {"gone@prospect.test": (550, "5.1.1 User unknown")}


async def test_no_recipients_is_refused_without_connecting() -> None:
    async with ScriptedServer() as server:
        result = await connection(server.endpoint()).submit(SENDER, [], RAW)
    assert result.delivery is Delivery.REFUSED and server.connections == 0


@pytest.mark.parametrize(
    ("banner", "kind"),
    [
        ("554 5.7.1 Access denied, traffic not accepted from this IP", OutcomeKind.PAUSE_MAILBOX),
        ("421 4.3.2 Service not available", OutcomeKind.RETRY),
    ],
)
async def test_a_refusing_greeting_is_refused_at_banner(banner: str, kind: OutcomeKind) -> None:
    async with ScriptedServer(script={"BANNER": [banner]}) as server:
        result = await submit(connection(server.endpoint()))
    assert result.delivery is Delivery.REFUSED and result.stage is Stage.BANNER
    assert result.code == int(banner[:3]) and result.text == banner[4:]
    assert outcome(result).kind is kind
    assert server.lines == []


async def test_nothing_listening_is_refused_at_connect() -> None:
    async with ScriptedServer() as server:
        port = server.port
    result = await submit(connection(SmtpEndpoint("127.0.0.1", port, "plain", timeouts=SHORT)))
    assert result.delivery is Delivery.REFUSED and result.stage is Stage.CONNECT
    assert "refused the connection" in result.text
    assert outcome(result).rule == "net.connection_refused"


# -- scripted: malformed, truncated and dropped replies -------------------------------------


@pytest.mark.parametrize(
    ("verb", "stage"),
    [("EHLO", Stage.EHLO), ("AUTH", Stage.AUTH), ("MAIL", Stage.MAIL), ("RCPT", Stage.RCPT)],
)
async def test_malformed_reply_is_refused_and_reads_as_malformed(verb: str, stage: Stage) -> None:
    async with ScriptedServer(script={verb: ["hello, I am not SMTP"]}) as server:
        conn = connection(server.endpoint())
        result = await submit(conn)
    assert result.delivery is Delivery.REFUSED and result.stage is stage
    assert result.code is None and "unreadable reply" in result.text
    assert "not SMTP" in result.text
    assert outcome(result).rule == "smtp.malformed"
    assert not conn.is_open  # an out-of-step session is never reused


async def test_malformed_reply_after_the_body_is_unknown() -> None:
    async with ScriptedServer(script={"BODY": ["OK thanks"]}) as server:
        result = await submit(connection(server.endpoint()))
    assert result.delivery is Delivery.UNKNOWN and result.stage is Stage.DATA
    assert outcome(result).kind is OutcomeKind.UNKNOWN


async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """A multi-line reply cut off before its last line, then a hang-up."""
    writer.write(b"250-2.1.0 first line of a reply\r\n250-second line")
    await writer.drain()
    return False


@pytest.mark.parametrize(
    ("verb", "stage", "delivery"),
    [
        ("BANNER", Stage.CONNECT, Delivery.REFUSED),
        ("EHLO", Stage.EHLO, Delivery.REFUSED),
        ("MAIL", Stage.MAIL, Delivery.REFUSED),
        ("DATA", Stage.DATA, Delivery.REFUSED),
        ("BODY", Stage.DATA, Delivery.UNKNOWN),
    ],
)
async def test_truncated_reply_then_hang_up(verb: str, stage: Stage, delivery: Delivery) -> None:
    async with ScriptedServer(script={verb: [truncated]}) as server:
        result = await submit(connection(server.endpoint()))
    assert result.delivery is delivery and result.stage is stage
    assert "closed the connection" in result.text and result.code is None
    assert outcome(result).kind is expected_kind(result)


async def close_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Say 354, read the first line of the message, then drop the connection."""
    writer.write(b"354 go ahead\r\n")
    await writer.drain()
    await reader.readline()
    return False


async def test_server_closing_mid_data_is_unknown() -> None:
    async with ScriptedServer(script={"DATA": [close_mid_body]}) as server:
        result = await submit(connection(server.endpoint()))
    assert result.delivery is Delivery.UNKNOWN and result.stage is Stage.DATA
    assert "may have been accepted" in result.text
    assert outcome(result).kind is OutcomeKind.UNKNOWN


async def test_server_closing_at_the_data_command_is_refused_not_unknown() -> None:
    async with ScriptedServer(script={"DATA": [CLOSE]}) as server:
        result = await submit(connection(server.endpoint()))
    assert result.delivery is Delivery.REFUSED and result.stage is Stage.DATA


async def test_refused_body_is_refused_with_the_servers_words_and_the_session_kept() -> None:
    spam = "550 5.7.520 Message blocked because it contains content identified as spam"
    async with ScriptedServer(script={"BODY": [spam]}) as server:
        conn = connection(server.endpoint())
        first = await submit(conn)
        second = await submit(conn)
    assert first.delivery is Delivery.REFUSED and first.code == 550
    assert first.text.startswith("5.7.520 Message blocked")
    assert outcome(first).kind is OutcomeKind.REJECTED
    assert second.accepted and server.connections == 1
    # RSET follows only the refused transaction, not the accepted one.
    assert server.verbs().count("RSET") == 1


# -- scripted: stalls at every stage --------------------------------------------------------


async def tls_then_silence(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Agree to STARTTLS, then never take part in the handshake."""
    writer.write(b"220 2.0.0 go ahead\r\n")
    await writer.drain()
    await asyncio.sleep(3600)
    return False


@pytest.mark.parametrize(
    ("verb", "security", "stage", "delivery", "kind"),
    [
        ("BANNER", "plain", Stage.CONNECT, Delivery.REFUSED, "connect"),
        ("EHLO", "plain", Stage.EHLO, Delivery.REFUSED, "command"),
        ("STARTTLS", "starttls", Stage.STARTTLS, Delivery.REFUSED, "command"),
        ("AUTH", "plain", Stage.AUTH, Delivery.REFUSED, "command"),
        ("MAIL", "plain", Stage.MAIL, Delivery.REFUSED, "command"),
        ("RCPT", "plain", Stage.RCPT, Delivery.REFUSED, "command"),
        ("DATA", "plain", Stage.DATA, Delivery.REFUSED, "command"),
        ("BODY", "plain", Stage.DATA, Delivery.UNKNOWN, "data"),
    ],
)
async def test_a_stalled_server_times_out_at_every_stage(
    verb: str, security: str, stage: Stage, delivery: Delivery, kind: str
) -> None:
    async with ScriptedServer(ehlo=("STARTTLS", "AUTH PLAIN"), script={verb: [STALL]}) as server:
        conn = connection(server.endpoint(security))
        result = await submit(conn)
    assert result.delivery is delivery and result.stage is stage
    assert f"within 0.2 s ({kind} timeout)" in result.text
    assert isinstance(result.error, TimeoutError)
    assert outcome(result).kind is expected_kind(result)
    assert not conn.is_open


async def test_a_stalled_tls_handshake_times_out_at_tls() -> None:
    async with ScriptedServer(ehlo=("STARTTLS",), script={"STARTTLS": [tls_then_silence]}) as s:
        result = await submit(connection(s.endpoint("starttls")))
    assert result.delivery is Delivery.REFUSED and result.stage is Stage.TLS
    assert "(connect timeout)" in result.text
    assert "AUTH" not in s.verbs()


async def test_timeouts_are_per_stage() -> None:
    # A slow final reply within the data timeout is fine although it exceeds the command one.
    async def slow_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.4)
        writer.write(b"250 2.0.0 OK slow\r\n")
        await writer.drain()
        return True

    timeouts = SmtpTimeouts(connect=2.0, command=0.2, data=2.0)
    async with ScriptedServer(script={"BODY": [slow_ok]}) as server:
        endpoint = SmtpEndpoint("127.0.0.1", server.port, "plain", timeouts=timeouts)
        result = await submit(connection(endpoint))
    assert result.accepted and result.text == "2.0.0 OK slow"


# -- scripted: TLS older than 1.2 -----------------------------------------------------------


def tls11_server_context(ca: trustme.CA) -> ssl.SSLContext:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def handshake_with(context: ssl.SSLContext) -> Action:
    """Answer STARTTLS, then run the server side of the handshake in memory.

    In memory, so the server's alert reaches the client before the socket closes.
    """

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"220 2.0.0 go ahead\r\n")
        await writer.drain()
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_side=True)
        while data := await reader.read(65536):
            incoming.write(data)
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                writer.write(outgoing.read())
                await writer.drain()
                return False
            writer.write(outgoing.read())
            await writer.drain()
        return False

    return run


async def test_a_server_offering_only_tls_1_1_is_refused_at_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    action = handshake_with(tls11_server_context(ca))
    async with ScriptedServer(ehlo=("STARTTLS",), script={"STARTTLS": [action]}) as server:
        result = await submit(connection(server.endpoint("starttls", ca_file=str(ca_file))))
    assert result.delivery is Delivery.REFUSED and result.stage is Stage.TLS
    assert "TLS handshake" in result.text
    assert isinstance(result.error, ssl.SSLError)
    classified = outcome(result)
    assert classified.kind is OutcomeKind.FIX_CONFIG and classified.rule == "tls.version"
    assert "AUTH" not in server.verbs()


async def test_implicit_tls_with_a_private_ca_authenticates_and_sends(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    async with ScriptedServer(tls=context) as server:
        result = await submit(connection(server.endpoint("tls", ca_file=str(ca_file))))
        untrusted = await submit(connection(server.endpoint("tls")))
    assert result.accepted and "AUTH" in server.verbs()
    assert untrusted.stage is Stage.TLS
    assert isinstance(untrusted.error, ssl.SSLCertVerificationError)


# -- the sandbox ----------------------------------------------------------------------------


class SessionCounter(MailboxBehaviour):
    """Counts authenticated sessions (each one TLS handshake) and the most open at once."""

    def __init__(self) -> None:
        self.logins = 0
        self.open = 0
        self.peak = 0

    async def on_auth(self, address: str, mechanism: str, now: datetime) -> Reply | None:
        self.logins += 1
        self.open += 1
        self.peak = max(self.peak, self.open)
        return None

    def on_disconnect(self, address: str, now: datetime) -> None:
        self.open -= 1


@dataclass
class World:
    sandbox: Sandbox
    clock: VirtualClock
    counter: SessionCounter
    tokens: FixedTokens

    def endpoint(self, max_sessions: int = 1) -> SmtpEndpoint:
        return SmtpEndpoint(
            self.sandbox.smtp_host,
            self.sandbox.smtp_port,
            "starttls",
            ca_file=str(self.sandbox.ca_file),
            timeouts=SmtpTimeouts(connect=3, command=3, data=3),
            max_sessions=max_sessions,
        )

    def credentials(self) -> SmtpCredentials:
        return SmtpCredentials(SENDER, tokens=self.tokens)

    def new_token(self) -> str:
        return self.sandbox.tokens.issue(TENANT, CLIENT_ID, CLIENT_SECRET, APP_SCOPE).value

    def sent(self) -> int:
        return self.sandbox.store.count(SENDER, SENT_ITEMS)


async def start_world(tmp_path: Path, hostnames: tuple[str, ...]) -> World:
    clock = VirtualClock(utc(2026, 3, 2, 9))
    tls = create_tls_material(tmp_path / "tls", hostnames)
    sandbox = Sandbox(clock, tls, "smtp.sandbox.test")
    counter = SessionCounter()
    sandbox.add_tenant(TENANT)
    sandbox.add_mailbox(SENDER, TENANT, password=PASSWORD, behaviour=counter)
    sandbox.register_app(TENANT, CLIENT_ID, CLIENT_SECRET)
    await sandbox.smtp.start()
    world = World(sandbox, clock, counter, FixedTokens(""))
    world.tokens.token = world.new_token()
    return world


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = await start_world(tmp_path, ("localhost", "127.0.0.1"))
    try:
        yield w
    finally:
        await w.sandbox.stop()


async def settle(condition: Callable[[], bool]) -> None:
    """Let the server side catch up (a disconnect is seen a loop turn or two later)."""
    async with asyncio.timeout(GUARD):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)


async def test_one_tls_session_carries_many_messages(world: World) -> None:
    pool = SmtpPool(world.clock)
    conn = pool.connection(1, world.endpoint(), world.credentials())
    results = [await submit(conn) for _ in range(20)]
    assert all(r.accepted for r in results), results[0]
    assert world.counter.logins == 1 and conn.sessions_opened == 1
    assert world.sent() == 20
    await pool.close_all()
    await settle(lambda: world.counter.open == 0)


async def test_a_refused_recipient_resets_and_the_session_carries_on(world: World) -> None:
    class RefuseFirst(SessionCounter):
        refused = False

        async def on_rcpt_to(self, address: str, recipient: str, now: datetime) -> Reply | None:
            if not self.refused:
                self.refused = True
                return Reply(550, "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found")
            return None

    behaviour = RefuseFirst()
    world.sandbox.set_behaviour(SENDER, behaviour)
    pool = SmtpPool(world.clock)
    conn = pool.connection(1, world.endpoint(), world.credentials())
    first, second = await submit(conn), await submit(conn)
    assert first.delivery is Delivery.REFUSED and first.stage is Stage.RCPT
    assert first.refused_recipients == {RECIPIENT: (550, first.text)}
    assert outcome(first).kind is OutcomeKind.DROP_RECIPIENT
    assert second.accepted and behaviour.logins == 1
    await pool.close_all()


async def test_after_421_the_next_message_reconnects(world: World) -> None:
    class ClosingOnce(SessionCounter):
        said = False

        async def on_mail_from(self, address: str, now: datetime) -> Reply | None:
            if not self.said:
                self.said = True
                return Reply(421, "4.3.2 Service not available, closing transmission channel")
            return None

    behaviour = ClosingOnce()
    world.sandbox.set_behaviour(SENDER, behaviour)
    pool = SmtpPool(world.clock)
    conn = pool.connection(1, world.endpoint(), world.credentials())
    first = await submit(conn)
    assert first.delivery is Delivery.REFUSED and first.stage is Stage.MAIL
    assert first.code == 421 and not conn.is_open
    assert outcome(first).kind is OutcomeKind.RETRY
    second = await submit(conn)
    assert second.accepted and behaviour.logins == 2
    await pool.close_all()


async def test_a_session_the_server_dropped_while_idle_is_reopened_transparently(
    world: World,
) -> None:
    pool = SmtpPool(world.clock)
    conn = pool.connection(1, world.endpoint(), world.credentials())
    assert (await submit(conn)).accepted
    for session in list(world.sandbox.smtp.sessions):
        session.close_connection()
    result = await submit(conn)
    assert result.accepted and world.counter.logins == 2 and world.sent() == 2
    await pool.close_all()


@pytest.mark.parametrize("limit", [1, 3])
async def test_never_more_sessions_than_the_limit_under_load(world: World, limit: int) -> None:
    pool = SmtpPool(world.clock)
    conn = pool.connection(1, world.endpoint(max_sessions=limit), world.credentials())
    results = await asyncio.gather(*(submit(conn) for _ in range(24)))
    assert all(r.accepted for r in results), [r.text for r in results if not r.accepted]
    assert world.counter.peak == limit
    assert conn.sessions_opened == limit and pool.open_sessions(1) == limit
    await pool.close_all()
    await settle(lambda: world.counter.open == 0)


def test_session_limit_takes_the_provider_limit_or_one_and_the_configured_cap() -> None:
    assert session_limit(None) == 1  # a provider without a stated limit gets one
    assert session_limit(3) == 3
    assert session_limit(3, configured=2) == 2
    assert session_limit(3, configured=10) == 3
    assert session_limit(None, configured=5) == 1
    assert session_limit(3, configured=0) == 1


async def test_idle_sessions_are_closed_by_the_pool(world: World) -> None:
    pool = SmtpPool(world.clock, idle_seconds=60)
    conn = pool.connection(1, world.endpoint(max_sessions=2), world.credentials())
    await asyncio.gather(submit(conn), submit(conn))
    assert pool.open_sessions(1) == 2
    world.clock.advance(30)
    assert await pool.close_idle() == 0
    world.clock.advance(31)
    assert await pool.close_idle() == 2
    assert pool.open_sessions(1) == 0
    await settle(lambda: world.counter.open == 0)
    assert (await submit(conn)).accepted and world.counter.logins == 3
    await pool.close_all()


async def test_a_renewed_token_opens_a_new_session(world: World) -> None:
    pool = SmtpPool(world.clock)
    conn = pool.connection(1, world.endpoint(), world.credentials())
    assert (await submit(conn)).accepted
    world.tokens.token = world.new_token()
    assert (await submit(conn)).accepted
    assert world.counter.logins == 2 and conn.sessions_opened == 2
    await settle(lambda: world.counter.open == 1)  # the old session said QUIT
    await pool.close_all()


async def test_a_rejected_token_is_535_at_auth_without_a_hang(world: World) -> None:
    world.tokens.token = "not-a-token"
    pool = SmtpPool(world.clock)
    result = await submit(pool.connection(1, world.endpoint(), world.credentials()))
    assert result.delivery is Delivery.REFUSED and result.stage is Stage.AUTH
    assert result.code == 535 and "5.7.3" in result.text
    assert outcome(result).refresh_token_first
    await pool.close_all()


async def test_password_login_on_the_sandbox_uses_login(world: World) -> None:
    pool = SmtpPool(world.clock)
    result = await submit(
        pool.connection(1, world.endpoint(), SmtpCredentials(SENDER, password=PASSWORD))
    )
    assert result.accepted and world.counter.logins == 1
    await pool.close_all()


async def test_close_waits_for_a_busy_session_then_closes_it(world: World) -> None:
    pool = SmtpPool(world.clock)
    conn = pool.connection(1, world.endpoint(), world.credentials())
    sending = asyncio.create_task(submit(conn))
    await settle(lambda: conn.in_use == 1)
    await conn.close()
    assert (await sending).accepted
    assert not conn.is_open
    await pool.close_all()


async def start_plaintext_listener(world: World) -> SubmissionServer:
    """The sandbox's benchmark/test-only plaintext listener, sharing the world's mailboxes."""
    sandbox = world.sandbox
    plain = SubmissionServer(
        clock=world.clock,
        directory=sandbox.directory,
        tokens=sandbox.tokens,
        tls_context=sandbox.tls.server_context,
        deliver=sandbox.deliver,
        plaintext=True,
    )
    await plain.start()
    return plain


async def test_plain_security_on_loopback_authenticates_in_the_clear(world: World) -> None:
    plain = await start_plaintext_listener(world)
    try:
        pool = SmtpPool(world.clock)
        endpoint = SmtpEndpoint(plain.host, plain.port, "plain", timeouts=SHORT)
        result = await submit(pool.connection(1, endpoint, world.credentials()))
        await pool.close_all()
    finally:
        await plain.stop()
    assert result.accepted and world.counter.logins == 1


async def test_starttls_endpoint_never_authenticates_on_a_server_without_it(world: World) -> None:
    plain = await start_plaintext_listener(world)
    try:
        pool = SmtpPool(world.clock)
        endpoint = SmtpEndpoint(plain.host, plain.port, "starttls", timeouts=SHORT)
        result = await submit(pool.connection(1, endpoint, world.credentials()))
    finally:
        await plain.stop()
    assert result.delivery is Delivery.REFUSED and result.stage is Stage.STARTTLS
    assert world.counter.logins == 0


async def test_a_certificate_for_another_host_is_refused_at_tls(tmp_path: Path) -> None:
    world = await start_world(tmp_path, ("mail.elsewhere.test",))
    try:
        pool = SmtpPool(world.clock)
        result = await submit(pool.connection(1, world.endpoint(), world.credentials()))
    finally:
        await world.sandbox.stop()
    assert result.delivery is Delivery.REFUSED and result.stage is Stage.TLS
    assert isinstance(result.error, ssl.SSLCertVerificationError)
    assert "failed verification" in result.text and "mismatch" in result.text.lower()
    classified = outcome(result)
    assert classified.kind is OutcomeKind.FIX_CONFIG and classified.rule == "tls.certificate"
    assert world.counter.logins == 0


async def test_an_untrusted_certificate_is_refused_at_tls(world: World) -> None:
    pool = SmtpPool(world.clock)
    endpoint = SmtpEndpoint(world.sandbox.smtp_host, world.sandbox.smtp_port, timeouts=SHORT)
    result = await submit(pool.connection(1, endpoint, world.credentials()))
    assert result.stage is Stage.TLS and isinstance(result.error, ssl.SSLCertVerificationError)
    assert world.counter.logins == 0


async def test_implicit_tls_against_a_starttls_port_is_a_wrong_mode(world: World) -> None:
    pool = SmtpPool(world.clock)
    endpoint = SmtpEndpoint(
        world.sandbox.smtp_host,
        world.sandbox.smtp_port,
        "tls",
        ca_file=str(world.sandbox.ca_file),
        timeouts=SHORT,
    )
    result = await submit(pool.connection(1, endpoint, world.credentials()))
    assert result.delivery is Delivery.REFUSED and result.stage is Stage.TLS
    assert outcome(result).kind is OutcomeKind.FIX_CONFIG


async def test_a_replaced_login_gets_new_sessions_and_the_old_ones_close(world: World) -> None:
    pool = SmtpPool(world.clock)
    old = pool.connection(1, world.endpoint(), world.credentials())
    assert (await submit(old)).accepted
    new = pool.connection(1, world.endpoint(), SmtpCredentials(SENDER, password=PASSWORD))
    assert new is not old and (await submit(new)).accepted
    await pool.close_idle()
    assert not old.is_open and new.is_open
    await pool.close_all()
    await settle(lambda: world.counter.open == 0)


async def test_cancelling_a_send_drops_its_session(world: World) -> None:
    pool = SmtpPool(world.clock)
    conn = pool.connection(1, world.endpoint(), world.credentials())
    assert (await submit(conn)).accepted
    task = asyncio.create_task(conn.submit(SENDER, [RECIPIENT], RAW))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert conn.in_use == 0
    assert (await submit(conn)).accepted
    await pool.close_all()


def test_timeouts_default_to_rfc_friendly_values() -> None:
    endpoint = SmtpEndpoint("smtp.office365.com", 587)
    assert endpoint.max_sessions == 1
    assert endpoint.timeouts.connect <= endpoint.timeouts.command <= endpoint.timeouts.data


# -- the body on the wire -------------------------------------------------------------------


@given(st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b"..", b" "]), max_size=40))
def test_the_body_on_the_wire_is_crlf_dot_stuffed_and_terminated(parts: list[bytes]) -> None:
    message = b"".join(parts)
    wire = wire_body(message)
    assert wire.endswith(b"\r\n.\r\n")
    lines = wire[: -len(b".\r\n")].split(b"\r\n")
    assert lines[-1] == b"" and all(b"\r" not in x and b"\n" not in x for x in lines)
    assert all(not x.startswith(b".") or x.startswith(b"..") for x in lines)
    unstuffed = b"\r\n".join(x[1:] if x.startswith(b".") else x for x in lines)
    expected = re.sub(rb"\r\n|\r|\n", b"\r\n", message)
    if not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert unstuffed == expected


def test_the_public_names_of_the_transport() -> None:
    assert set(smtp_module.__all__) == {
        "SECURITY_MODES",
        "Delivery",
        "MailboxConnection",
        "SmtpCredentials",
        "SmtpEndpoint",
        "SmtpPool",
        "SmtpTimeouts",
        "SubmitResult",
        "client_tls_context",
        "session_limit",
    }
