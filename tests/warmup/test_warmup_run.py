"""``mailfleet run`` sends the fleet's warmup, marked as the installation configured."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mailfleet.clock import VirtualClock, utc
from mailfleet.config import Settings
from mailfleet.sandbox import Sandbox
from mailfleet.sandbox.mailstore import INBOX
from mailfleet.store import Send, SendKind, SendStatus

from .world import build


@pytest.fixture
def clock() -> VirtualClock:
    # The runner sleeps on its clock, as production does: time must flow, not jump (a
    # jumping clock would race its jobs through the warmup day).
    return VirtualClock(utc(2026, 3, 2, 0), speed=60)


async def test_the_runner_sends_warmup_with_the_installation_marker(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailfleet.cli.run import Runner

    world = await build(tmp_path, clock, sandbox)
    try:
        monkeypatch.delenv("MAILFLEET_SECRET_KEY", raising=False)
        config = Settings(
            home=tmp_path / "home",
            database_url=world.db.url,
            key_file=tmp_path / "key",
            warmup_marker_prefix="acme-wu",
            warmup_marker_header="X-Acme-Ref",
        )
        config.ensure_home()
        clock.advance(timedelta(hours=13))  # the middle of the mailboxes' warmup day
        runner = Runner(
            config,
            clock,
            metrics_port=0,
            health_every=timedelta(seconds=0.2),
            idle_wake=timedelta(seconds=0.1),
            read_inbox=False,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        try:
            await asyncio.wait_for(runner.ready.wait(), 30)
            sent: list[Send] = []
            for _ in range(200):
                async with world.db.session() as session:
                    sent = list(
                        (
                            await session.scalars(
                                select(Send).where(
                                    Send.kind == SendKind.WARMUP, Send.status == SendStatus.SENT
                                )
                            )
                        ).all()
                    )
                if sent:
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        assert sent, "mailfleet run sent no warmup"
        delivered = [
            m
            for address in world.ids
            for m in sandbox.store.messages(address, INBOX)
            if m.sender in world.ids
        ]
        assert delivered
        for message in delivered:
            assert b"X-Acme-Ref: acme-wu" in message.raw
            assert b"mfwu-" not in message.raw
    finally:
        await world.close()


def test_a_bad_marker_is_refused_with_its_setting_named() -> None:
    with pytest.raises(ValueError, match="MAILFLEET_WARMUP_MARKER_PREFIX"):
        Settings(warmup_marker_prefix="x")
    with pytest.raises(ValueError, match="header 'Subject'"):
        Settings(warmup_marker_header="Subject")
