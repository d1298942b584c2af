"""Warmup end to end over the sandbox: SMTP out, IMAP in, placement, rescue, replies, caps."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from mailfleet.clock import VirtualClock
from mailfleet.engine.inbox import InboxSettings, InboxSync
from mailfleet.engine.warmup import WarmupConfig
from mailfleet.sandbox import INBOX, JUNK, Sandbox
from mailfleet.store import InboundMessage, Send, SendKind, SendStatus
from mailfleet.store.models import WarmupMessage, WarmupThread
from mailfleet.warmup import RampSettings

from .world import WarmupWorld, build

A = "rep0@alpha.example"
B = "rep0@beta.example"  # same tenant as A: never A's peer
C = "rep0@gamma.example"
D = "rep0@delta.example"


async def run(world: WarmupWorld, hours: float, step: timedelta = timedelta(minutes=30)) -> None:
    end = world.clock.now() + timedelta(hours=hours)
    while world.clock.now() < end:
        report = await world.sender.tick(world.clock.now())
        assert not report.errors, report.errors
        await world.receiver.run_once()
        world.clock.advance(step)


async def test_warmup_lands_in_junk_is_rescued_and_placement_recorded(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build(tmp_path, clock, sandbox)
    try:
        sandbox.set_junk_share("*", "alpha.example", 1.0)  # every peer files A's mail in Junk
        await run(world, 24)
        async with world.db.session() as session:
            rows = (
                await session.execute(
                    select(WarmupMessage, Send).join(Send, Send.id == WarmupMessage.send_id)
                )
            ).all()
        from_a = [(m, s) for m, s in rows if s.from_address == A]
        assert from_a, "A sent no warmup"
        for _, send in rows:
            assert send.kind == SendKind.WARMUP and send.status == SendStatus.SENT
            # never the same domain or tenant
            assert send.to_address.split("@")[1] not in (send.from_address.split("@")[1],)
            if send.from_address in (A, B):
                assert send.to_address in (C, D)
            else:
                assert send.to_address in (A, B)
        for message, send in from_a:
            assert message.placement == "junk", (send.to_address, message.placement)
            copy = sandbox.store.find_by_message_id(send.to_address, INBOX, send.message_id)
            assert copy is not None and "\\Seen" in copy.flags
            assert sandbox.store.find_by_message_id(send.to_address, JUNK, send.message_id) is None
        others = [m for m, s in rows if s.from_address != A and s.status == SendStatus.SENT]
        assert others and all(m.placement == "inbox" for m in others if m.observed_at)
        replies = [m for m, s in rows if m.origin == "reply"]
        assert replies, "no peer replied in a day"
        async with world.db.session() as session:
            threads = (await session.scalars(select(WarmupThread))).all()
        assert any(t.messages > 1 for t in threads)
    finally:
        await world.close()


async def test_inbox_sync_records_warmup_without_treating_it_as_a_reply_or_moving_it(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build(tmp_path, clock, sandbox)
    sync = InboxSync(world.db, clock, world.sender.credentials, settings=InboxSettings())
    try:
        sandbox.set_junk_share(C, "*", 1.0)
        for _ in range(30):
            await world.sender.tick(clock.now())
            clock.advance(timedelta(minutes=30))
        assert sandbox.store.count(C, JUNK) > 0
        await sync.sync_all()
        async with world.db.session() as session:
            kinds = dict(
                (
                    await session.execute(
                        select(InboundMessage.kind, func.count()).group_by(InboundMessage.kind)
                    )
                ).all()
            )
        assert set(kinds) == {"warmup"}
        assert sandbox.store.count(C, JUNK) > 0  # left for the receiver to measure
        await world.receiver.run_once()
        assert sandbox.store.count(C, JUNK) == 0
        async with world.db.session() as session:
            junk = await session.scalar(
                select(func.count()).where(
                    WarmupMessage.peer_mailbox_id == world.ids[C], WarmupMessage.placement == "junk"
                )
            )
        assert junk and junk > 0
    finally:
        await sync.close()
        await world.close()


async def test_junk_from_day_10_cuts_the_cold_cap_within_a_day_and_recovery_restores_it(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    # A flat ramp of 6 a day keeps the run short; the automation does not depend on volume.
    config = WarmupConfig(ramp=RampSettings(start=6, step=0, ceiling=6))
    ten_days_ago = clock.now().date() - timedelta(days=9)
    world = await build(tmp_path, clock, sandbox, started_on=ten_days_ago, config=config)
    start = clock.now()  # day 10 of the ramp
    step = timedelta(hours=2)
    try:
        await run(world, 24, step=step)
        assert (await world.settings(C)).cold_cap_factor == 1.0
        # Day 11: every peer files C's mail in Junk.
        junk_from = clock.now()
        sandbox.set_junk_share("*", "gamma.example", 1.0)
        await run(world, 24, step=step)
        cut = await world.settings(C)
        assert cut.cold_cap_factor < 1.0
        assert cut.cap_changed_at is not None and cut.cap_changed_at - junk_from <= timedelta(
            days=1
        )
        assert (await world.settings(A)).cold_cap_factor == 1.0  # others unaffected
        # The filter forgives C: placement recovers, and the cap comes back step by step.
        sandbox.set_junk_share("*", "gamma.example", 0.0)
        factors = [cut.cold_cap_factor]
        while factors[-1] < 1.0 and len(factors) < 7:
            await run(world, 24, step=step)
            factors.append((await world.settings(C)).cold_cap_factor)
        assert factors == sorted(factors) and factors[-1] == 1.0
        assert len(set(factors)) > 2  # gradually, not at once
        async with world.db.session() as session:
            from mailfleet.store import Event

            events = (
                await session.scalars(
                    select(Event)
                    .where(Event.kind == "warmup.cold_cap", Event.mailbox_id == world.ids[C])
                    .order_by(Event.at)
                )
            ).all()
        assert "cut" in events[0].message and "Junk" in events[0].message
        assert "restored" in events[-1].message
        assert clock.now() - start < timedelta(days=9)
    finally:
        await world.close()


async def test_a_refused_warmup_is_deferred_its_slot_retried_and_the_mailbox_backs_off(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    from mailfleet.sandbox.faults import fault

    world = await build(tmp_path, clock, sandbox)
    try:
        busy = fault("server_busy", times=1)
        sandbox.set_behaviour(A, busy)
        clock.advance(timedelta(hours=8))  # several of A's slots are due
        first = await world.sender.tick(clock.now())
        assert first.deferred == 1 and busy.refused
        async with world.db.session() as session:
            deferred = (
                await session.execute(
                    select(Send, WarmupMessage)
                    .join(WarmupMessage, WarmupMessage.send_id == Send.id)
                    .where(Send.status == SendStatus.DEFERRED)
                )
            ).one()
        assert deferred[0].from_address == A and deferred[1].slot is None  # slot freed
        again = await world.sender.tick(clock.now())
        assert world.ids[A] not in {s.mailbox_id for s in again.sent}  # backing off
        clock.advance(timedelta(hours=1))
        later = await world.sender.tick(clock.now())
        assert world.ids[A] in {s.mailbox_id for s in later.sent}
        async with world.db.session() as session:
            slots = (
                await session.scalars(
                    select(WarmupMessage.slot).where(
                        WarmupMessage.sender_mailbox_id == world.ids[A],
                        WarmupMessage.slot.is_not(None),
                    )
                )
            ).all()
        assert 0 in slots and len(slots) == len(set(slots))  # the first slot was sent after all
    finally:
        await world.close()


async def test_paused_warmup_sends_nothing_and_next_due_points_at_the_next_slot(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build(tmp_path, clock, sandbox)
    try:
        async with world.db.session() as session:
            from mailfleet.store.models import WarmupSettings

            row = await session.get(WarmupSettings, world.ids[C])
            assert row is not None
            row.paused = True
        report = await world.sender.tick(clock.now())
        assert report.sent == []  # 00:00: nothing due before 07:00 local
        wake = world.sender.next_due(clock.now())
        assert wake is not None and timedelta(hours=7) <= wake - clock.now() <= timedelta(hours=9)
        await run(world, 24)
        async with world.db.session() as session:
            senders = set(
                (
                    await session.scalars(select(Send.from_address).where(Send.kind == "warmup"))
                ).all()
            )
        assert C not in senders and {A, B, D} <= senders
    finally:
        await world.close()


async def _warmup_from(world: WarmupWorld, address: str) -> int:
    async with world.db.session() as session:
        found = await session.scalars(
            select(Send.id).where(Send.kind == "warmup", Send.from_address == address)
        )
        return len(found.all())


async def test_a_pause_and_a_ramp_change_made_elsewhere_are_seen_at_the_next_tick(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    """The sender keeps settings and day plans in memory; a write by another process
    (``mailfleet warmup pause``, ``set``) must still take effect before the next send."""
    from mailfleet.store.models import WarmupSettings

    world = await build(tmp_path, clock, sandbox)
    try:
        clock.advance(timedelta(hours=7))
        await run(world, 12)  # the sender has read its mailboxes and made today's plans
        before_c, before_a = await _warmup_from(world, C), await _warmup_from(world, A)
        assert before_c > 0 and before_a > 0
        async with world.db.session() as session:  # as `warmup pause` does, in its own session
            row = await session.get(WarmupSettings, world.ids[C])
            assert row is not None
            row.paused = True
        await run(world, 24)
        assert await _warmup_from(world, C) == before_c  # not one more send from C
        assert await _warmup_from(world, A) > before_a
        async with world.db.session() as session:  # `warmup resume` and `set --start 30`
            row = await session.get(WarmupSettings, world.ids[C])
            assert row is not None
            row.paused = False
            row.ramp_start, row.ramp_step, row.ramp_ceiling = 30, 0, 30
        paused_total = await _warmup_from(world, C)
        clock.advance(timedelta(hours=24) - timedelta(hours=clock.now().hour))  # a fresh day
        await run(world, 24)
        resumed = await _warmup_from(world, C) - paused_total
        assert resumed >= 25, resumed  # the new ramp (30 a day, +-10 %), not the old one
    finally:
        await world.close()


async def test_old_warmup_threads_are_archived_on_both_sides(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build(tmp_path, clock, sandbox)
    try:
        await run(world, 24, step=timedelta(hours=1))
        kept = sandbox.store.count(C, INBOX) + sandbox.store.count(A, "Sent Items")
        assert kept > 0 and sandbox.store.count(C, "Archive") == 0
        world.sender.config = type(world.sender.config)(
            ramp=RampSettings(start=0, step=0, ceiling=0)
        )
        for _ in range(9):  # quiet days: no new warmup, the threads age
            clock.advance(timedelta(days=1))
            await world.receiver.run_once()
        assert sandbox.store.count(C, "Archive") > 0 and sandbox.store.count(A, "Archive") > 0
        marker = world.sender.config.marker
        import email as email_lib
        import email.policy as email_policy

        for address in (A, C):
            for folder in (INBOX, "Sent Items"):
                for stored in sandbox.store.messages(address, folder):
                    parsed = email_lib.message_from_bytes(stored.raw, policy=email_policy.compat32)
                    assert marker.find(parsed) is None, (address, folder)
        async with world.db.session() as session:
            threads = (await session.scalars(select(WarmupThread))).all()
        assert threads and all(t.opener_cleaned_at and t.peer_cleaned_at for t in threads)
    finally:
        await world.close()


async def test_the_receiver_skips_foreign_and_broken_marked_mail_and_reports_a_bad_login(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build(tmp_path, clock, sandbox)
    try:
        clock.advance(timedelta(hours=9))
        for _ in range(4):
            await world.sender.tick(clock.now())
            clock.advance(timedelta(hours=1))
        token = world.sender.config.marker.token("<someone-else@x.test>")
        junk = [
            # Our marker, a token no send of ours carries.
            f"From: x@x.test\r\nTo: {C}\r\nX-Entity-Ref-ID: {token}\r\nSubject: hi\r\n\r\nhi\r\n",
            # The header prefix without a token, and a body that does not decode.
            f"From: x@x.test\r\nTo: {C}\r\nX-Entity-Ref-ID: mfwu-\r\nContent-Transfer-Encoding:"
            " base64\r\nSubject: \xff\r\n\r\n%%%not base64\r\n",
        ]
        for text in junk:
            sandbox.store.append(
                C,
                JUNK,
                text.encode("utf-8", "surrogateescape"),
                sender="x@x.test",
                recipients=[C],
                received_at=clock.now(),
            )
        async with world.db.session() as session:
            from mailfleet.store import Mailbox

            d = await session.get(Mailbox, world.ids[D])
            assert d is not None
            d.secret = world.box.seal({"client_secret": "wrong"})
        report = await world.receiver.run_once()
        assert report.found > 0
        assert any(D in e for e in report.errors)  # the bad login is reported, not raised
        async with world.db.session() as session:
            unknown = await session.scalar(select(func.count()).where(WarmupMessage.token == token))
        assert unknown == 0
        # A foreign token of our marker still leaves Junk (it is warmup); a token-less one stays.
        left = [m.raw for m in sandbox.store.messages(C, JUNK)]
        assert len(left) == 1 and b"%%%not base64" in left[0]
    finally:
        await world.close()
