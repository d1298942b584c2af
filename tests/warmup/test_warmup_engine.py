"""Warmup beside cold: the ratio holds in what the sandbox received, and cold still flows."""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from mailfleet.clock import VirtualClock
from mailfleet.engine.runtime import Engine
from mailfleet.sandbox import SENT_ITEMS, Sandbox
from mailfleet.store import Mailbox, Send, SendKind, SendStatus
from mailfleet.store.models import WarmupSettings

from .world import DOMAINS, build


async def test_cold_waits_for_warmup_and_warmup_is_raised_so_the_day_keeps_two_to_one(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build(tmp_path, clock, sandbox, leads=40, daily_cap=6)
    engine = Engine(
        world.db, clock, world.box, public_url="https://mf.example", unsubscribe_key=b"k" * 32
    )
    try:
        end = clock.now() + timedelta(hours=23)
        while clock.now() < end:
            now = clock.now()
            warm = await world.sender.tick(now)
            assert not warm.errors, warm.errors
            cold = await engine.tick()
            assert not cold.errors, cold.errors
            await world.receiver.run_once()
            wake = min(t for t in (world.sender.next_due(now), now + timedelta(minutes=20)) if t)
            clock.advance_to(max(wake, now + timedelta(minutes=1)))
        marker = world.sender.config.marker
        for address in world.ids:
            kinds: Counter[str] = Counter()
            for stored in sandbox.store.messages(address, SENT_ITEMS):
                parsed = email.message_from_bytes(stored.raw, policy=email.policy.compat32)
                kinds["warmup" if marker.find(parsed) else "cold"] += 1
            assert kinds["cold"] == 6, (address, kinds)  # the whole day's cold cap went out
            assert kinds["warmup"] >= 2 * kinds["cold"], (address, kinds)
        async with world.db.session() as session:
            sends = (await session.scalars(select(Send))).all()
            boxes = {m.id: m for m in (await session.scalars(select(Mailbox))).all()}
            started = {r.mailbox_id for r in (await session.scalars(select(WarmupSettings))).all()}
        assert started == set(boxes)
        # Every send was admitted in order: each cold send had 2 accepted warmup sends per cold
        # send (itself included) before it, per mailbox.
        for mailbox_id in boxes:
            warm = cold_count = 0
            for send in sorted(
                (s for s in sends if s.mailbox_id == mailbox_id), key=lambda s: (s.claimed_at, s.id)
            ):
                if send.kind == SendKind.WARMUP and send.status == SendStatus.SENT:
                    warm += 1
                elif send.kind == SendKind.COLD:
                    cold_count += 1
                    assert warm >= 2 * cold_count
        assert len(DOMAINS) == len(boxes)
    finally:
        await engine.close()
        await world.close()


async def test_the_engine_runs_warmup_itself_and_wakes_for_it(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    """``Engine(warmup=...)``: one tick makes warmup then cold sends; next_wake covers both."""
    world = await build(tmp_path, clock, sandbox, leads=40, daily_cap=6)
    engine = Engine(
        world.db,
        clock,
        world.box,
        public_url="https://mf.example",
        unsubscribe_key=b"k" * 32,
        warmup=world.sender.config,
    )
    try:
        end = clock.now() + timedelta(hours=23)
        ticks = warmed = 0
        while clock.now() < end:
            report = await engine.tick()
            assert not report.errors, report.errors
            ticks += 1
            warmed += report.warmup_sent
            await world.receiver.run_once()
            wake = min(engine.next_wake(report), clock.now() + timedelta(minutes=20))
            clock.advance_to(max(wake, clock.now() + timedelta(seconds=1)))
        marker = world.sender.config.marker
        for address in world.ids:
            kinds: Counter[str] = Counter()
            for stored in sandbox.store.messages(address, SENT_ITEMS):
                parsed = email.message_from_bytes(stored.raw, policy=email.policy.compat32)
                kinds["warmup" if marker.find(parsed) else "cold"] += 1
            assert kinds["cold"] == 6, (address, kinds)
            assert kinds["warmup"] >= 2 * kinds["cold"], (address, kinds)
        assert warmed >= 12 * len(world.ids)
        assert ticks < 2000, ticks  # woken for work, not polled every second
    finally:
        await engine.close()
        await world.close()
