"""`mailfleet warmup pause | resume | set | status` as an operator runs them."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from mailfleet.cli.main import app

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("MAILFLEET_HOME", str(folder))
    monkeypatch.delenv("MAILFLEET_DATABASE_URL", raising=False)
    monkeypatch.delenv("MAILFLEET_SECRET_KEY", raising=False)
    monkeypatch.setenv("BOX_PASSWORD", "pw-not-verified")
    return folder


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def flat(result: Result) -> str:
    return " ".join(result.output.split())


def db(home: Path, query: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(home / "mailfleet.db") as conn:
        return conn.execute(query, params).fetchall()


def add_mailbox(address: str) -> None:
    args = ["mailbox", "add", address, "--provider", "generic", "--smtp-host", "smtp.example"]
    result = run(*args, "--password-env", "BOX_PASSWORD")
    assert result.exit_code == 0, result.output


def test_pause_resume_and_set_change_the_mailbox_warmup_and_leave_events(home: Path) -> None:
    add_mailbox("a@brand.example")
    paused = run("warmup", "pause", "a@brand.example", "--reason", "domain moved")
    assert paused.exit_code == 0 and "warmup paused (domain moved)" in flat(paused)
    assert db(home, "select paused, paused_reason from warmup_settings") == [(1, "domain moved")]
    assert run("warmup", "resume", "a@brand.example").exit_code == 0
    assert db(home, "select paused, paused_reason from warmup_settings") == [(0, None)]
    changed = run(
        "warmup",
        "set",
        "a@brand.example",
        "--start",
        "3",
        "--step",
        "1",
        "--ceiling",
        "20",
        "--weekdays-only",
    )
    assert changed.exit_code == 0, changed.output
    assert "3 a day, +1 a day, up to 20, weekdays only" in flat(changed)
    assert db(
        home, "select ramp_start, ramp_step, ramp_ceiling, weekdays_only from warmup_settings"
    ) == [(3, 1, 20, 1)]
    kinds = [k for (k,) in db(home, "select kind from event where kind like 'warmup.%'")]
    assert kinds == ["warmup.paused", "warmup.resumed", "warmup.settings"]


def test_bad_input_is_refused_with_the_reason_and_changes_nothing(home: Path) -> None:
    add_mailbox("a@brand.example")
    assert run("warmup", "pause", "nobody@x.example").exit_code == 2
    bad = run("warmup", "set", "a@brand.example", "--start", "50", "--ceiling", "10")
    assert bad.exit_code == 2 and "above its ceiling" in flat(bad)
    assert db(home, "select ramp_start, ramp_ceiling from warmup_settings") == []  # rolled back
    assert run("warmup", "set", "a@brand.example", "--start", "-1").exit_code == 2


def test_status_shows_ramp_day_targets_placement_health_and_the_cold_cap(home: Path) -> None:
    add_mailbox("a@brand.example")
    add_mailbox("b@other.example")
    assert run("warmup", "status", "--json").exit_code == 0  # creates the settings rows
    now = datetime.now(UTC).replace(tzinfo=None)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    ten_days_ago = (now - timedelta(days=9)).date().isoformat()
    with sqlite3.connect(home / "mailfleet.db") as conn:
        conn.execute(
            "update warmup_settings set started_on = ?, cold_cap_factor = 0.5 where mailbox_id = 1",
            (ten_days_ago,),
        )
        conn.execute(
            "insert into warmup_thread (workspace_id, opener_mailbox_id, peer_mailbox_id, topic, "
            'subject, root_message_id, last_message_id, "references", messages, started_at, '
            "last_at) values (1, 1, 2, 0, 'Hi', '<r@b>', '<r@b>', '[]', 1, ?, ?)",
            (now, now),
        )
        for i, placement in enumerate(["inbox", "inbox", "inbox", "junk"]):
            # Earlier today, whatever the time of the run (also just after midnight UTC).
            at = now - (now - midnight) * (i + 1) / 8
            conn.execute(
                "insert into send (workspace_id, kind, mailbox_id, message_id, from_address, "
                "to_address, recipients, subject, status, attempts, claimed_at) values "
                "(1, 'warmup', 1, ?, 'a@brand.example', 'b@other.example', 1, 'Hi', 'sent', 1, ?)",
                (f"<w{i}@brand.example>", at),
            )
            conn.execute(
                "insert into warmup_message (send_id, thread_id, sender_mailbox_id, "
                "peer_mailbox_id, message_id, token, origin, planned_at, placement, observed_at, "
                "flagged) values (last_insert_rowid(), 1, 1, 2, ?, ?, 'plan', ?, ?, ?, 0)",
                (f"<w{i}@brand.example>", f"mfwu-aaaaaaa{i}", at, placement, at),
            )
    items = {m["address"]: m for m in json.loads(run("warmup", "status", "--json").output)}
    a = items["a@brand.example"]
    assert a["ramp_day"] == 10 and a["warmup_today"] >= 1
    assert 20 <= a["warmup_target"] <= 26  # 5 + 2 x 9 = 23, +-10 %
    assert a["inbox_7d"] == 0.75 and a["junk_7d"] == 0.25 and a["cold_cap_factor"] == 0.5
    assert a["health"] is not None and 0 <= a["health"] <= 100
    assert items["b@other.example"]["inbox_7d"] is None
    table = run("warmup", "status")
    assert table.exit_code == 0 and "75%" in table.output and "50%" in table.output
    add_mailbox("c@brand.example")  # a second mailbox on the domain, nothing seen from it yet
    domains = {
        d["domain"]: d for d in json.loads(run("warmup", "status", "--json", "--by-domain").output)
    }
    brand = domains["brand.example"]
    assert brand["mailboxes"] == 2 and brand["sent_28d"] == 4
    assert brand["inbox_7d"] == 0.75 and brand["junk_28d"] == 0.25 and brand["health"] is not None
    assert (
        domains["other.example"]["inbox_7d"] is None and domains["other.example"]["health"] is None
    )
    by_domain = run("warmup", "status", "--by-domain")
    assert by_domain.exit_code == 0 and "brand" in by_domain.output
    assert "75%" in by_domain.output
