"""The inbox sync against the sandbox's IMAP: what arrives is recorded once and acted on."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import func, select

from mailfleet.clock import VirtualClock
from mailfleet.engine.inbox import InboxSettings, InboxSync
from mailfleet.inbox import InboxPolicy
from mailfleet.sandbox import INBOX, JUNK, AnswerShares, Sandbox
from mailfleet.store import (
    Enrollment,
    EnrollmentStatus,
    Event,
    InboundMessage,
    Lead,
    Mailbox,
    MailboxFolderState,
    Send,
    Suppression,
)
from mailfleet.transport.imap import ImapClient

from .support import SENDER, InboxWorld, build, message


def only(**shares: float) -> AnswerShares:
    """Prospects who all answer one way."""
    base = dict(reply=0.0, unsubscribe=0.0, out_of_office=0.0, hard_bounce=0.0, soft_bounce=0.0)
    return AnswerShares(**{**base, **shares, "junk": shares.get("junk", 0.0)})


@pytest.fixture
async def world(tmp_path: Path, clock: VirtualClock, sandbox: Sandbox) -> AsyncIterator[InboxWorld]:
    w = await build(tmp_path, clock, sandbox)
    try:
        yield w
    finally:
        await w.close()


async def enrollments(w: InboxWorld) -> dict[str, Enrollment]:
    async with w.db.session() as session:
        rows = (await session.execute(select(Enrollment, Lead.email).join(Lead))).all()
    return {email: e for e, email in rows}


async def inbound(w: InboxWorld) -> list[InboundMessage]:
    async with w.db.session() as session:
        return list(
            (await session.scalars(select(InboundMessage).order_by(InboundMessage.id))).all()
        )


async def answer_all(w: InboxWorld, shares: AnswerShares, *, after: timedelta) -> None:
    w.sandbox.prospects.shares = shares
    await w.send_due()
    w.clock.advance(after)
    w.sandbox.release_answers()


async def test_replies_are_matched_by_in_reply_to_and_stop_the_sequence(world: InboxWorld) -> None:
    await answer_all(world, only(reply=1.0), after=timedelta(days=1, hours=7))
    report = await world.inbox.sync_all()
    assert report.errors == []
    rows = await inbound(world)
    # Each lead answers its first or its second message; those answering the first did.
    replied = {r.from_address for r in rows}
    assert rows and all(r.kind == "reply" and r.matched_by == "in-reply-to" for r in rows)
    states = await enrollments(world)
    for email, enrollment in states.items():
        if email in replied:
            assert enrollment.status == EnrollmentStatus.REPLIED
            assert enrollment.next_due_at is None
        else:
            assert enrollment.status == EnrollmentStatus.ACTIVE
    async with world.db.session() as session:
        sends = {s.id: s for s in (await session.scalars(select(Send))).all()}
        events = (await session.scalars(select(Event).where(Event.kind == "inbound.reply"))).all()
    assert {r.send_id for r in rows} <= set(sends)
    assert len(events) == len(rows)
    assert all(e.enrollment_id and e.lead_id and e.mailbox_id and e.send_id for e in events)
    # The reply's new text is stored without the quoted history.
    assert all("wrote:" not in r.text and r.text for r in rows)


async def test_a_second_pass_reads_nothing_again(world: InboxWorld) -> None:
    await answer_all(world, only(out_of_office=1.0), after=timedelta(hours=1))
    first = await world.inbox.sync_all()
    assert first.recorded == 4 and first.by_kind == {"auto_reply": 4}
    second = await world.inbox.sync_all()
    assert second.fetched == 0 and second.recorded == 0
    async with world.db.session() as session:
        state = (await session.scalars(select(MailboxFolderState))).all()
    assert {s.folder for s in state} == {"INBOX", "Junk"}
    assert next(s for s in state if s.folder == "INBOX").last_uid == 4


async def test_out_of_office_pauses_until_the_return_date_and_is_not_a_reply(
    world: InboxWorld,
) -> None:
    await answer_all(world, only(out_of_office=1.0), after=timedelta(hours=1))
    await world.inbox.sync_all()
    answers = {a.prospect: a for a in world.sandbox.prospects.answers()}
    states = await enrollments(world)
    for email, enrollment in states.items():
        assert enrollment.status == EnrollmentStatus.ACTIVE
        answer = answers[email]
        assert enrollment.next_due_at is not None
        if answer.return_date is not None:
            assert enrollment.next_due_at.date() == answer.return_date
        else:  # no return date: the default pause of 7 days
            assert enrollment.next_due_at.date() == (world.clock.now() + timedelta(days=7)).date()


async def test_hard_bounce_suppresses_the_address_and_stops_everything(world: InboxWorld) -> None:
    await answer_all(world, only(hard_bounce=1.0), after=timedelta(minutes=10))
    report = await world.inbox.sync_all()
    assert report.by_kind == {"bounce": 4}
    rows = await inbound(world)
    assert all(r.hard and r.status == "5.1.1" and r.matched_by == "original" for r in rows)
    states = await enrollments(world)
    assert {e.status for e in states.values()} == {EnrollmentStatus.BOUNCED}
    async with world.db.session() as session:
        suppressed = (await session.scalars(select(Suppression))).all()
    assert {(s.value, s.reason) for s in suppressed} == {(email, "hard_bounce") for email in states}


async def test_soft_bounce_is_counted_but_the_address_kept(world: InboxWorld) -> None:
    await answer_all(world, only(soft_bounce=1.0), after=timedelta(minutes=10))
    await world.inbox.sync_all()
    rows = await inbound(world)
    assert [r.hard for r in rows] == [False] * 4
    states = await enrollments(world)
    assert {e.status for e in states.values()} == {EnrollmentStatus.ACTIVE}
    async with world.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Suppression)) == 0


async def test_unsubscribe_suppresses_in_the_workspace(world: InboxWorld) -> None:
    await answer_all(world, only(unsubscribe=1.0), after=timedelta(days=2))
    await world.inbox.sync_all()
    states = await enrollments(world)
    assert {e.status for e in states.values()} == {EnrollmentStatus.UNSUBSCRIBED}
    async with world.db.session() as session:
        reasons = {s.reason for s in (await session.scalars(select(Suppression))).all()}
    assert reasons == {"unsubscribe"}


async def test_an_answer_to_the_mailto_link_unsubscribes_the_lead_its_token_names(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    keys = InboxPolicy(unsubscribe_keys=(b"k" * 32,))  # the world's engine signs with it
    w = await build(
        tmp_path, clock, sandbox, inbox_settings=InboxSettings(concurrency=4, policy=keys)
    )
    try:
        await w.send_due()
        async with w.db.session() as session:
            sends = list((await session.scalars(select(Send).order_by(Send.id))).all())
        stored = w.sandbox.store.find_by_message_id(sends[1].to_address, INBOX, sends[1].message_id)
        assert stored is not None
        header = message_from_bytes(stored.raw, policy=email_policy.default)["List-Unsubscribe"]
        mailto = next(u for u in re.findall(r"<([^>]+)>", str(header)) if u.startswith("mailto:"))
        target, _, query = mailto.removeprefix("mailto:").partition("?subject=")
        assert target == SENDER
        # Sent from another address of the person (an alias): the token says who it is.
        w.deliver(message(sender="alias@home.example", subject=unquote(query), body=""))
        # A forged token from someone else unsubscribes nobody.
        forged = unquote(query)[:-4] + "0000"
        w.deliver(message(sender="prank@else.example", subject=forged, body=""))
        await w.inbox.sync_all()
        states = await enrollments(w)
        assert states[sends[1].to_address].status == EnrollmentStatus.UNSUBSCRIBED
        others = {e.status for a, e in states.items() if a != sends[1].to_address}
        assert others == {EnrollmentStatus.ACTIVE}
        async with w.db.session() as session:
            events = (await session.scalars(select(Event).where(Event.kind == "unsubscribe"))).all()
        by_source = sorted(e.message for e in events)
        # The forged subject still reads as a request to remove its own sender.
        assert by_source == [
            f"{sends[1].to_address} unsubscribed (mailto); 1 sequence(s) ended",
            "prank@else.example unsubscribed (reply); 0 sequence(s) ended",
        ]
    finally:
        await w.close()


async def test_a_reply_in_junk_is_moved_to_inbox_and_recorded_once(world: InboxWorld) -> None:
    await answer_all(world, only(out_of_office=1.0), after=timedelta(minutes=1))
    await world.inbox.sync_all()
    async with world.db.session() as session:
        send = (await session.scalars(select(Send).order_by(Send.id))).first()
    assert send is not None
    raw = message(
        sender=send.to_address, subject=f"Re: {send.subject}", in_reply_to=send.message_id
    )
    world.deliver(raw, folder=JUNK, sender=send.to_address)
    report = await world.inbox.sync_all()
    assert report.moved == 1 and report.recorded == 1
    assert world.sandbox.store.count(SENDER, JUNK) == 0
    assert any(m.raw == raw for m in world.sandbox.store.messages(SENDER, INBOX))
    # The next pass reads the moved copy in INBOX and recognises it.
    again = await world.inbox.sync_all()
    assert again.fetched == 1 and again.recorded == 0 and again.duplicates == 1
    rows = [r for r in await inbound(world) if r.kind == "reply"]
    assert len(rows) == 1 and rows[0].folder == "Junk" and rows[0].data["moved_to_inbox"]


async def test_reply_without_thread_headers_matches_by_sender_and_subject(
    world: InboxWorld,
) -> None:
    await world.send_due()
    async with world.db.session() as session:
        send = (await session.scalars(select(Send).order_by(Send.id))).first()
    assert send is not None
    world.deliver(
        message(sender=send.to_address.upper(), subject=f"AW: RE: {send.subject}"),
        sender=send.to_address,
    )
    await world.inbox.sync_all()
    (row,) = await inbound(world)
    assert row.kind == "reply" and row.matched_by == "sender-subject"
    assert row.send_id == send.id
    assert (await enrollments(world))[send.to_address].status == EnrollmentStatus.REPLIED


async def test_uidvalidity_change_rereads_without_duplicate_events(world: InboxWorld) -> None:
    await answer_all(world, only(reply=1.0), after=timedelta(days=1, hours=7))
    first = await world.inbox.sync_all()
    assert first.recorded > 0
    folder = world.sandbox.store.folder(SENDER, INBOX)
    assert folder is not None
    # The server renumbers the folder (a restored mailbox): new UIDVALIDITY, new UIDs.
    folder.uid_validity += 1000
    for offset, stored in enumerate(folder.messages):
        stored.uid = 100 + offset
    folder.uid_next = 100 + len(folder.messages)
    world.deliver(message(sender="lead3@prospect.example", subject="Question"))
    await world.inbox.close()  # a new session sees the new numbering
    second = await world.inbox.sync_all()
    assert second.resyncs == 1
    assert second.duplicates == first.recorded and second.recorded == 1
    async with world.db.session() as session:
        kinds = (await session.scalars(select(Event.kind))).all()
        state = await session.scalar(
            select(MailboxFolderState).where(MailboxFolderState.folder == "INBOX")
        )
    assert kinds.count("inbox.uidvalidity_changed") == 1
    assert kinds.count("inbound.reply") + kinds.count("inbound.other") == first.recorded + 1
    assert state is not None and state.uid_validity == folder.uid_validity
    assert state.last_uid == folder.uid_next - 1 and state.resyncs == 1


async def test_stop_for_company_when_the_campaign_says_so(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    w = await build(
        tmp_path,
        clock,
        sandbox,
        leads=3,
        settings={"stop": {"on_company_reply": True}},
        companies=["Acme", "ACME ", "Other"],
    )
    try:
        await w.send_due()
        async with w.db.session() as session:
            send = (await session.scalars(select(Send).order_by(Send.id))).first()
        assert send is not None and send.to_address == "lead0@prospect.example"
        w.deliver(message(sender=send.to_address, in_reply_to=send.message_id))
        await w.inbox.sync_all()
        states = await enrollments(w)
        assert states["lead0@prospect.example"].status == EnrollmentStatus.REPLIED
        # The company is the e-mail domain, which all three share in this world.
        for colleague in ("lead1@prospect.example", "lead2@prospect.example"):
            assert states[colleague].status == EnrollmentStatus.STOPPED
            assert "company_reply" in (states[colleague].stop_reason or "")
    finally:
        await w.close()


async def test_unknown_senders_are_kept_but_touch_no_sequence(world: InboxWorld) -> None:
    await world.send_due()
    world.deliver(message(sender="stranger@elsewhere.example", subject="Hello there"))
    await world.inbox.sync_all()
    (row,) = await inbound(world)
    assert row.lead_id is None and row.enrollment_id is None
    assert {e.status for e in (await enrollments(world)).values()} == {EnrollmentStatus.ACTIVE}


async def test_many_mailboxes_are_read_concurrently_within_the_limit(
    world: InboxWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world.db.session() as session:
        template = await session.get(Mailbox, world.mailbox_id)
        assert template is not None
        for n in range(16):
            address = f"rep{n}@sender.example"
            world.sandbox.add_mailbox(address, "contoso.onmicrosoft.com")
            world.sandbox.store.append(
                address,
                INBOX,
                message(sender=f"x{n}@elsewhere.example", subject=f"Hello {n}"),
                sender=f"x{n}@elsewhere.example",
                recipients=[address],
                received_at=world.clock.now(),
            )
            copy = {
                c.key: getattr(template, c.key)
                for c in Mailbox.__table__.columns
                if c.key not in ("id", "address")
            }
            session.add(Mailbox(**copy, address=address))
    inbox = InboxSync(
        world.db,
        world.clock,
        world.engine.credentials,
        settings=InboxSettings(concurrency=5),
    )
    active = peak = 0
    original = ImapClient.select

    async def counting(self: ImapClient, folder: str, *, read_only: bool = False) -> object:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        try:
            await asyncio.sleep(0.001)  # let the others run
            return await original(self, folder, read_only=read_only)
        finally:
            active -= 1

    monkeypatch.setattr(ImapClient, "select", counting)
    try:
        report = await inbox.sync_all()
    finally:
        await inbox.close()
    assert report.errors == [] and report.mailboxes == 17 and report.recorded == 16
    assert 1 < peak <= 5
