"""The engine end to end against the sandbox, on a virtual clock."""

import itertools
from collections import Counter, defaultdict
from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path

from sqlalchemy import select

from mailfleet.clock import VirtualClock, utc
from mailfleet.sandbox import MailboxBehaviour, Reply, Sandbox
from mailfleet.store import Enrollment, EnrollmentStatus, Mailbox, Send, SendStatus, Suppression

from .world import build_world, day


async def sends(world_db, status=SendStatus.SENT) -> list[Send]:  # type: ignore[no-untyped-def]
    async with world_db.session() as session:
        return list((await session.scalars(select(Send).where(Send.status == status))).all())


async def test_two_step_campaign_is_sent_once_threaded_and_rotated(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=2, leads=10)
    try:
        await world.engine.run_until(day(clock, 3))
    finally:
        await world.engine.close()
    sent = await sends(world.db)
    by_step = Counter(s.step_position for s in sent)
    assert by_step == {1: 10, 2: 10}
    assert Counter(s.mailbox_id for s in sent) == {
        world.mailbox_ids[0]: 10,
        world.mailbox_ids[1]: 10,
    }
    assert len({(s.enrollment_id, s.step_position) for s in sent}) == 20
    first = {s.enrollment_id: s for s in sent if s.step_position == 1}
    for follow in (s for s in sent if s.step_position == 2):
        parent = first[follow.enrollment_id]
        assert follow.in_reply_to == parent.message_id
        assert follow.mailbox_id == parent.mailbox_id  # the thread stays on its mailbox
        assert follow.subject == "Re: " + parent.subject
        assert follow.claimed_at - parent.claimed_at >= timedelta(days=1)
    for s in sent:
        assert s.message_id.endswith("@sender.example>")
        assert s.reply_code == 250
    # The server got exactly what the store says, threaded by headers.
    delivered = sandbox.prospects.deliveries()
    assert len(delivered) == 20
    lead0 = sandbox.store.messages("lead0@prospect.example")
    parsed = [message_from_bytes(m.raw, policy=default) for m in lead0]
    assert parsed[1]["In-Reply-To"] == parsed[0]["Message-ID"]
    assert parsed[0]["Message-ID"] in parsed[1]["References"]
    assert parsed[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    async with world.db.session() as session:
        states = Counter((await session.scalars(select(Enrollment.status))).all())
    assert states == {EnrollmentStatus.COMPLETED: 10}


async def test_virtual_clock_drives_daily_cap_and_minimum_gap(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(
        tmp_path, clock, sandbox, mailboxes=2, leads=40, daily_cap=7, gap_seconds=900, steps=1
    )
    try:
        await world.engine.run_until(utc(2026, 3, 4))  # to the end of the second day
    finally:
        await world.engine.close()
    sent = await sends(world.db)
    assert len(sent) == 2 * 7 * 2  # two mailboxes, seven a day, two days
    per_box_day: dict[tuple[int, object], int] = defaultdict(int)
    times: dict[int, list] = defaultdict(list)  # type: ignore[type-arg]
    for s in sorted(sent, key=lambda s: s.claimed_at):
        per_box_day[(s.mailbox_id, s.claimed_at.date())] += 1
        times[s.mailbox_id].append(s.claimed_at)
    assert set(per_box_day.values()) == {7}
    for stamps in times.values():
        assert all(b - a >= timedelta(seconds=900) for a, b in itertools.pairwise(stamps))


class RefuseLead3(MailboxBehaviour):
    async def on_rcpt_to(self, address, recipient, now):  # type: ignore[no-untyped-def]
        if recipient.startswith("lead3@"):
            return Reply(550, "5.1.1 RESOLVER.ADR.RecipNotFound; not found")
        return None


async def test_unknown_recipient_bounces_suppresses_and_stops(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=1, leads=5)
    sandbox.set_behaviour("rep0@sender.example", RefuseLead3())
    try:
        await world.engine.run_until(day(clock, 3))
    finally:
        await world.engine.close()
    failed = await sends(world.db, SendStatus.FAILED)
    assert [s.to_address for s in failed] == ["lead3@prospect.example"]
    assert failed[0].reply_code == 550 and failed[0].reply_enhanced == "5.1.1"
    async with world.db.session() as session:
        suppressed = (await session.scalars(select(Suppression.value))).all()
        bounced = (
            await session.scalars(
                select(Enrollment).where(Enrollment.status == EnrollmentStatus.BOUNCED)
            )
        ).all()
    assert suppressed == ["lead3@prospect.example"]
    assert len(bounced) == 1
    assert len(await sends(world.db)) == 8  # the other four leads got both steps


async def test_wrong_secret_disconnects_mailbox_and_first_steps_move(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=2, leads=4, steps=1)
    async with world.db.session() as session:
        broken = await session.get(Mailbox, world.mailbox_ids[0])
        assert broken is not None
        broken.secret = world.box.seal({"client_secret": "wrong"})
    try:
        await world.engine.run_until(day(clock, 1))
    finally:
        await world.engine.close()
    async with world.db.session() as session:
        broken = await session.get(Mailbox, world.mailbox_ids[0])
        assert broken is not None
        # The identity provider refused the app's secret: disconnected, with the code and the fix.
        assert broken.status == "disconnected"
        assert "AADSTS7000215" in (broken.status_reason or "")
    sent = await sends(world.db)
    assert len(sent) == 4 and {s.mailbox_id for s in sent} == {world.mailbox_ids[1]}


async def test_recover_marks_submitting_sends_unknown_and_never_resends(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=1, leads=1, steps=1)
    # Simulate a crash between submission and outcome: submit, then drop the outcome.
    # (This world's mailboxes have no IMAP host: the Sent folder cannot be read.)
    report = await world.engine.tick()
    assert report.sent == 1
    async with world.db.session() as session:
        send = (await session.scalars(select(Send))).one()
        send.status = SendStatus.SUBMITTING
        enrollment = await session.get(Enrollment, send.enrollment_id)
        assert enrollment is not None
        enrollment.status = EnrollmentStatus.ACTIVE
        enrollment.next_due_at = None
    assert await world.engine.recover() == 1
    await world.engine.run_until(day(clock, 1))
    await world.engine.close()
    unknown = await sends(world.db, SendStatus.UNKNOWN)
    assert len(unknown) == 1
    assert len(sandbox.prospects.deliveries()) == 1
