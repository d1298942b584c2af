"""Exactly once across a crash: the engine dies between claim and outcome, restarts, reconciles.

Against the sandbox's SMTP submission and IMAP (which files every accepted message in
the sender's Sent Items), on the virtual clock. The crash is an exception thrown at the
chosen point of the state machine; the restart is a new Engine on the same store.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from fakes.submitters import Crash, DiesAfterTheServerAccepts, crash
from mailfleet.clock import VirtualClock
from mailfleet.engine.runtime import Engine
from mailfleet.sandbox import SENT_ITEMS, Sandbox
from mailfleet.store import Enrollment, Event, Mailbox, Send, SendStatus
from mailfleet.transport.submitter import FakeSubmitter

from .world import World, build_world


async def with_imap(world: World, sandbox: Sandbox) -> None:
    async with world.db.session() as session:
        for box in (await session.scalars(select(Mailbox))).all():
            box.imap_host = sandbox.imap_host
            box.imap_port = sandbox.imap_port
            box.imap_security = "tls"


def restart(world: World) -> Engine:
    """A new process on the same store (its own token and SMTP caches)."""
    return Engine(
        world.db,
        world.clock,
        world.box,
        public_url="https://mf.example",
        unsubscribe_key=b"k" * 32,
        seed=2,
        fleet=world.engine.fleet,
    )


async def all_sends(world: World) -> list[Send]:
    async with world.db.session() as session:
        return list((await session.scalars(select(Send).order_by(Send.id))).all())


def delivered_ids(sandbox: Sandbox) -> list[str]:
    """Message-IDs the server accepted, from what it filed in Sent Items."""
    return [
        m.message_id
        for address in ("rep0@sender.example", "rep1@sender.example")
        for m in sandbox.store.messages(address, SENT_ITEMS)
    ]


async def test_a_crash_after_the_server_accepted_is_found_in_sent_items_and_never_resent(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=1, leads=2, steps=2)
    await with_imap(world, sandbox)

    world.engine.submitter = DiesAfterTheServerAccepts(world.engine.submitter)
    with pytest.raises(Crash):
        await world.engine.tick()
    await world.engine.close()
    [lost] = await all_sends(world)
    assert lost.status == SendStatus.SUBMITTING
    assert delivered_ids(sandbox) == [lost.message_id]

    clock.advance(timedelta(minutes=30))
    engine = restart(world)
    assert await engine.recover() == 1
    [found] = await all_sends(world)
    assert found.status == SendStatus.SENT and found.reconciled_at == clock.now()
    async with world.db.session() as session:
        enrollment = await session.get(Enrollment, found.enrollment_id)
        kinds = (await session.scalars(select(Event.kind))).all()
    assert enrollment is not None and enrollment.next_step == 2
    assert enrollment.thread_message_id == found.message_id
    # The follow-up counts from when the first step left, not from the restart.
    assert enrollment.next_due_at == found.claimed_at + timedelta(days=1)
    assert "send.reconciled" in kinds
    try:
        await engine.run_until(clock.now() + timedelta(days=3))
    finally:
        await engine.close()
    ids = delivered_ids(sandbox)
    assert len(ids) == len(set(ids)) == 4  # two leads, two steps, each once
    sends = await all_sends(world)
    assert Counter(s.status for s in sends) == {SendStatus.SENT: 4}
    assert len({(s.enrollment_id, s.step_position) for s in sends}) == 4
    await world.db.close()


async def test_a_crash_while_submitting_that_the_server_never_saw_is_left_for_a_person(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=1, leads=2, steps=1)
    await with_imap(world, sandbox)

    # After `submitting` was committed, before the connection opened.
    world.engine.submitter = FakeSubmitter(crash)
    with pytest.raises(Crash):
        await world.engine.tick()
    await world.engine.close()
    [lost] = await all_sends(world)
    assert lost.status == SendStatus.SUBMITTING and delivered_ids(sandbox) == []

    engine = restart(world)
    report = await engine.reconcile()
    assert report.unknown == [lost.id] and report.found == report.released == []
    try:
        await engine.run_until(clock.now() + timedelta(days=2))
    finally:
        await engine.close()
    sends = {s.id: s for s in await all_sends(world)}
    unknown = sends[lost.id]
    assert unknown.status == SendStatus.UNKNOWN and unknown.reconciled_at is not None
    assert "not in the Sent folder" in (unknown.error or "")
    # Never resent: the other lead got its message, this one nothing.
    assert len(delivered_ids(sandbox)) == 1
    assert lost.to_address not in {s.to_address for s in sends.values() if s.status == "sent"}
    # The next start leaves a looked-up unknown alone.
    again = restart(world)
    assert (await again.reconcile()).total == 0
    await again.close()
    await world.db.close()


async def test_a_crash_after_the_claim_releases_the_send_which_then_goes_once(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=1, leads=1, steps=1)
    await with_imap(world, sandbox)

    async def die(*args: object) -> bool:
        raise Crash  # the claim is committed; `submitting` never was

    monkeypatch.setattr(world.engine, "_mark_submitting", die)
    with pytest.raises(Crash):
        await world.engine.tick()
    await world.engine.close()
    [claimed] = await all_sends(world)
    assert claimed.status == SendStatus.CLAIMED

    engine = restart(world)
    report = await engine.reconcile()
    assert report.released == [claimed.id]
    try:
        await engine.run_until(clock.now() + timedelta(hours=2))
    finally:
        await engine.close()
    [sent] = await all_sends(world)
    assert sent.status == SendStatus.SENT and sent.attempts == 2
    assert delivered_ids(sandbox) == [claimed.message_id]  # the same Message-ID, once
    await world.db.close()


async def test_an_unreadable_sent_folder_leaves_unknown_until_it_can_be_read(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=1, leads=1, steps=1)

    world.engine.submitter = DiesAfterTheServerAccepts(world.engine.submitter)
    with pytest.raises(Crash):
        await world.engine.tick()
    await world.engine.close()

    engine = restart(world)  # no IMAP host configured yet
    report = await engine.reconcile()
    assert len(report.unknown) == 1 and "no IMAP host" in report.errors[0]
    [send] = await all_sends(world)
    assert send.status == SendStatus.UNKNOWN and send.reconciled_at is None
    await engine.run_until(clock.now() + timedelta(hours=6))
    await engine.close()
    assert len(delivered_ids(sandbox)) == 1  # not resent meanwhile

    await with_imap(world, sandbox)
    engine = restart(world)
    report = await engine.reconcile()
    await engine.close()
    assert report.found == [send.id]
    [send] = await all_sends(world)
    assert send.status == SendStatus.SENT
    await world.db.close()


async def test_a_lost_connection_after_data_is_reconciled_at_the_next_start(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    """The runtime's own ``unknown`` (reply to DATA lost) is looked up too."""
    world = await build_world(tmp_path, clock, sandbox, mailboxes=1, leads=1, steps=1)
    await with_imap(world, sandbox)
    await world.engine.tick()
    await world.engine.close()
    async with world.db.session() as session:
        send = (await session.scalars(select(Send))).one()
        send.status = SendStatus.UNKNOWN  # as if the 250 after DATA never arrived
    engine = restart(world)
    report = await engine.reconcile()
    await engine.close()
    await world.db.close()
    assert report.found == [send.id]
