"""The IMAP client and ``check_imap_login`` against the sandbox and against servers that misbehave.

The sandbox gives Microsoft's behaviour (implicit TLS, XOAUTH2, its refusals, the
Sent Items copy of every submission); tiny scripted asyncio servers on 127.0.0.1
give the faults a real server shows rarely (a stall, a hang-up, Gmail's XOAUTH2
error challenge). Every test runs under a hang guard.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

import aiosmtplib
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailfleet.clock import VirtualClock, utc
from mailfleet.sandbox import INBOX, SENT_ITEMS, ImapServer, Sandbox, create_tls_material
from mailfleet.transport.imap import (
    ImapAuthenticationError,
    ImapClient,
    ImapCommandError,
    ImapConnectionError,
    ImapEndpoint,
    ImapTimeoutError,
    ImapTlsError,
    check_imap_login,
    header_criterion,
)
from mailfleet.transport.imap_wire import (
    decode_mailbox_name,
    encode_mailbox_name,
    expand_uid_set,
    parse_fetch,
    parse_list,
    uid_set,
)
from mailfleet.transport.oauth import AccessToken, TokenError

TENANT = "contoso.onmicrosoft.com"
SENDER = "alice@brand-mail.test"
PEER = "bob@brand-mail.test"
PASSWORD = "correct horse battery staple"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "s3cr3t~value"
APP_SCOPE = "https://outlook.office365.com/.default"
GUARD = 10.0  # a hang guard, not a timing assertion
T = TypeVar("T")


class FixedTokens:
    """A token provider handing out one token, or refusing like an identity provider."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    async def access_token(self, *, force_refresh: bool = False) -> AccessToken:
        if self.token is None:
            raise TokenError("token endpoint refused (401): AADSTS7000215: Invalid client secret")
        return AccessToken(self.token, utc(2100, 1, 1))


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(utc(2025, 3, 3, 9, 0, 0))


@pytest.fixture
async def box(clock: VirtualClock, tmp_path: Path) -> AsyncIterator[Sandbox]:
    """The sandbox with SMTP and IMAP listening; tokens are issued in-process."""
    tls = create_tls_material(tmp_path / "tls", ("localhost", "127.0.0.1"))
    sandbox = Sandbox(clock, tls, "smtp.sandbox.test")
    sandbox.add_tenant(TENANT)
    sandbox.add_mailbox(SENDER, TENANT, password=PASSWORD)
    sandbox.add_mailbox(PEER, TENANT)
    sandbox.register_app(TENANT, CLIENT_ID, CLIENT_SECRET)
    await sandbox.smtp.start()
    await sandbox.imap.start()
    try:
        yield sandbox
    finally:
        await sandbox.stop()


def token(box: Sandbox) -> str:
    return box.tokens.issue(TENANT, CLIENT_ID, CLIENT_SECRET, APP_SCOPE).value


def endpoint(box: Sandbox, **changes: object) -> ImapEndpoint:
    values: dict[str, object] = {
        "host": box.imap_host,
        "port": box.imap_port,
        "ca_file": str(box.ca_file),
        "timeout": 3.0,
    }
    values.update(changes)
    return ImapEndpoint(**values)  # type: ignore[arg-type]


async def guarded(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, GUARD)


async def submit(box: Sandbox, to: str, message_id: str) -> None:
    """Send one message from SENDER over the sandbox's SMTP: STARTTLS, then XOAUTH2."""
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = to
    msg["Subject"] = "Quick question"
    msg["Message-ID"] = message_id
    msg.set_content("Hello there.\n")
    smtp = aiosmtplib.SMTP(
        hostname=box.smtp_host,
        port=box.smtp_port,
        start_tls=True,
        tls_context=box.client_tls_context(),
        timeout=3,
    )
    await smtp.connect()
    await smtp.auth_xoauth2(SENDER, token(box))
    await smtp.send_message(msg)
    await smtp.quit()


# -- login and capabilities ----------------------------------------------------------------------


