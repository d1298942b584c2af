"""The long-running sync: IDLE picks mail up at once, a lost server is reconnected with backoff."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from mailfleet.clock import SystemClock, VirtualClock
from mailfleet.engine.inbox import InboxSettings, InboxSync
from mailfleet.sandbox import Sandbox
from mailfleet.store import Event, InboundMessage, Mailbox

from .support import InboxWorld, build, message

FAST = InboxSettings(
    concurrency=4,
    poll_interval=timedelta(seconds=30),  # longer than any wait below: only IDLE can be that quick
    idle_renew=timedelta(seconds=30),
    backoff_base=timedelta(milliseconds=50),
    backoff_max=timedelta(milliseconds=200),
    mailbox_refresh=timedelta(milliseconds=200),
    timeout=5.0,
)
GUARD = 10.0  # a hang guard, not a timing assertion


@pytest.fixture
def clock() -> VirtualClock:
    # The sandbox stamps mail with this clock; the sync reads real time (SystemClock).
    return VirtualClock(datetime.now(UTC))


@pytest.fixture
async def world(tmp_path: Path, clock: VirtualClock, sandbox: Sandbox) -> AsyncIterator[InboxWorld]:
    w = await build(tmp_path, clock, sandbox, sync_clock=SystemClock(), inbox_settings=FAST)
    try:
        yield w
    finally:
        await w.close()


async def count(w: InboxWorld) -> int:
    async with w.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(InboundMessage)) or 0)


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + GUARD
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(inbox: InboxSync) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(inbox.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, GUARD)


async def test_idle_picks_up_mail_as_it_arrives(world: InboxWorld) -> None:
    async with running(world.inbox):
        await eventually(lambda: _has_session(world), "the first pass")
        session = world.inbox._sessions[world.mailbox_id]
        assert session.idle and session.move
        for n in range(3):
            world.deliver(message(sender=f"lead{n}@prospect.example", subject="Question"))
            await eventually(lambda n=n: _at_least(world, n + 1), f"message {n + 1}")
    assert await count(world) == 3


async def _has_session(w: InboxWorld) -> bool:
    return w.mailbox_id in w.inbox._sessions


async def _at_least(w: InboxWorld, n: int) -> bool:
    return await count(w) >= n


async def test_a_lost_server_is_reconnected_with_backoff(
    world: InboxWorld, sandbox: Sandbox
) -> None:
    async with running(world.inbox):
        await eventually(lambda: _has_session(world), "the first pass")
        await sandbox.imap.stop()  # sessions get BYE, the port closes
        await eventually(lambda: _not_connected(world), "the session to drop")
        await asyncio.sleep(0.3)  # a few refused reconnects, each after a backoff
        await sandbox.imap.start()  # back, on a new port
        async with world.db.session() as session:
            await session.execute(
                update(Mailbox)
                .where(Mailbox.id == world.mailbox_id)
                .values(imap_port=sandbox.imap_port)
            )
        world.deliver(message(sender="lead1@prospect.example", subject="Back again"))
        await eventually(lambda: _at_least(world, 1), "the message after reconnecting")


async def _not_connected(w: InboxWorld) -> bool:
    session = w.inbox._sessions.get(w.mailbox_id)
    return session is None or not session.client.is_connected


async def test_a_refused_login_leaves_one_event_and_backs_off(
    world: InboxWorld, sandbox: Sandbox
) -> None:
    sandbox.imap.set_imap_enabled("rep@sender.example", False)
    async with running(world.inbox):

        async def refused() -> bool:
            async with world.db.session() as session:
                kinds = (await session.scalars(select(Event.kind))).all()
            return "inbox.login_failed" in kinds

        await eventually(refused, "the login failure event")
        await asyncio.sleep(0.2)
    async with world.db.session() as session:
        events = (
            await session.scalars(select(Event).where(Event.kind == "inbox.login_failed"))
        ).all()
    assert len(events) == 1 and "AUTHENTICATE failed" in events[0].message


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    sync = InboxSync(
        None,  # type: ignore[arg-type]
        SystemClock(),
        None,  # type: ignore[arg-type]
        settings=InboxSettings(
            backoff_base=timedelta(seconds=10), backoff_max=timedelta(minutes=15)
        ),
        seed=3,
    )
    delays = [sync.backoff(n) for n in range(1, 12)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(timedelta(seconds=10 * 2 ** (n - 1)), timedelta(minutes=15))
        assert ceiling / 2 <= delay <= ceiling
    assert delays[-1] <= timedelta(minutes=15)


def test_idle_renewal_must_stay_inside_rfc_2177() -> None:
    with pytest.raises(ValueError, match="29 minutes"):
        InboxSettings(idle_renew=timedelta(minutes=29))


class BrokenOnce:
    """A credential source with a bug on its first call (not a login error)."""

    def __init__(self, real: object) -> None:
        self.real, self.calls = real, 0

    def credentials(self, mailbox: Mailbox) -> object:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("a bug in our code")
        return self.real.credentials(mailbox)  # type: ignore[attr-defined]


async def test_a_watcher_that_crashes_is_logged_counted_and_restarted(
    world: InboxWorld, caplog: pytest.LogCaptureFixture
) -> None:
    world.inbox.credentials = BrokenOnce(world.inbox.credentials)  # type: ignore[assignment]
    world.deliver(message(sender="lead1@prospect.example", subject="Still read"))
    async with running(world.inbox):
        await eventually(lambda: _at_least(world, 1), "the message after the restart")
    assert world.inbox.faults.snapshot() == {f"inbox watcher {world.mailbox_id}": 1}
    assert "a bug in our code" in caplog.text and "Traceback" in caplog.text
