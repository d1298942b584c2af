"""The sandbox IMAP server behaves like outlook.office365.com:993 and serves the SMTP mail.

These tests talk raw IMAP over TLS (a few lines of asyncio streams), so what is
asserted is exactly what a client would read on the wire.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailfleet.clock import VirtualClock
from mailfleet.sandbox import INBOX, JUNK, SENT_ITEMS, Sandbox, create_tls_material

from .support import (
    HOSTNAME,
    PASSWORD,
    PEER,
    SENDER,
    STEP_TIMEOUT,
    TENANT,
    app_token,
    populate,
    smtp_client,
)
from .test_sandbox_tls import loose_client_context

GREETING = b"* OK The Microsoft Exchange IMAP4 service is ready."
CAPABILITY = (
    b"* CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID CHILDREN IDLE LITERAL+"
)


class RawImap:
    """A line-level IMAP client: sends commands, returns the lines exactly as received."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._tag = 0

    @classmethod
    async def open(cls, box: Sandbox, context: ssl.SSLContext | None = None) -> RawImap:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                box.imap_host,
                box.imap_port,
                ssl=context or box.client_tls_context(),
                server_hostname="127.0.0.1",
            ),
            STEP_TIMEOUT,
        )
        return cls(reader, writer)

    async def line(self) -> bytes:
        """One response line; a literal ``{n}`` is read and joined into it."""
        line = await asyncio.wait_for(self.reader.readline(), STEP_TIMEOUT)
        literal = re.search(rb"\{(\d+)\}\r\n$", line)
        if literal:
            data = await self.reader.readexactly(int(literal.group(1)))
            return line[: literal.start()] + data + await self.line()
        return line.rstrip(b"\r\n")

    async def send(self, text: str) -> None:
        self.writer.write(text.encode() + b"\r\n")
        await self.writer.drain()

    async def command(self, text: str) -> tuple[list[bytes], bytes]:
        """Run one tagged command; returns (untagged lines, the tagged reply after the tag)."""
        self._tag += 1
        tag = f"a{self._tag}"
        await self.send(f"{tag} {text}")
        untagged: list[bytes] = []
        while True:
            line = await self.line()
            if line.startswith(tag.encode() + b" "):
                return untagged, line[len(tag) + 1 :]
            untagged.append(line)

    async def xoauth2(self, user: str, token: str) -> bytes:
        blob = base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode()
        _, reply = await self.command(f"AUTHENTICATE XOAUTH2 {blob}")
        return reply

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


@pytest.fixture
async def imap_sandbox(clock: VirtualClock, tmp_path: Path) -> AsyncIterator[Sandbox]:
    """SMTP and IMAP listening (no HTTP token service: tokens are issued in-process)."""
    tls = create_tls_material(tmp_path / "tls", ("localhost", "127.0.0.1"))
    box = populate(Sandbox(clock, tls, HOSTNAME))
    await box.smtp.start()
    await box.imap.start()
    try:
        yield box
    finally:
        await box.stop()


@pytest.fixture
async def imap(imap_sandbox: Sandbox) -> AsyncIterator[RawImap]:
    """A connection that has read the greeting."""
    client = await RawImap.open(imap_sandbox)
    assert await client.line() == GREETING
    try:
        yield client
    finally:
        await client.close()


async def submit(box: Sandbox, to: str, message_id: str, subject: str = "Quick question") -> None:
    """Send one message from SENDER through the sandbox's SMTP (STARTTLS + XOAUTH2)."""
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content("Hello there.\n")
    smtp = smtp_client(box)
    await smtp.connect()
    await smtp.starttls()
    await smtp.auth_xoauth2(SENDER, app_token(box))
    await smtp.send_message(msg)
    await smtp.quit()


# -- greeting, capabilities, TLS ------------------------------------------------------------


async def test_listens_on_loopback_with_exchanges_greeting_and_capabilities(
    imap_sandbox: Sandbox, imap: RawImap
) -> None:
    assert imap_sandbox.imap_host == "127.0.0.1"
    assert imap_sandbox.imap_port > 0
    untagged, reply = await imap.command("CAPABILITY")
    assert untagged == [CAPABILITY]
    assert reply.startswith(b"OK")
    assert b"CONDSTORE" not in untagged[0]
    assert b"STARTTLS" not in untagged[0]  # implicit TLS, like port 993