async def test_xoauth2_login_over_verified_tls(box: Sandbox) -> None:
    async with ImapClient(endpoint(box)) as client:
        assert client.greeting == "OK The Microsoft Exchange IMAP4 service is ready."
        assert client.tls is not None and client.tls.version in ("TLSv1.2", "TLSv1.3")
        capabilities = await guarded(client.capabilities())
        assert {"AUTH=XOAUTH2", "SASL-IR", "UIDPLUS", "MOVE", "IDLE"} <= capabilities
        assert "CONDSTORE" not in capabilities
        assert await guarded(client.login_xoauth2(SENDER, token(box))) == (
            "OK AUTHENTICATE completed."
        )


async def test_a_bad_token_is_an_authentication_error_with_the_exact_reply(box: Sandbox) -> None:
    async with ImapClient(endpoint(box)) as client:
        with pytest.raises(ImapAuthenticationError) as failure:
            await guarded(client.login_xoauth2(SENDER, "not-a-token"))
    assert failure.value.stage == "auth"
    assert failure.value.reply == "NO AUTHENTICATE failed."


async def test_a_token_expired_on_the_virtual_clock_is_refused(
    box: Sandbox, clock: VirtualClock
) -> None:
    issued = token(box)
    clock.advance(3599)
    async with ImapClient(endpoint(box)) as client:
        with pytest.raises(ImapAuthenticationError, match="AUTHENTICATE failed"):
            await guarded(client.login_xoauth2(SENDER, issued))


async def test_login_through_a_token_provider_or_a_password(box: Sandbox) -> None:
    async with ImapClient(endpoint(box)) as client:
        assert await guarded(client.login(SENDER, tokens=FixedTokens(token(box)))) == (
            "OK AUTHENTICATE completed."
        )
    async with ImapClient(endpoint(box)) as client:
        assert await guarded(client.login(SENDER, password=PASSWORD)) == "OK LOGIN completed."
    async with ImapClient(endpoint(box)) as client:
        with pytest.raises(ImapAuthenticationError) as failure:
            await guarded(client.login(PEER, password="nope"))
    assert failure.value.reply == "NO LOGIN failed."


# -- folders, search, fetch --------------------------------------------------------------------


async def test_list_folders_reports_junk_and_sent_special_use(box: Sandbox) -> None:
    async with ImapClient(endpoint(box)) as client:
        await guarded(client.login_xoauth2(SENDER, token(box)))
        folders = await guarded(client.list_folders())
    assert [(f.name, f.special_use) for f in folders] == [
        ("INBOX", None),
        ("Junk", "\\Junk"),
        ("Sent Items", "\\Sent"),
        ("Archive", "\\Archive"),
        ("Deleted Items", "\\Trash"),
    ]
    assert {f.delimiter for f in folders} == {"/"}


async def test_a_submission_is_fetched_from_the_inbox_and_from_sent_items(box: Sandbox) -> None:
    await submit(box, PEER, "<roundtrip@brand-mail.test>")
    seen: dict[str, bytes] = {}
    for user, folder in ((PEER, INBOX), (SENDER, SENT_ITEMS)):
        async with ImapClient(endpoint(box)) as client:
            await guarded(client.login_xoauth2(user, token(box)))
            status = await guarded(client.select(folder))
            stored = box.store.folder(user, folder)
            assert stored is not None
            assert (status.uid_validity, status.uid_next, status.exists) == (
                stored.uid_validity,
                stored.uid_next,
                1,
            )
            assert not status.read_only
            uids = await guarded(client.uid_search("ALL"))
            assert uids == [1]
            [message] = await guarded(client.uid_fetch(uids))
            seen[folder] = message.raw
            assert message.uid == 1
            assert message.internal_date == utc(2025, 3, 3, 9, 0, 0)
    for raw in seen.values():
        assert b"Message-ID: <roundtrip@brand-mail.test>" in raw
    assert box.store.messages(PEER, INBOX)[0].flags == set()  # BODY.PEEK: still unread


