"""Warmup sends walk the one send state machine: token refresh, crash recovery, lost claims."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from fakes.submitters import Crash, DiesAfterTheServerAccepts, crash
from mailfleet.clock import VirtualClock
from mailfleet.engine.credentials import MailboxTokens
from mailfleet.engine.reconcile import ImapSentLookup, reconcile_sends
from mailfleet.engine.submitter import PooledSubmitter
from mailfleet.engine.warmup import WarmupSender
from mailfleet.sandbox import Sandbox
from mailfleet.services import sending
from mailfleet.store import Send, SendKind, SendStatus
from mailfleet.store.models import WarmupMessage
from mailfleet.transport.submitter import FakeSubmitter

from .world import WarmupWorld, build, mailbox

A = "rep0@alpha.example"


async def warmup_sends(world: WarmupWorld) -> list[Send]:
    async with world.db.session() as session:
        query = select(Send).where(Send.kind == SendKind.WARMUP).order_by(Send.id)
        return list((await session.scalars(query)).all())


async def test_a_warmup_token_dying_early_gets_one_forced_refresh_and_the_message_goes(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    sandbox.tokens.lifetime = 86_400  # a token that would live all day: only a refresh renews it
    world = await build(tmp_path, clock, sandbox)
    try:
        clock.advance(timedelta(hours=8))
        first = await world.sender.tick(clock.now())
        assert first.sent and not first.errors
        tokens = world.sender.credentials.credentials(await mailbox(world, A)).tokens
        assert isinstance(tokens, MailboxTokens)
        sandbox.tokens.revoke((await tokens.access_token()).token)  # we still trust it
        revoked_at, issued = clock.now(), len(sandbox.tokens._tokens)
        a_id = world.ids[A]
        for _ in range(48):  # until A's next slot comes (within the day)
            clock.advance(timedelta(minutes=15))
            later = await world.sender.tick(clock.now())
            assert not later.errors and later.deferred == later.failed == 0, later
            if any(s.mailbox_id == a_id for s in later.sent):
                break
        else:
            raise AssertionError("A sent no warmup after its token was revoked")
    finally:
        await world.close()
    assert len(sandbox.tokens._tokens) > issued  # the 535 5.7.3 got a forced refresh
    sends = await warmup_sends(world)
    assert {s.status for s in sends} == {SendStatus.SENT}
    assert any(s.from_address == A and s.claimed_at > revoked_at for s in sends)


async def test_a_warmup_send_lost_in_a_crash_is_found_in_sent_items_and_never_resent(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build(tmp_path, clock, sandbox)
    try:
        real = world.sender.submitter
        assert isinstance(real, PooledSubmitter)
        world.sender.submitter = DiesAfterTheServerAccepts(real)
        clock.advance(timedelta(hours=8))
        with pytest.raises(Crash):
            await world.sender.tick(clock.now())
        lost = [s for s in await warmup_sends(world) if s.status == SendStatus.SUBMITTING]
        assert lost
        report = await reconcile_sends(world.db, clock, ImapSentLookup(world.sender.credentials))
        assert sorted(report.found) == sorted(s.id for s in lost)
    finally:
        await world.close()
    settled = {s.id: s.status for s in await warmup_sends(world)}
    assert all(settled[s.id] == SendStatus.SENT for s in lost)


async def test_a_send_no_longer_claimed_is_never_submitted(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build(tmp_path, clock, sandbox)
    fake = FakeSubmitter()
    world.sender.submitter = fake
    try:
        clock.advance(timedelta(hours=8))
        await world.sender.tick(clock.now())
        sent = await warmup_sends(world)
        assert sent and len(fake.submissions) == len(sent)
        async with world.db.session() as session:
            # Another process moved it on already: the transition refuses, nothing goes out.
            assert not await sending.mark_submitting(session, sent[0].id)
    finally:
        await world.close()


async def test_a_warmup_slot_released_after_a_crash_is_sent_again(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build(tmp_path, clock, sandbox)
    try:
        world.sender.submitter = FakeSubmitter(crash)
        clock.advance(timedelta(hours=8))
        with pytest.raises(Crash):
            await world.sender.tick(clock.now())
        async with world.db.session() as session:
            # The claim was committed; the process died before its `submitting` commit.
            lost = list(
                await session.scalars(select(Send).where(Send.status == SendStatus.SUBMITTING))
            )
            for send in lost:
                send.status = SendStatus.CLAIMED
            slots = {
                (m.sender_mailbox_id, m.slot)
                for m in (
                    await session.scalars(
                        select(WarmupMessage).where(WarmupMessage.send_id.in_([s.id for s in lost]))
                    )
                )
            }
        assert lost and all(slot is not None for _, slot in slots)
        report = await reconcile_sends(world.db, clock, ImapSentLookup(world.sender.credentials))
        assert sorted(report.released) == sorted(s.id for s in lost)
        # A new process: the released slots are planned and sent again.
        fresh = WarmupSender(
            world.db, clock, world.sender.credentials, world.pool, config=world.sender.config
        )
        await fresh.tick(clock.now())
        async with world.db.session() as session:
            resent = {
                (m.sender_mailbox_id, m.slot)
                for m, status in (
                    await session.execute(
                        select(WarmupMessage, Send.status).join(
                            Send, Send.id == WarmupMessage.send_id
                        )
                    )
                ).all()
                if status == SendStatus.SENT
            }
        assert slots <= resent
    finally:
        await world.close()