async def test_implicit_tls_is_tls_1_2_or_newer(imap: RawImap) -> None:
    ssl_object = imap.writer.get_extra_info("ssl_object")
    assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")


async def test_tls_1_1_is_refused_and_recorded(imap_sandbox: Sandbox) -> None:
    context = loose_client_context(imap_sandbox.ca_file, ssl.TLSVersion.TLSv1_1)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await RawImap.open(imap_sandbox, context)
    for _ in range(50):  # the server records the failure right after the handshake
        if imap_sandbox.imap.tls_failures:
            break
        await asyncio.sleep(0.01)
    assert imap_sandbox.imap.tls_failures


async def test_a_client_that_does_not_trust_the_sandbox_ca_fails(imap_sandbox: Sandbox) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        await RawImap.open(imap_sandbox, ssl.create_default_context())


# -- XOAUTH2 and passwords ---------------------------------------------------------------------


async def test_xoauth2_with_an_app_token_logs_in(imap_sandbox: Sandbox, imap: RawImap) -> None:
    assert await imap.xoauth2(SENDER, app_token(imap_sandbox)) == b"OK AUTHENTICATE completed."
    _, reply = await imap.command("SELECT INBOX")
    assert reply.startswith(b"OK [READ-WRITE]")


async def test_xoauth2_with_a_delegated_imap_token_logs_in(
    imap_sandbox: Sandbox, imap: RawImap
) -> None:
    token = imap_sandbox.tokens.issue_delegated(
        PEER, scopes=("https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access")
    )
    assert await imap.xoauth2(PEER, token.value) == b"OK AUTHENTICATE completed."


async def test_xoauth2_without_initial_response_takes_the_continuation(
    imap_sandbox: Sandbox, imap: RawImap
) -> None:
    await imap.send("a1 AUTHENTICATE XOAUTH2")
    assert await imap.line() == b"+ "
    token = app_token(imap_sandbox)
    await imap.send(
        base64.b64encode(f"user={SENDER}\x01auth=Bearer {token}\x01\x01".encode()).decode()
    )
    assert await imap.line() == b"a1 OK AUTHENTICATE completed."


@pytest.mark.parametrize(
    "case", ["unknown", "expired", "smtp_only_delegated", "smtp_only_app", "other_mailbox"]
)
async def test_xoauth2_refusals_all_read_authenticate_failed(
    imap_sandbox: Sandbox, imap: RawImap, clock: VirtualClock, case: str
) -> None:
    user = SENDER
    if case == "unknown":
        token = "not-a-token"
    elif case == "expired":
        token = app_token(imap_sandbox)
        clock.advance(3600)
    elif case == "smtp_only_delegated":
        token = imap_sandbox.tokens.issue_delegated(SENDER).value  # SMTP.Send only
    elif case == "smtp_only_app":
        imap_sandbox.tokens.register_app(TENANT, "smtp-app", "s", protocols=["SMTP"])
        token = imap_sandbox.tokens.issue(
            TENANT, "smtp-app", "s", "https://outlook.office365.com/.default"
        ).value
    else:
        token = imap_sandbox.tokens.issue_delegated(
            PEER, scopes=("https://outlook.office.com/IMAP.AccessAsUser.All",)
        ).value
    assert await imap.xoauth2(user, token) == b"NO AUTHENTICATE failed."
    _, reply = await imap.command("SELECT INBOX")
    assert reply.startswith(b"BAD")  # still not logged in


async def test_malformed_xoauth2_is_refused_the_same_way(imap: RawImap) -> None:
    blob = base64.b64encode(b"garbage").decode()
    _, reply = await imap.command(f"AUTHENTICATE XOAUTH2 {blob}")
    assert reply == b"NO AUTHENTICATE failed."


