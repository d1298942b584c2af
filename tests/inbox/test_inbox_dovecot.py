"""The inbox sync against a real Dovecot: IMAP and POP3 over TLS, XOAUTH2 through its oauth2 passdb.

What a mocked server cannot prove: mail an MDA drops into a Maildir while the sync
IDLEs is picked up; a reply filed in Junk is moved out; nothing is read twice
after a restart; a folder whose UIDVALIDITY changed is re-read without duplicate
events; POP3 UIDLs are remembered and nothing is deleted; a token is checked by
the server's own introspection, and a bad one is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailfleet.clock import SystemClock
from mailfleet.engine.inbox import InboxSettings, InboxSync
from mailfleet.store import (
    Campaign,
    CampaignStatus,
    Database,
    Domain,
    Enrollment,
    EnrollmentStatus,
    Event,
    InboundMessage,
    Lead,
    Mailbox,
    Send,
    SendStatus,
    Step,
    Workspace,
)
from mailfleet.transport.imap import ImapEndpoint, check_imap_login
from mailfleet.transport.oauth import AccessToken
from mailfleet.transport.pop3 import Pop3AuthenticationError, Pop3Client, Pop3Endpoint
from mailfleet.transport.smtp import SmtpCredentials

from .dovecot import IMAP_SCOPE, PASSWORD, POP_SCOPE, Dovecot

SETTINGS = InboxSettings(
    concurrency=4,
    poll_interval=timedelta(seconds=30),
    idle_renew=timedelta(seconds=30),
    backoff_base=timedelta(milliseconds=50),
    backoff_max=timedelta(milliseconds=200),
    mailbox_refresh=timedelta(milliseconds=200),
    timeout=10.0,
)
GUARD = 15.0  # a hang guard, not a timing assertion
LEAD = "ana@prospect.example"


class FixedTokens:
    def __init__(self, token: str) -> None:
        self.token = token

    async def access_token(self, *, force_refresh: bool = False) -> AccessToken:
        return AccessToken(self.token, datetime(2100, 1, 1, tzinfo=UTC))


class Logins:
    """The credential source of these tests: one delegated token per mailbox."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens

    def credentials(self, mailbox: Mailbox) -> SmtpCredentials:
        return SmtpCredentials(
            username=mailbox.address, tokens=FixedTokens(self.tokens[mailbox.address])
        )


@dataclass
class World:
    db: Database
    dovecot: Dovecot
    user: str
    logins: Logins
    send_message_id: str
    subject: str

    def sync(self) -> InboxSync:
        return InboxSync(self.db, SystemClock(), self.logins, settings=SETTINGS, seed=1)

    def reply(self, *, text: str = "Sounds good, call me Thursday.") -> bytes:
        return (
            f"From: Ana <{LEAD}>\r\nTo: {self.user}\r\nSubject: Re: {self.subject}\r\n"
            f"Date: {format_datetime(datetime.now(UTC))}\r\n"
            f"Message-ID: {make_msgid(domain='prospect.example')}\r\n"
            f"In-Reply-To: {self.send_message_id}\r\nReferences: {self.send_message_id}\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
        ).encode()

    def note(self, n: int) -> bytes:
        return (
            f"From: someone{n}@elsewhere.example\r\nTo: {self.user}\r\nSubject: Note {n}\r\n"
            f"Date: {format_datetime(datetime.now(UTC))}\r\n"
            f"Message-ID: {make_msgid(domain='elsewhere.example')}\r\n\r\nNote {n}\r\n"
        ).encode()

    async def count(self, *, matched: bool = False) -> int:
        """Messages recorded (only those tied to our send, when ``matched``)."""
        query = select(func.count()).select_from(InboundMessage)
        if matched:
            query = query.where(InboundMessage.send_id.is_not(None))
        async with self.db.session() as session:
            return int(await session.scalar(query) or 0)

    async def enrollment_status(self) -> str:
        async with self.db.session() as session:
            return str(await session.scalar(select(Enrollment.status)))


