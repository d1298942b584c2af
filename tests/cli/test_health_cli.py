"""`mailfleet health`: per mailbox and domain, read-only unless --apply."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from health_rows import fleet, inbound, sends
from mailfleet.cli.main import app
from mailfleet.store import Database

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("MAILFLEET_HOME", str(folder))
    monkeypatch.delenv("MAILFLEET_DATABASE_URL", raising=False)
    monkeypatch.delenv("MAILFLEET_SECRET_KEY", raising=False)
    return folder


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def seed(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)

    async def work() -> None:
        db = Database(f"sqlite+aiosqlite:///{home / 'mailfleet.db'}")
        try:
            await db.migrate()
            ids = await fleet(db, ["a@s.example", "b@s.example", "c@t.example"])
            now = datetime.now(UTC)
            await sends(db, ids["a@s.example"], 50, now - timedelta(days=3))
            await inbound(db, ids["a@s.example"], 3, now - timedelta(days=1))
            await sends(db, ids["b@s.example"], 50, now - timedelta(days=3))
            await sends(db, ids["c@t.example"], 5, now - timedelta(days=3))
        finally:
            await db.close()

    asyncio.run(work())


def test_health_shows_without_pausing_and_apply_pauses(home: Path) -> None:
    assert run("health").output.strip() == "no mailboxes"
    seed(home)
    shown = run("health", "--json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    by = {m["address"]: m for m in data["mailboxes"]}
    assert by["a@s.example"]["hard_bounces_28d"] == 3
    assert by["a@s.example"]["rates_28d"]["hard_bounce"] == pytest.approx(0.06)
    assert by["a@s.example"]["pause"]["rule"] == "hard_bounce_rate"
    assert by["a@s.example"]["status"] == "active"  # read-only: nothing paused
    assert by["c@t.example"]["notes"] and data["paused"] == []
    assert [d["domain"] for d in data["domains"]] == ["s.example", "t.example"]
    table = run("health")
    assert "a@s.example would be paused" in " ".join(table.output.split())

    applied = json.loads(run("health", "--apply", "--json").output)
    assert [p["address"] for p in applied["paused"]] == ["a@s.example"]
    assert applied["paused"][0]["resume"] == "mailfleet mailbox resume a@s.example"
    again = json.loads(run("health", "--json").output)
    by = {m["address"]: m for m in again["mailboxes"]}
    assert by["a@s.example"]["status"] == "paused"
    assert again["domains"][0]["paused"] == 1 and not again["domains"][0]["flagged"]
    assert json.loads(run("health", "--apply", "--json").output)["paused"] == []


def test_health_names_an_unknown_workspace(home: Path) -> None:
    seed(home)
    result = run("health", "--workspace", "nope")
    assert result.exit_code == 2 and "no workspace 'nope'" in result.output