async def test_uid_search_finds_a_sent_message_by_message_id(box: Sandbox) -> None:
    for n in range(3):
        await submit(box, PEER, f"<m{n}@brand-mail.test>")
    async with ImapClient(endpoint(box)) as client:
        await guarded(client.login_xoauth2(SENDER, token(box)))
        await guarded(client.select(SENT_ITEMS, read_only=True))
        assert await guarded(
            client.uid_search(*header_criterion("Message-ID", "<m1@brand-mail.test>"))
        ) == [2]
        assert await guarded(client.uid_search("UID", "2:*")) == [2, 3]
        fetched = await guarded(client.uid_fetch([1, 3]))
    assert [m.uid for m in fetched] == [1, 3]
    assert all("\\Seen" in m.flags for m in fetched)  # Sent Items copies are filed read


async def test_a_command_out_of_order_is_a_command_error_and_the_session_lives_on(
    box: Sandbox,
) -> None:
    async with ImapClient(endpoint(box)) as client:
        await guarded(client.login_xoauth2(SENDER, token(box)))
        with pytest.raises(ImapCommandError, match="illegal in state AUTH"):
            await guarded(client.uid_search("ALL"))
        with pytest.raises(ImapCommandError) as failure:
            await guarded(client.select("No Such Folder"))
        assert failure.value.status == "NO"
        assert (await guarded(client.select(INBOX))).exists == 0


async def test_store_and_move_rescue_a_message_from_junk(box: Sandbox) -> None:
    box.store.append(
        PEER,
        "Junk",
        b"Message-ID: <warm@peer.test>\r\nSubject: hi\r\n\r\nhello\r\n",
        sender="peer@warm.test",
        recipients=[PEER],
        received_at=box.clock.now(),
    )
    async with ImapClient(endpoint(box)) as client:
        await guarded(client.login_xoauth2(PEER, token(box)))
        await guarded(client.select("Junk"))
        await guarded(client.uid_store([1], ["\\Seen", "\\Flagged"]))
        moved = await guarded(client.uid_move([1], INBOX))
    assert moved == {1: 1}
    [rescued] = box.store.messages(PEER, INBOX)
    assert rescued.flags == {"\\Seen", "\\Flagged"}
    assert box.store.count(PEER, "Junk") == 0


# -- TLS ------------------------------------------------------------------------------------------


async def test_without_the_sandbox_ca_the_certificate_is_refused(box: Sandbox) -> None:
    client = ImapClient(endpoint(box, ca_file=None))
    with pytest.raises(ImapTlsError) as failure:
        await guarded(client.connect())
    assert failure.value.stage == "tls"
    assert "certificate verification failed" in failure.value.text


async def test_a_server_offering_only_tls_1_1_is_refused(tmp_path: Path) -> None:
    material = create_tls_material(tmp_path, ("127.0.0.1",))
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.load_cert_chain(material.cert_file, material.key_file)

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK ready\r\n")
        await writer.drain()

    server = await asyncio.start_server(greet, "127.0.0.1", 0, ssl=old)
    port = server.sockets[0].getsockname()[1]
    try:
        ep = ImapEndpoint("127.0.0.1", port, ca_file=str(material.ca_file), timeout=3)
        with pytest.raises(ImapTlsError):
            await guarded(ImapClient(ep).connect())
        check = await guarded(check_imap_login(ep, SENDER, password="x"))
    finally:
        server.close()
        await server.wait_closed()
    assert [(s.step, s.ok) for s in check.steps] == [("connect", True), ("tls", False)]
    assert "TLS 1.2" in check.steps[-1].remedy