async def make_world(tmp: Path, dovecot: Dovecot, *, pop3: bool = False) -> World:
    user = dovecot.new_user()
    scope = POP_SCOPE if pop3 else IMAP_SCOPE
    logins = Logins({user: dovecot.token(user, scope)})
    now = datetime.now(UTC)
    db = Database(f"sqlite+aiosqlite:///{tmp / 'dovecot.db'}")
    await db.migrate()
    message_id = make_msgid(domain="dovecot.example")
    async with db.session() as session:
        ws = Workspace(slug="d", name="D", created_at=now)
        session.add(ws)
        await session.flush()
        domain = Domain(
            workspace_id=ws.id, name="dovecot.example", provider="generic", created_at=now
        )
        session.add(domain)
        await session.flush()
        endpoint = (
            {"pop3_host": "127.0.0.1", "pop3_port": dovecot.pop3s_port, "pop3_security": "tls"}
            if pop3
            else {"imap_host": "127.0.0.1", "imap_port": dovecot.imaps_port, "imap_security": "tls"}
        )
        mailbox = Mailbox(
            workspace_id=ws.id,
            domain_id=domain.id,
            address=user,
            provider="generic",
            smtp_host="127.0.0.1",
            smtp_port=587,
            smtp_security="starttls",
            ca_file=str(dovecot.ca_file),
            auth_kind="oauth2_delegated",
            created_at=now,
            **endpoint,
        )
        session.add(mailbox)
        campaign = Campaign(
            workspace_id=ws.id, name="C", status=CampaignStatus.ACTIVE, created_at=now
        )
        campaign.steps.append(Step(position=1, subject="Quick question", body_text="Hi"))
        campaign.steps.append(Step(position=2, delay_days=2, subject="", body_text="Bump"))
        session.add(campaign)
        lead = Lead(
            workspace_id=ws.id, email=LEAD, email_normalized=LEAD, fields={}, created_at=now
        )
        session.add(lead)
        await session.flush()
        enrollment = Enrollment(
            campaign_id=campaign.id,
            lead_id=lead.id,
            next_step=2,
            next_due_at=now + timedelta(days=2),
            mailbox_id=mailbox.id,
            thread_message_id=message_id,
            last_message_id=message_id,
            references=[message_id],
            thread_subject="Quick question",
            created_at=now,
            updated_at=now,
        )
        session.add(enrollment)
        await session.flush()
        session.add(
            Send(
                workspace_id=ws.id,
                mailbox_id=mailbox.id,
                enrollment_id=enrollment.id,
                campaign_id=campaign.id,
                step_position=1,
                message_id=message_id,
                from_address=user,
                to_address=LEAD,
                subject="Quick question",
                status=SendStatus.SENT,
                claimed_at=now - timedelta(hours=1),
            )
        )
    return World(db, dovecot, user, logins, message_id, "Quick question")


@pytest.fixture
async def world(tmp_path: Path, dovecot: Dovecot) -> AsyncIterator[World]:
    w = await make_world(tmp_path, dovecot)
    try:
        yield w
    finally:
        await w.db.close()


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + GUARD
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(sync: InboxSync) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(sync.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, GUARD)


async def test_mail_delivered_while_the_sync_runs_is_picked_up(world: World) -> None:
    sync = world.sync()
    async with running(sync):
        await eventually(lambda: _idling(sync, world), "the first pass")
        world.dovecot.deliver(world.user, world.note(1))
        await eventually(lambda: _recorded(world, 1), "the first message")
        world.dovecot.deliver(world.user, world.reply())
        await eventually(lambda: _recorded(world, 2), "the reply")
    assert await world.count(matched=True) == 1
    assert await world.enrollment_status() == EnrollmentStatus.REPLIED
    # The user's mail is all still there, unread.
    files = world.dovecot.files(world.user)
    assert len(files) == 2 and not any(f.name.endswith("S") for f in files)


async def _idling(sync: InboxSync, world: World) -> bool:
    async with world.db.session() as session:
        mailbox_id = await session.scalar(select(Mailbox.id))
    return mailbox_id in sync._sessions


async def _recorded(world: World, n: int) -> bool:
    return await world.count() >= n


async def test_a_reply_in_junk_is_moved_to_inbox_and_counted_once(world: World) -> None:
    world.dovecot.deliver(world.user, world.reply(), folder="Junk")
    world.dovecot.deliver(world.user, world.note(1), folder="Junk")
    sync = world.sync()
    try:
        first = await sync.sync_all()
        assert first.errors == [] and first.moved == 1 and first.recorded == 2
        assert len(world.dovecot.files(world.user, "Junk")) == 1  # the note stays in Junk
        assert len(world.dovecot.files(world.user)) == 1  # the reply is in INBOX now
        again = await sync.sync_all()
        assert again.fetched == 1 and again.duplicates == 1 and again.recorded == 0
    finally:
        await sync.close()
    assert await world.count(matched=True) == 1
    assert await world.enrollment_status() == EnrollmentStatus.REPLIED


async def test_nothing_is_read_twice_across_restarts(world: World) -> None:
    for n in range(3):
        world.dovecot.deliver(world.user, world.note(n))
    first = world.sync()
    assert (await first.sync_all()).recorded == 3
    await first.close()
    world.dovecot.deliver(world.user, world.note(3))
    second = world.sync()
    report = await second.sync_all()
    await second.close()
    assert report.fetched == 1 and report.recorded == 1
    third = world.sync()
    report = await third.sync_all()
    await third.close()
    assert report.fetched == 0 and report.recorded == 0
    assert await world.count() == 4


