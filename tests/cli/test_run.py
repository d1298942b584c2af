"""`mailfleet run` starts, serves /metrics on loopback and stops cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def start(home: Path, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.update(
        MAILFLEET_HOME=str(home),
        PYTHONPATH=str(SRC),
        PYTHONUNBUFFERED="1",
        COLUMNS="400",
    )
    env.pop("MAILFLEET_DATABASE_URL", None)
    env.pop("MAILFLEET_SECRET_KEY", None)
    return subprocess.Popen(
        [sys.executable, "-m", "mailfleet.cli.main", "run", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_url(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
        found = re.search(r"http://127\.0\.0\.1:\d+/metrics", seen)
        if found:
            return found.group(0)
    proc.kill()
    raise AssertionError(f"no metrics URL in the output: {seen!r} {proc.stderr.read()!r}")


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_metrics_then_stops_cleanly(tmp_path: Path, stop_with: signal.Signals) -> None:
    proc = start(tmp_path / "home", "--metrics-port", "0", "--health-every", "0.1")
    try:
        url = wait_for_url(proc)
        scraped = httpx.get(url, timeout=10)
        assert scraped.status_code == 200
        assert "mailfleet_sends_pending" in scraped.text
        assert 'mailfleet_mailboxes{status="active"} 0.0' in scraped.text
        proc.send_signal(stop_with)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "mailfleet stopped" in out
    assert "Traceback" not in err


def test_run_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = start(tmp_path / "home", "--metrics-port", str(port))
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in " ".join(err.split())
    assert "Traceback" not in err


async def test_the_runner_pauses_a_bouncing_mailbox_and_exposes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    from datetime import timedelta

    from health_rows import fleet, inbound, sends
    from mailfleet.cli.run import Runner
    from mailfleet.clock import SystemClock
    from mailfleet.config import Settings
    from mailfleet.store import Database, Mailbox

    monkeypatch.setenv("MAILFLEET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MAILFLEET_DATABASE_URL", raising=False)
    monkeypatch.delenv("MAILFLEET_SECRET_KEY", raising=False)
    config = Settings()
    config.ensure_home()
    now = SystemClock().now()
    db = Database(config.resolved_database_url)
    await db.migrate()
    ids = await fleet(db, ["a@s.example"])
    await sends(db, ids["a@s.example"], 40, now - timedelta(days=2))
    await inbound(db, ids["a@s.example"], 4, now - timedelta(days=1))
    runner = Runner(
        config,
        SystemClock(),
        metrics_port=0,
        health_every=timedelta(seconds=0.2),
        read_inbox=False,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await asyncio.wait_for(runner.ready.wait(), 30)
        for _ in range(100):
            async with db.session() as session:
                box = await session.get(Mailbox, ids["a@s.example"])
                assert box is not None
                if box.status == "paused":
                    break
            await asyncio.sleep(0.05)
        assert box.status == "paused" and "mailfleet mailbox resume a@s.example" in (
            box.status_reason or ""
        )
        async with httpx.AsyncClient() as client:
            body = (await client.get(f"http://127.0.0.1:{runner.bound_port}/metrics")).text
        assert 'mailfleet_mailboxes{status="paused"} 1.0' in body
        assert 'mailfleet_domain_flagged{domain="s.example"} 1.0' in body
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await db.close()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{runner.bound_port}/metrics", timeout=2)