async def test_imap_disabled_for_the_mailbox_refuses_a_valid_token(
    imap_sandbox: Sandbox, imap: RawImap
) -> None:
    imap_sandbox.imap.set_imap_enabled(SENDER, False)
    assert await imap.xoauth2(SENDER, app_token(imap_sandbox)) == b"NO AUTHENTICATE failed."
    imap_sandbox.imap.set_imap_enabled(SENDER, True)
    assert await imap.xoauth2(SENDER, app_token(imap_sandbox)) == b"OK AUTHENTICATE completed."


async def test_login_works_only_for_password_mailboxes(imap: RawImap) -> None:
    _, reply = await imap.command(f'LOGIN {PEER} "anything"')
    assert reply == b"NO LOGIN failed."
    _, reply = await imap.command(f'LOGIN {SENDER} "wrong"')
    assert reply == b"NO LOGIN failed."
    _, reply = await imap.command(f'LOGIN {SENDER} "{PASSWORD}"')
    assert reply == b"OK LOGIN completed."


async def test_auth_plain_for_a_password_mailbox(imap: RawImap) -> None:
    blob = base64.b64encode(f"\x00{SENDER}\x00{PASSWORD}".encode()).decode()
    _, reply = await imap.command(f"AUTHENTICATE PLAIN {blob}")
    assert reply == b"OK AUTHENTICATE completed."


# -- folders and the shared MailStore ------------------------------------------------------------


async def test_list_marks_junk_and_sent_items_special_use(
    imap_sandbox: Sandbox, imap: RawImap
) -> None:
    await imap.xoauth2(SENDER, app_token(imap_sandbox))
    untagged, reply = await imap.command('LIST "" "*"')
    assert reply.startswith(b"OK")
    assert untagged == [
        b'* LIST (\\HasNoChildren) "/" INBOX',
        b'* LIST (\\HasNoChildren \\Junk) "/" Junk',
        b'* LIST (\\HasNoChildren \\Sent) "/" "Sent Items"',
        b'* LIST (\\HasNoChildren \\Archive) "/" Archive',
        b'* LIST (\\HasNoChildren \\Trash) "/" "Deleted Items"',
    ]


async def test_submitted_mail_is_in_the_recipients_inbox_and_the_senders_sent_items(
    imap_sandbox: Sandbox,
) -> None:
    await submit(imap_sandbox, PEER, "<imap-1@brand-mail.test>")

    for user, folder in ((PEER, INBOX), (SENDER, SENT_ITEMS)):
        client = await RawImap.open(imap_sandbox)
        await client.line()
        await client.xoauth2(user, app_token(imap_sandbox))
        untagged, _ = await client.command(f'SELECT "{folder}"')
        stored = imap_sandbox.store.folder(user, folder)
        assert stored is not None
        assert f"* OK [UIDVALIDITY {stored.uid_validity}]".encode() in b"\n".join(untagged)
        assert b"* 1 EXISTS" in untagged
        untagged, _ = await client.command("UID SEARCH ALL")
        assert untagged == [b"* SEARCH 1"]
        untagged, reply = await client.command("UID FETCH 1 (UID BODY.PEEK[])")
        assert reply == b"OK UID FETCH completed."
        assert b"Message-ID: <imap-1@brand-mail.test>" in untagged[0]
        assert b"UID 1" in untagged[0]
        await client.close()


async def test_search_by_message_id_finds_the_sent_copy(imap_sandbox: Sandbox) -> None:
    await submit(imap_sandbox, PEER, "<first@brand-mail.test>")
    await submit(imap_sandbox, PEER, "<second@brand-mail.test>")
    client = await RawImap.open(imap_sandbox)
    await client.line()
    await client.xoauth2(SENDER, app_token(imap_sandbox))
    await client.command('SELECT "Sent Items"')
    untagged, _ = await client.command('UID SEARCH HEADER Message-ID "<second@brand-mail.test>"')
    assert untagged == [b"* SEARCH 2"]
    await client.close()