async def test_starttls_endpoint_upgrades_before_logging_in(
    box: Sandbox, clock: VirtualClock
) -> None:
    plain = ImapServer(
        clock=clock,
        directory=box.directory,
        tokens=box.tokens,
        store=box.store,
        tls_context=box.tls.server_context,
        security="starttls",
    )
    await plain.start()
    try:
        ep = endpoint(box, port=plain.port, security="starttls")
        check = await guarded(check_imap_login(ep, SENDER, tokens=FixedTokens(token(box))))
        # Over plaintext (allowed to loopback only) the server forbids any login.
        client = ImapClient(endpoint(box, port=plain.port, security="plain"))
        await guarded(client.connect())
        assert "LOGINDISABLED" in await guarded(client.capabilities())
        with pytest.raises(ImapAuthenticationError, match="XOAUTH2"):
            await guarded(client.login_xoauth2(SENDER, token(box)))
        await client.logout()
    finally:
        await plain.stop()
    assert [s.step for s in check.steps] == [
        "connect",
        "greeting",
        "starttls",
        "tls",
        "capabilities",
        "token",
        "auth",
        "list",
    ]
    assert check.ok


# -- check_imap_login ------------------------------------------------------------------------------


async def test_check_walks_every_step_with_the_servers_words(box: Sandbox) -> None:
    check = await guarded(check_imap_login(endpoint(box), SENDER, tokens=FixedTokens(token(box))))
    assert check.ok and check.failed is None
    assert [s.step for s in check.steps] == [
        "connect",
        "tls",
        "greeting",
        "capabilities",
        "token",
        "auth",
        "list",
    ]
    replies = {s.step: s.reply for s in check.steps}
    assert replies["greeting"] == "OK The Microsoft Exchange IMAP4 service is ready."
    assert replies["tls"].startswith(("TLSv1.2 ", "TLSv1.3 "))
    assert "AUTH=XOAUTH2" in replies["capabilities"]
    assert "audience https://outlook.office365.com" in replies["token"]
    assert replies["auth"] == "OK AUTHENTICATE completed."
    assert (
        replies["list"]
        == "INBOX, Junk (\\Junk), Sent Items (\\Sent), Archive (\\Archive), Deleted Items (\\Trash)"
    )
    assert check.tls is not None
    assert [f.name for f in check.folders] == [
        "INBOX",
        "Junk",
        "Sent Items",
        "Archive",
        "Deleted Items",
    ]


async def test_check_explains_a_refused_token(box: Sandbox) -> None:
    box.imap.set_imap_enabled(PEER, False)
    check = await guarded(check_imap_login(endpoint(box), PEER, tokens=FixedTokens(token(box))))
    failed = check.failed
    assert failed is not None and check.steps[-1] is failed
    assert (failed.step, failed.reply) == ("auth", "NO AUTHENTICATE failed.")
    for hint in (
        "IMAP.AccessAsApp",
        "IMAP.AccessAsUser.All",
        f"Add-MailboxPermission -Identity {PEER}",
        f"Set-CASMailbox -Identity {PEER} -ImapEnabled $true",
    ):
        assert hint in failed.remedy


async def test_check_with_a_password(box: Sandbox) -> None:
    check = await guarded(check_imap_login(endpoint(box), SENDER, password=PASSWORD))
    assert check.ok
    assert "token" not in [s.step for s in check.steps]
    bad = await guarded(check_imap_login(endpoint(box), SENDER, password="wrong"))
    assert bad.failed is not None
    assert (bad.failed.step, bad.failed.reply) == ("auth", "NO LOGIN failed.")
    assert "OAuth" in bad.failed.remedy


async def test_check_stops_at_a_graph_token_before_trying_it(box: Sandbox) -> None:
    graph = box.tokens.issue(
        TENANT, CLIENT_ID, CLIENT_SECRET, "https://graph.microsoft.com/.default"
    )
    check = await guarded(check_imap_login(endpoint(box), SENDER, tokens=FixedTokens(graph.value)))
    assert check.failed is not None
    assert check.failed.step == "token"
    assert "graph.microsoft.com" in check.failed.reply
    assert "outlook.office365.com/.default" in check.failed.remedy


async def test_check_reports_a_token_the_identity_provider_refused(box: Sandbox) -> None:
    check = await guarded(check_imap_login(endpoint(box), SENDER, tokens=FixedTokens(None)))
    assert check.failed is not None
    assert (check.failed.step, check.failed.ok) == ("token", False)
    assert "AADSTS7000215" in check.failed.reply


