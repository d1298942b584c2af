"""``mailfleet simulate SCENARIO --json PATH`` writes the report with its documented keys."""

import json
from pathlib import Path

from typer.testing import CliRunner

from mailfleet.cli.main import app
from mailfleet.simulation import VIOLATION_KEYS

runner = CliRunner()

TINY = """
name = "tiny"
days = 1
seed = 3

[fleet]
domains = 1
mailboxes = 2
min_gap_seconds = 120

[leads]
count = 6
companies = 3

[campaign]
name = "Tiny"
window = { days = [1, 2, 3, 4, 5, 6, 7], start = "08:00", end = "12:00" }
steps = [{ subject = "Hello {{ company }}", body = "Hi {{ first_name }}" }]

[prospects]
reply = 0.2
"""

KEYS = {
    "scenario",
    "days",
    "started_at",
    "ended_at",
    "fleet",
    "leads",
    "steps",
    "totals",
    "inbound",
    "faults",
    "crash",
    "exactly_once",
    "engine",
    "gate",
    "health",
    "warmup",
    "world_changes",
    "violations",
    "violation_details",
    "runtime_seconds",
}


def test_simulate_writes_the_json_report(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(TINY, encoding="utf-8")
    out = tmp_path / "report.json"
    kept = tmp_path / "world"
    result = runner.invoke(
        app, ["simulate", str(scenario), "--json", str(out), "--keep", str(kept)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert set(report) == KEYS
    assert list(report["violations"]) == list(VIOLATION_KEYS)
    assert all(count == 0 for count in report["violations"].values())
    assert report["totals"]["messages_accepted"] == report["totals"]["by_step"]["1"] == 6
    assert {"messages_accepted", "cold", "by_step", "per_mailbox", "refusals"} <= set(
        report["totals"]
    )
    assert {"duplicates", "lost"} <= set(report["exactly_once"])
    assert (kept / "simulation.db").exists()
    assert "Violations" in result.output


def test_simulate_names_a_bad_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\ndays = 0\n', encoding="utf-8")
    result = runner.invoke(app, ["simulate", str(bad)])
    assert result.exit_code == 2
    assert "bad.toml" in result.output and "days" in result.output
