"""`mailfleet run`'s public endpoint, end to end: prospects unsubscribe from what they got.

The process's own composition root (:class:`mailfleet.cli.run.Runner`) sends a 2-step
campaign to the sandbox on a clock running 3,600 times faster than real time. One
prospect takes the RFC 8058 link out of the message it received and POSTs it, another
opens the link and presses the page's button; the sandbox's own record shows neither
got the second step, while everyone else did.
"""

from __future__ import annotations

import asyncio
import re
import socket
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest

from engine.world import build_world
from mailfleet.cli.run import Runner
from mailfleet.clock import SystemClock, VirtualClock
from mailfleet.config import Settings
from mailfleet.sandbox import start_sandbox
from mailfleet.sandbox.prospects import AnswerShares

QUIET = AnswerShares(reply=0, unsubscribe=0, out_of_office=0, hard_bounce=0, soft_bounce=0)
LEADS = [f"lead{i}@prospect.example" for i in range(6)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def links(raw: bytes) -> tuple[str, str, str | None]:
    """The https/http link, the mailto link and List-Unsubscribe-Post of a message."""
    msg = message_from_bytes(raw, policy=policy.default)
    found = re.findall(r"<([^>]+)>", str(msg["List-Unsubscribe"]))
    web = next(u for u in found if u.startswith("http"))
    mail = next(u for u in found if u.startswith("mailto:"))
    return web, mail, msg["List-Unsubscribe-Post"]


async def wait_for(predicate: object, seconds: float, what: str) -> None:
    assert callable(predicate)
    for _ in range(int(seconds * 20)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_run_serves_one_click_and_page_unsubscribes_that_stop_the_next_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = VirtualClock(SystemClock().now(), speed=3600)
    sandbox = await start_sandbox(clock, tmp_path / "sandbox")
    sandbox.prospects.shares = QUIET
    world = await build_world(tmp_path, clock, sandbox, mailboxes=2, leads=6, gap_seconds=60)
    await world.db.close()
    port = free_port()
    monkeypatch.setenv("MAILFLEET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MAILFLEET_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    monkeypatch.setenv("MAILFLEET_KEY_FILE", str(tmp_path / "key"))
    monkeypatch.setenv("MAILFLEET_PUBLIC_URL", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("MAILFLEET_SECRET_KEY", raising=False)
    config = Settings()
    config.ensure_home()
    runner = Runner(config, clock, metrics_port=0, public_bind=("127.0.0.1", port))
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))

    def got(address: str) -> int:
        return len(sandbox.store.messages(address))

    try:
        await asyncio.wait_for(runner.ready.wait(), 30)
        await wait_for(lambda: got(LEADS[0]) and got(LEADS[1]), 30, "the first step")
        web, mail, post = links(sandbox.store.messages(LEADS[0])[0].raw)
        assert post == "List-Unsubscribe=One-Click"
        assert web.startswith(f"http://127.0.0.1:{port}/unsubscribe/")
        assert mail.startswith("mailto:rep") and "subject=unsubscribe%20" in mail
        async with httpx.AsyncClient(timeout=10) as client:
            # Prospect 0's mailbox provider does the one-click POST of RFC 8058.
            done = await client.post(web, data={"List-Unsubscribe": "One-Click"})
            assert done.status_code == 200
            # Prospect 1 clicks: a GET alone changes nothing, the button does.
            page_url = links(sandbox.store.messages(LEADS[1])[0].raw)[0]
            page = await client.get(page_url)
            assert page.status_code == 200 and "<form" in page.text
            fields = dict(re.findall(r'name="([^"]+)" value="([^"]+)"', page.text))
            assert (await client.post(page_url, data=fields)).status_code == 200
        # A day later every other lead has its follow-up.
        await wait_for(lambda: all(got(a) == 2 for a in LEADS[2:]), 90, "the second step")
        await asyncio.sleep(1)  # another virtual hour of ticks
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await sandbox.stop()
    assert [got(a) for a in LEADS] == [1, 1, 2, 2, 2, 2]