async def test_check_reports_an_untrusted_certificate(box: Sandbox) -> None:
    check = await guarded(check_imap_login(endpoint(box, ca_file=None), SENDER, password="x"))
    assert [(s.step, s.ok) for s in check.steps] == [("connect", True), ("tls", False)]
    assert "ca_file" in check.steps[-1].remedy


async def test_check_reports_a_closed_port() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    check = await guarded(
        check_imap_login(ImapEndpoint("127.0.0.1", port, timeout=2), SENDER, password="x")
    )
    assert [(s.step, s.ok) for s in check.steps] == [("connect", False)]
    assert "outlook.office365.com:993" in check.steps[0].remedy


# -- servers that misbehave ------------------------------------------------------------------------

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[ImapEndpoint]:
    """A plaintext server on loopback running ``script`` per connection.

    On exit it waits for the connections' handlers, which end when the client hangs up.
    """
    handlers: set[asyncio.Task[None]] = set()

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await script(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(run, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield ImapEndpoint("127.0.0.1", port, security="plain", timeout=0.3)
    finally:
        server.close()
        await server.wait_closed()
        if handlers:
            await asyncio.wait(handlers, timeout=GUARD)


CAPS = b"* CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR\r\n"


async def answer_capability(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    tag = (await reader.readline()).split()[0]
    writer.write(CAPS + tag + b" OK CAPABILITY completed.\r\n")
    await writer.drain()


async def test_a_stalled_server_is_a_timeout_not_a_hang() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK ready\r\n")
        await writer.drain()
        await reader.read()  # never answers

    async with scripted(stall) as ep:
        client = ImapClient(ep)
        await guarded(client.connect())
        with pytest.raises(ImapTimeoutError) as failure:
            await guarded(client.capabilities())
        assert failure.value.stage == "capabilities"
        assert not client.is_connected
        with pytest.raises(ImapConnectionError, match="closed by the client"):
            await guarded(client.capabilities())


async def test_a_server_that_hangs_up_is_a_connection_error_with_its_bye() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK ready\r\n")
        await writer.drain()
        await reader.readline()
        writer.write(b"* BYE Too many connections\r\n")
        await writer.drain()

    async with scripted(hang_up) as ep:
        client = ImapClient(ep)
        await guarded(client.connect())
        with pytest.raises(ImapConnectionError) as failure:
            await guarded(client.capabilities())
    assert (failure.value.status, failure.value.text) == ("BYE", "Too many connections")


async def test_a_bye_greeting_is_reported_as_the_greeting_step() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* BYE Connection refused: too many sessions\r\n")
        await writer.drain()

    async with scripted(refuse) as ep:
        check = await guarded(check_imap_login(ep, SENDER, password="x"))
    assert [(s.step, s.ok) for s in check.steps] == [("connect", True), ("greeting", False)]
    assert check.steps[-1].reply == "BYE Connection refused: too many sessions"


async def test_gmails_xoauth2_error_challenge_is_answered_and_decoded() -> None:
    error = base64.b64encode(json.dumps({"status": "400", "schemes": "Bearer"}).encode())
    received: list[bytes] = []

    async def gmail(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK Gimap ready\r\n")
        await writer.drain()
        await answer_capability(reader, writer)
        line = await reader.readline()
        tag = line.split()[0]
        writer.write(b"+ " + error + b"\r\n")
        await writer.drain()
        received.append(await reader.readline())  # the client must answer
        writer.write(tag + b" NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\r\n")
        await writer.drain()
        await reader.read()

    async with scripted(gmail) as ep:
        client = ImapClient(ep)
        await guarded(client.connect())
        with pytest.raises(ImapAuthenticationError) as failure:
            await guarded(client.login_xoauth2(SENDER, "expired"))
        client.close()
    assert received == [b"\r\n"]
    assert failure.value.reply == "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)"
    assert '"status":"400"' in failure.value.detail


async def test_xoauth2_without_sasl_ir_sends_the_response_on_the_continuation() -> None:
    lines: list[bytes] = []

    async def no_sasl_ir(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK ready\r\n")
        await writer.drain()
        tag = (await reader.readline()).split()[0]
        writer.write(b"* CAPABILITY IMAP4rev1 AUTH=XOAUTH2\r\n" + tag + b" OK done\r\n")
        await writer.drain()
        lines.append(await reader.readline())
        writer.write(b"+ \r\n")
        await writer.drain()
        lines.append(await reader.readline())
        tag = lines[0].split()[0]
        writer.write(tag + b" OK AUTHENTICATE completed.\r\n")
        await writer.drain()
        await reader.read()

    async with scripted(no_sasl_ir) as ep:
        client = ImapClient(ep)
        await guarded(client.connect())
        assert await guarded(client.login_xoauth2(SENDER, "tok")) == "OK AUTHENTICATE completed."
        client.close()
    assert lines[0].split()[1:] == [b"AUTHENTICATE", b"XOAUTH2"]
    assert base64.b64decode(lines[1]) == f"user={SENDER}\x01auth=Bearer tok\x01\x01".encode()


def test_plain_is_refused_for_credentials_to_a_remote_host() -> None:
    client = ImapClient(ImapEndpoint("imap.example.com", 143, security="plain"))
    with pytest.raises(ImapAuthenticationError, match="without TLS"):
        client._refuse_plaintext()
    with pytest.raises(ValueError, match="security"):
        ImapEndpoint("imap.example.com", security="ssl")


# -- pure parsing ---------------------------------------------------------------------------------


def test_parse_list_reads_quoted_literal_and_nil_delimiters() -> None:
    lines: list[bytes | bytearray] = [
        b'(\\HasNoChildren \\Sent) "/" "Sent Items"',
        b'(\\HasNoChildren) "/" {10}',
        bytearray(b"Junk Email"),
        b'(\\Noselect) NIL "Say \\"hi\\""',
        b'(\\HasNoChildren) "/" &AMk-l&AOk-ments',
    ]
    folders = parse_list(lines)
    assert [(f.name, f.delimiter, f.special_use) for f in folders] == [
        ("Sent Items", "/", "\\Sent"),
        ("Junk Email", "/", None),
        ('Say "hi"', None, None),
        ("Éléments", "/", None),
    ]


def test_parse_fetch_skips_unsolicited_flag_updates() -> None:
    lines: list[bytes | bytearray] = [
        b"3 FETCH (FLAGS (\\Seen))",
        b"1 FETCH (UID 7 FLAGS (\\Seen \\Flagged) BODY[] {5}",
        bytearray(b"hello"),
        b")",
        b'2 FETCH (UID 9 INTERNALDATE "03-Mar-2025 09:00:00 +0000" BODY[] {2}',
        bytearray(b"hi"),
        b" FLAGS ())",
    ]
    messages = parse_fetch(lines)
    assert [(m.uid, m.raw, m.flags) for m in messages] == [
        (7, b"hello", frozenset({"\\Seen", "\\Flagged"})),
        (9, b"hi", frozenset()),
    ]
    assert messages[1].internal_date == utc(2025, 3, 3, 9, 0, 0)


@given(st.text())
def test_mailbox_names_survive_modified_utf7(name: str) -> None:
    encoded = encode_mailbox_name(name)
    assert encoded.isascii()
    assert decode_mailbox_name(encoded) == name


@given(st.lists(st.integers(min_value=1, max_value=10_000), min_size=1))
def test_uid_sets_are_compact_and_exact(uids: list[int]) -> None:
    text = uid_set(uids)
    assert expand_uid_set(text) == sorted(set(uids))
    assert text.count(",") < len(set(uids))


def test_uid_set_ranges() -> None:
    assert uid_set([5, 1, 2, 3, 9, 10]) == "1:3,5,9:10"
