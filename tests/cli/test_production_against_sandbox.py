"""The production process against `mailfleet sandbox`, both as subprocesses, as a user runs them.

`mailfleet sandbox` emulates Microsoft 365 on loopback (prospects who reply, bounce and go
out of office), `mailfleet run` sends a 3-step campaign with warmup at 2:1 through it, a
prospect unsubscribes with one click, `run` is killed with SIGKILL while it sends and
started again. Both processes read one rehearsal clock running 3,000 times faster than
real time. The sandbox's own record of what it accepted (``received.jsonl``) must show
each lead's step at most once and nothing to a lead after its sequence stopped.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

SRC = Path(__file__).resolve().parents[2] / "src"
SPEED = 3000
LEADS = 24
CAMPAIGN = """
name: Rehearsal
timezone: UTC
window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "24:00"}
steps:
  - subject: "Hello {{ first_name }}"
    body: "Hi {{ first_name }}, a short question."
  - delay_hours: 2
    body: "Following up on this."
  - delay_hours: 3
    body: "Last note from me."
"""


def to(entry: dict[str, Any]) -> str:
    """The first recipient of a journal entry."""
    return str(entry["to"][0])


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


class World:
    def __init__(self, tmp: Path) -> None:
        self.home = tmp / "home"
        smtp, imap, tokens, dns, public = free_ports(5)
        self.ports = {"smtp": smtp, "imap": imap, "token": tokens, "dns": dns}
        # Mailboxes read warmup hours in their own zone: pick one where it is 08:00 now.
        offset = (8 - datetime.now(UTC).hour) % 24
        offset = offset - 24 if offset > 14 else offset
        self.zone = f"Etc/GMT{-offset:+d}" if offset else "UTC"
        self.env = dict(os.environ)
        self.env.update(
            MAILFLEET_HOME=str(self.home),
            PYTHONPATH=str(SRC),
            PYTHONUNBUFFERED="1",
            COLUMNS="300",
            MAILFLEET_CLOCK_SPEED=str(SPEED),
            MAILFLEET_CLOCK_ORIGIN=datetime.now(UTC).isoformat(),
            MAILFLEET_DNS_NAMESERVER=f"127.0.0.1:{dns}",
            MAILFLEET_PUBLIC_BIND=f"127.0.0.1:{public}",
            MAILFLEET_PUBLIC_URL=f"http://127.0.0.1:{public}",
        )
        for name in ("MAILFLEET_DATABASE_URL", "MAILFLEET_SECRET_KEY"):
            self.env.pop(name, None)
        self.journal = self.home / "sandbox" / "received.jsonl"

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "mailfleet.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "mailfleet.cli.main", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def received(self) -> list[dict[str, Any]]:
        if not self.journal.is_file():
            return []
        lines = self.journal.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def cold(self) -> list[dict[str, Any]]:
        return [r for r in self.received() if to(r).startswith("p")]


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 60) -> str:
    assert proc.stdout is not None
    deadline, seen = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
        if needle in line:
            return seen
    proc.kill()
    raise AssertionError(f"{needle!r} never printed: {seen}")


def wait_until(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def stops(home: Path) -> dict[str, datetime]:
    """Each stopped lead's address and when its sequence stopped."""
    with sqlite3.connect(home / "mailfleet.db") as db:
        rows = db.execute(
            "select lead.email, min(event.at) from event join lead on lead.id = event.lead_id "
            "where event.kind = 'enrollment.stopped' group by lead.email"
        ).fetchall()
    return {email: datetime.fromisoformat(at).replace(tzinfo=UTC) for email, at in rows}


def done_enough(world: World) -> bool:
    """Some lead had every step, and replies or bounces stopped two more."""
    per_lead = Counter(to(r) for r in world.cold())
    return max(per_lead.values(), default=0) == 3 and len(stops(world.home)) >= 3


def test_run_against_the_sandbox_sends_each_step_once_and_nothing_after_a_stop(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    p = world.ports
    sandbox = world.start(
        "sandbox", "--mailboxes", "4", "--smtp-port", str(p["smtp"]), "--imap-port",
        str(p["imap"]), "--token-port", str(p["token"]), "--dns-port", str(p["dns"]),
        "--answers", "reply=0.25,out_of_office=0.1,hard_bounce=0.15",
    )  # fmt: skip
    runs: list[subprocess.Popen[str]] = []
    try:
        wait_for_line(sandbox, "sandbox ready")
        for address in [f"rep{n}@sandbox-{(n + 1) // 2}.example" for n in range(1, 5)]:
            world.cli("mailbox", "set", address, "--timezone", world.zone)
        (tmp_path / "c.yaml").write_text(CAMPAIGN, encoding="utf-8")
        lines = ["email,first_name"]
        lines += [f"p{i}@prospect{i % 4 + 1}.example,P{i}" for i in range(LEADS)]
        (tmp_path / "leads.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        world.cli("campaign", "create", str(tmp_path / "c.yaml"))
        world.cli("leads", "import", str(tmp_path / "leads.csv"), "--campaign", "Rehearsal")
        world.cli("campaign", "start", "Rehearsal")

        runs.append(world.start("run", "--metrics-port", "0"))
        wait_for_line(runs[-1], "mailfleet running")
        wait_until(lambda: len(world.cold()) >= 6, 60, "the first cold sends")
        first = world.cold()[0]
        target = to(first)
        link = next(
            u.strip("<> ")
            for u in str(first["list_unsubscribe"]).split(",")
            if u.strip().startswith("<http")
        )
        done = httpx.post(link, data={"List-Unsubscribe": "One-Click"}, timeout=10)
        assert done.status_code == 200

        runs[-1].send_signal(signal.SIGKILL)  # while it is sending
        runs[-1].wait(timeout=30)
        runs.append(world.start("run", "--metrics-port", "0"))
        wait_for_line(runs[-1], "mailfleet running")
        # Until some lead got all three steps and the prospects' answers stopped others
        # (at least a virtual day; longer when the machine is loaded).
        time.sleep(timedelta(days=1).total_seconds() / SPEED)
        wait_until(lambda: done_enough(world), 120, "every step and several answers")
        runs[-1].send_signal(signal.SIGTERM)
        out, _ = runs[-1].communicate(timeout=180)  # a tick in progress finishes first
        assert runs[-1].returncode == 0, out
        assert "Traceback" not in out
    finally:
        for proc in (*runs, sandbox):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    cold = world.cold()
    ids = Counter(str(r["message_id"]) for r in cold)
    assert [m for m, n in ids.items() if n > 1] == []  # nothing sent twice
    by_lead: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in cold:
        by_lead[to(r)].append(r)
    assert all(len(v) <= 3 for v in by_lead.values()), {k: len(v) for k, v in by_lead.items()}
    stopped = stops(world.home)
    assert target in stopped  # the one-click unsubscribe
    assert len(stopped) >= 3  # and replies and bounces from the prospects
    for lead, at in stopped.items():
        late = [r for r in by_lead[lead] if datetime.fromisoformat(str(r["at"])) > at]
        assert late == [], (lead, at, late)
    # The others went on through their sequence; warmup ran beside cold at 2:1.
    assert max(len(v) for v in by_lead.values()) == 3
    warmup = [r for r in world.received() if not to(r).startswith("p")]
    assert len(warmup) >= 2 * len(cold) * 0.9