async def test_a_uidvalidity_change_is_survived(world: World) -> None:
    for n in range(2):
        world.dovecot.deliver(world.user, world.note(n))
    sync = world.sync()
    assert (await sync.sync_all()).recorded == 2
    await sync.close()
    world.dovecot.renumber(world.user)
    world.dovecot.deliver(world.user, world.reply())
    sync = world.sync()
    report = await sync.sync_all()
    await sync.close()
    assert report.errors == []
    assert report.resyncs == 1 and report.duplicates == 2 and report.recorded == 1
    async with world.db.session() as session:
        kinds = list((await session.scalars(select(Event.kind))).all())
    assert kinds.count("inbox.uidvalidity_changed") == 1
    assert len([k for k in kinds if k.startswith("inbound.")]) == 3
    assert await world.count(matched=True) == 1
    assert await world.enrollment_status() == EnrollmentStatus.REPLIED


async def test_pop3_remembers_uidls_and_deletes_nothing(tmp_path: Path, dovecot: Dovecot) -> None:
    w = await make_world(tmp_path, dovecot, pop3=True)
    try:
        w.dovecot.deliver(w.user, w.note(1))
        w.dovecot.deliver(w.user, w.reply())
        first = w.sync()
        report = await first.sync_all()
        assert report.errors == [] and report.recorded == 2
        assert await w.count(matched=True) == 1
        w.dovecot.deliver(w.user, w.note(2))
        assert (await first.sync_all()).recorded == 1
        restarted = w.sync()
        report = await restarted.sync_all()
        assert report.fetched == 0 and report.recorded == 0
        assert len(w.dovecot.files(w.user)) == 3  # POP3 never sent DELE
        assert await w.enrollment_status() == EnrollmentStatus.REPLIED
    finally:
        await w.db.close()


async def test_xoauth2_through_the_oauth2_passdb_and_a_bad_token_fails(dovecot: Dovecot) -> None:
    user = dovecot.new_user()
    endpoint = ImapEndpoint("127.0.0.1", dovecot.imaps_port, ca_file=str(dovecot.ca_file))
    good = await check_imap_login(endpoint, user, tokens=FixedTokens(dovecot.token(user)))
    assert good.ok, good.steps
    assert "\\Junk" in {f.special_use for f in good.folders}
    bad = await check_imap_login(endpoint, user, tokens=FixedTokens("not-a-token"))
    assert not bad.ok and bad.failed is not None and bad.failed.step == "auth"
    # A token for another user is refused as well: the introspection names its owner.
    other = dovecot.new_user()
    stolen = await check_imap_login(endpoint, user, tokens=FixedTokens(dovecot.token(other)))
    assert not stolen.ok
    pop = Pop3Endpoint("127.0.0.1", dovecot.pop3s_port, ca_file=str(dovecot.ca_file))
    async with Pop3Client(pop) as client:
        assert "SASL=XOAUTH2" in await client.capabilities()
        assert (await client.login_xoauth2(user, dovecot.token(user, POP_SCOPE))).startswith("+OK")
    client = Pop3Client(pop)
    await client.connect()
    with pytest.raises(Pop3AuthenticationError) as refused:
        await client.login_xoauth2(user, "not-a-token")
    await client.quit()
    assert refused.value.text.startswith("-ERR") and '"status":"401"' in refused.value.detail


async def test_pop3_password_login(dovecot: Dovecot) -> None:
    user = dovecot.new_user(password=True)
    pop = Pop3Endpoint("127.0.0.1", dovecot.pop3s_port, ca_file=str(dovecot.ca_file))
    long_line = b"x" * 5000  # longer than poplib's own 2,048-byte line limit
    dovecot.deliver(user, b"Subject: one\r\nMessage-ID: <one@x>\r\n\r\n" + long_line + b"\r\n")
    async with Pop3Client(pop) as client:
        assert client.tls_version in ("TLSv1.2", "TLSv1.3")
        assert (await client.login_password(user, PASSWORD)).startswith("+OK")
        ((number, uidl),) = await client.uidl()
        assert uidl and (await client.sizes())[number] > 5000
        head = await client.top(number, 0)
        assert b"Subject: one" in head and long_line not in head
        assert long_line in await client.retr(number)
    client = Pop3Client(pop)
    await client.connect()
    with pytest.raises(Pop3AuthenticationError):
        await client.login_password(user, "wrong")
    await client.quit()


async def test_a_refused_token_is_reported_and_nothing_recorded(world: World) -> None:
    world.dovecot.deliver(world.user, world.note(1))
    world.logins.tokens[world.user] = "expired-or-revoked"
    sync = world.sync()
    report = await sync.sync_all()
    await sync.close()
    assert report.recorded == 0 and len(report.errors) == 1
    assert "AUTHENTICATIONFAILED" in report.errors[0]
