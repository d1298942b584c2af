"""The command line as a user runs it: the demo, status, and clear errors on bad input."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailfleet.cli.main import app

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("MAILFLEET_HOME", str(folder))
    monkeypatch.delenv("MAILFLEET_DATABASE_URL", raising=False)
    monkeypatch.delenv("MAILFLEET_SECRET_KEY", raising=False)
    return folder


def test_demo_sends_every_first_step_once_and_threads_follow_ups(
    home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.json"
    result = runner.invoke(app, ["demo", "--days", "3", "--json", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert {"mailboxes", "leads", "sends", "sends_by_step", "sends_by_mailbox", "errors"} <= set(
        summary
    )
    assert summary["mailboxes"] == 4 and summary["leads"] == 100
    assert summary["sends_by_step"]["1"] == 100
    assert summary["leads_with_step1_once"] == 100 and summary["duplicate_sends"] == 0
    assert summary["follow_ups_threaded"] == summary["sends_by_step"].get("2", 0) > 0
    assert summary["follow_ups_unthreaded"] == 0
    assert summary["sends"] == sum(summary["sends_by_mailbox"].values())
    assert len(summary["sends_by_mailbox"]) == 4
    assert summary["errors"] == []
    # The data stays: status shows the campaign and the per-mailbox counts.
    status = runner.invoke(app, ["status", "--json"])
    assert status.exit_code == 0, status.output
    workspace = json.loads(status.output)["workspaces"][0]
    assert workspace["campaigns"][0]["sent"] == summary["sends"]
    assert {m["address"]: m["sent_total"] for m in workspace["mailboxes"]} == summary[
        "sends_by_mailbox"
    ]
    table = runner.invoke(app, ["status"])
    assert table.exit_code == 0 and "Campaigns" in table.output and "Mailboxes" in table.output


def test_demo_refuses_a_data_folder_it_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("MAILFLEET_HOME", str(blocker / "data"))
    result = runner.invoke(app, ["demo", "--days", "1"])
    assert result.exit_code == 2
    assert "cannot use data folder" in result.output and str(blocker / "data") in result.output


def test_demo_reports_bad_csv_rows_and_imports_the_rest(home: Path, tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text(
        "Email,First Name,Company\n"
        "ana@prospect1.example,Ana,A Co\n"
        ",NoEmail,B Co\n"
        "bob@@prospect2.example,Bob,C Co\n"
        "ANA@prospect1.example,Ana again,A Co\n"
        "carl@prospect3.example,Carl,D Co\n"
    )
    out = tmp_path / "out.json"
    result = runner.invoke(app, ["demo", "--days", "1", "--leads", str(leads), "--json", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["leads"] == 2
    errors = "\n".join(summary["errors"])
    assert f"{leads} row 3" in errors and "Email" in errors  # missing email
    assert f"{leads} row 4" in errors and "bob@@prospect2.example" in errors
    assert f"{leads} row 5" in errors and "duplicate" in errors.lower()


def test_campaign_with_unknown_variable_is_refused_naming_file_step_and_field(
    home: Path, tmp_path: Path
) -> None:
    campaign = tmp_path / "campaign.yaml"
    campaign.write_text(
        "name: Broken\nsteps:\n  - subject: Hello {{ company }}\n    body: Hi {{ frist_name }}\n"
    )
    for args in (["campaign", "validate", str(campaign)], ["demo", "--campaign", str(campaign)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        assert str(campaign) in text and "step 1 body" in text and "frist_name" in text
    # Nothing was half-created: the demo stopped before building its world.
    assert not (home / "mailfleet.db").exists()


def test_campaign_file_errors_name_the_field(tmp_path: Path) -> None:
    campaign = tmp_path / "c.yaml"
    campaign.write_text("name: X\nwindow: {start: '25:00'}\nsteps:\n  - body: hi\n")
    result = runner.invoke(app, ["campaign", "validate", str(campaign)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "window.start" in text and "25:00" in text
    campaign.write_text("name: [unclosed\n")
    result = runner.invoke(app, ["campaign", "validate", str(campaign)])
    assert result.exit_code == 2 and "not valid" in result.output


def test_leads_check_lists_each_bad_row(tmp_path: Path) -> None:
    leads = tmp_path / "l.csv"
    leads.write_text(
        "email;first_name;timezone\nok@example.com;A;Europe/Paris\nbad;B;UTC\nc@example.com;C;Mars/Base\n"
    )
    result = runner.invoke(app, ["leads", "check", str(leads), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["accepted"] == 1
    assert any("row 3" in e for e in report["errors"]) and any(
        "row 4" in e for e in report["errors"]
    )
    missing = runner.invoke(app, ["leads", "check", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "nope.csv" in missing.output
    no_email = tmp_path / "n.csv"
    no_email.write_text("name,company\nA,B\n")
    result = runner.invoke(app, ["leads", "check", str(no_email)])
    assert result.exit_code == 2 and "name" in result.output


def test_status_without_a_database_says_what_to_do(home: Path) -> None:
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2 and "mailfleet demo" in result.output