async def test_store_move_and_expunge_write_through_to_the_mailstore(
    imap_sandbox: Sandbox, imap: RawImap
) -> None:
    await submit(imap_sandbox, PEER, "<a@brand-mail.test>")
    await submit(imap_sandbox, PEER, "<b@brand-mail.test>")
    await imap.xoauth2(PEER, app_token(imap_sandbox))
    await imap.command("SELECT INBOX")

    _, reply = await imap.command("UID STORE 1 +FLAGS.SILENT (\\Seen \\Flagged)")
    assert reply.startswith(b"OK")
    assert imap_sandbox.store.messages(PEER, INBOX)[0].flags == {"\\Seen", "\\Flagged"}

    junk = imap_sandbox.store.folder(PEER, JUNK)
    assert junk is not None
    untagged, reply = await imap.command("UID MOVE 2 Junk")
    assert reply == b"OK UID MOVE completed."
    assert f"* OK [COPYUID {junk.uid_validity} 2 1] Moved.".encode() in untagged
    assert [m.message_id for m in imap_sandbox.store.messages(PEER, JUNK)] == [
        "<b@brand-mail.test>"
    ]
    assert [m.uid for m in imap_sandbox.store.messages(PEER, INBOX)] == [1]

    await imap.command("UID STORE 1 +FLAGS.SILENT (\\Deleted)")
    _, reply = await imap.command("EXPUNGE")
    assert reply.startswith(b"OK")
    assert imap_sandbox.store.count(PEER, INBOX) == 0
    # UIDs never come back: the next delivery gets 3, as IMAP requires.
    await submit(imap_sandbox, PEER, "<c@brand-mail.test>")
    assert [m.uid for m in imap_sandbox.store.messages(PEER, INBOX)] == [3]


async def test_a_delivery_during_idle_is_pushed(imap_sandbox: Sandbox, imap: RawImap) -> None:
    await imap.xoauth2(PEER, app_token(imap_sandbox))
    await imap.command("SELECT INBOX")
    await imap.send("i1 IDLE")
    assert await imap.line() == b"+ Idling."
    await submit(imap_sandbox, PEER, "<idle@brand-mail.test>")
    assert await imap.line() == b"* 1 EXISTS"
    await imap.send("DONE")
    while (line := await imap.line()).startswith(b"*"):
        pass
    assert line == b"i1 OK IDLE completed."


async def test_a_delivery_after_select_shows_on_noop(imap_sandbox: Sandbox, imap: RawImap) -> None:
    await imap.xoauth2(PEER, app_token(imap_sandbox))
    await imap.command("SELECT INBOX")
    imap_sandbox.store.append(
        PEER,
        INBOX,
        b"Subject: x\r\n\r\nhi\r\n",
        sender="x@y.test",
        recipients=[PEER],
        received_at=imap_sandbox.clock.now(),
    )
    untagged, _ = await imap.command("NOOP")
    assert b"* 1 EXISTS" in untagged


async def test_stop_says_bye_to_open_sessions_and_is_idempotent(
    clock: VirtualClock, tmp_path: Path
) -> None:
    before = asyncio.all_tasks()
    tls = create_tls_material(tmp_path / "tls", ("localhost", "127.0.0.1"))
    box = populate(Sandbox(clock, tls, HOSTNAME))
    await box.imap.start()
    client = await RawImap.open(box)
    await client.line()
    await client.xoauth2(SENDER, app_token(box))
    await client.command("SELECT INBOX")
    idle = await RawImap.open(box)
    await idle.line()
    await idle.xoauth2(PEER, app_token(box))
    await idle.command("SELECT INBOX")
    await idle.send("i1 IDLE")
    await idle.line()

    await asyncio.wait_for(box.stop(), timeout=STEP_TIMEOUT)

    assert (await client.line()).startswith(b"* BYE")
    assert asyncio.all_tasks() - before == set()
    with pytest.raises(OSError):
        await asyncio.open_connection(box.imap_host, box.imap_port)
    await box.stop()
    await client.close()
    await idle.close()


async def test_the_app_registration_scopes_imap_access_to_its_mailboxes(
    imap_sandbox: Sandbox, imap: RawImap
) -> None:
    imap_sandbox.tokens.register_app(TENANT, "scoped", "s", mailboxes=[PEER])
    token = imap_sandbox.tokens.issue(
        TENANT, "scoped", "s", "https://outlook.office365.com/.default"
    ).value
    assert await imap.xoauth2(SENDER, token) == b"NO AUTHENTICATE failed."
    assert await imap.xoauth2(PEER, token) == b"OK AUTHENTICATE completed."
