"""`campaign …`, `leads import`, `warmup` and `sends unknown` as an operator runs them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from mailfleet.cli import campaign as campaign_cli
from mailfleet.cli.main import app
from mailfleet.services import leads as leads_service

runner = CliRunner()

CAMPAIGN = """
name: Q3
timezone: Europe/Paris
window: {days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}
mailbox_tags: [cold]
stop: {on_company_reply: true}
fields: [team]
steps:
  - subject: "Hi {{ first_name | default('there') }}"
    body: "About your {{ team | default('sales') }} team"
    variants:
      - {name: A, weight: 2}
      - {name: B, subject: "Quick question", body: "Short one"}
  - delay_days: 3
    business_days: true
    body: "Following up"
"""


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


def write(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


def db(home: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(home / "mailfleet.db") as conn:
        return conn.execute(query).fetchall()


def add_mailbox(address: str, *tags: str) -> None:
    args = ["mailbox", "add", address, "--provider", "generic", "--smtp-host", "smtp.example"]
    args += ["--password-env", "BOX_PASSWORD"]
    for tag in tags:
        args += ["--tag", tag]
    result = run(*args)
    assert result.exit_code == 0, result.output


@pytest.fixture
def campaign_file(tmp_path: Path) -> Path:
    return write(tmp_path / "q3.yaml", CAMPAIGN)


def test_create_stores_a_draft_with_variants_and_rules_and_refuses_a_second(
    home: Path, campaign_file: Path
) -> None:
    add_mailbox("a@brand.example", "cold")
    result = run("campaign", "create", str(campaign_file))
    assert result.exit_code == 0, result.output
    assert "draft" in flat(result)
    [(status, settings)] = db(home, "select status, settings from campaign")
    assert status == "draft"
    assert json.loads(str(settings))["stop"]["on_company_reply"] is True
    variants = [
        json.loads(str(v)) for (v,) in db(home, "select variants from step order by position")
    ]
    assert [v["name"] for v in variants[0]["variants"]] == ["A", "B"]
    assert variants[0]["variants"][1]["subject"] == "Quick question"
    assert variants[1] == {}
    again = run("campaign", "create", str(campaign_file))
    assert again.exit_code == 2 and "already has a campaign 'Q3'" in flat(again)


def test_create_names_file_step_variant_and_field_of_a_template_error(
    home: Path, tmp_path: Path
) -> None:
    bad = write(
        tmp_path / "bad.yaml",
        "name: Bad\nsteps:\n  - subject: Hi\n    body: ok\n    variants:\n"
        "      - {name: A}\n      - {name: B, body: 'Hi {{ frist_name }}'}\n",
    )
    result = run("campaign", "create", str(bad))
    assert result.exit_code == 2
    text = flat(result)
    assert str(bad) in text and "step 1 variant B body" in text and "frist_name" in text
    assert not (home / "mailfleet.db").exists() or db(home, "select count(*) from campaign") == [
        (0,)
    ]
    assert run("campaign", "validate", str(bad)).exit_code == 2


def test_leads_import_reports_every_row_and_dedupes(
    home: Path, tmp_path: Path, campaign_file: Path
) -> None:
    add_mailbox("a@brand.example", "cold")
    assert run("campaign", "create", str(campaign_file)).exit_code == 0
    other = write(tmp_path / "other.yaml", "name: Other\nsteps:\n  - {subject: s, body: b}\n")
    assert run("campaign", "create", str(other)).exit_code == 0
    first = write(
        tmp_path / "first.csv",
        "Work Email,First Name,Company Name,Team\n"
        "ann@acme.example,Ann,Acme,growth\n"
        "bob@beta.example,Bob,Beta,sales\n",
    )
    result = run("leads", "import", str(first), "--campaign", "Other", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["enrolled"] == 2
    with sqlite3.connect(home / "mailfleet.db") as conn:
        ws = conn.execute("select id from workspace").fetchone()[0]
        conn.execute(
            "insert into suppression (workspace_id, kind, value, reason, created_at) values "
            f"({ws}, 'email', 'carl@gamma.example', 'unsubscribe', '2026-01-01 00:00:00'),"
            f"({ws}, 'domain', 'blocked.example', 'manual', '2026-01-01 00:00:00')"
        )
    second = write(
        tmp_path / "second.csv",
        "Work Email,First Name,Company Name,Team\n"
        "ann@acme.example,Ann,Acme,growth\n"  # in Other's sequence
        "carl@gamma.example,Carl,Gamma,ops\n"  # suppressed address
        "dan@eu.blocked.example,Dan,Blocked,ops\n"  # suppressed domain
        "not-an-address,Eve,E,ops\n"
        "fay@delta.example,Fay,Delta,ops\n"
        "FAY@delta.example,Fay,Delta,ops\n",  # the same person again
    )
    result = run("leads", "import", str(second), "--campaign", "Q3", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["rows"], report["created"], report["existing"], report["enrolled"]) == (
        6,
        1,
        0,
        1,
    )
    assert [(s["row"], s["reason"]) for s in report["skipped"]] == [(2, "in_another_campaign")]
    assert "Other" in report["skipped"][0]["message"]
    assert [(r["row"], r["reason"]) for r in report["rejected"]] == [
        (3, "suppressed"),
        (4, "suppressed"),
        (5, "invalid_email"),
        (7, "duplicate"),
    ]
    assert all(str(second) in r["message"] for r in report["rejected"])
    # Allowed across campaigns on request; an existing lead is reused, not duplicated.
    result = run(
        "leads",
        "import",
        str(second),
        "--campaign",
        "Q3",
        "--allow-duplicates-across-campaigns",
        "--json",
    )
    report = json.loads(result.output)
    assert (report["created"], report["existing"], report["enrolled"]) == (0, 1, 1)
    assert [s["reason"] for s in report["skipped"]] == ["already_in_campaign"]
    assert db(home, "select count(*) from lead") == [(3,)]
    human = run("leads", "import", str(second), "--campaign", "Q3")
    assert human.exit_code == 0 and "2 skipped, 4 rejected" in flat(human)


def test_leads_import_is_all_or_nothing(
    home: Path, tmp_path: Path, campaign_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_mailbox("a@brand.example", "cold")
    assert run("campaign", "create", str(campaign_file)).exit_code == 0
    rows = "\n".join(f"lead{i}@acme{i}.example,L{i}" for i in range(5000))
    csv = write(tmp_path / "big.csv", "email,first_name\n" + rows)
    real = leads_service.import_into_campaign

    async def dies_after_storing(*args, **kwargs):  # type: ignore[no-untyped-def]
        await real(*args, **kwargs)
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(leads_service, "import_into_campaign", dies_after_storing)
        result = run("leads", "import", str(csv), "--campaign", "Q3")
    assert result.exit_code != 0
    assert db(home, "select count(*) from lead") == [(0,)]
    assert db(home, "select count(*) from enrollment") == [(0,)]
    result = run("leads", "import", str(csv), "--campaign", "Q3")
    assert result.exit_code == 0, result.output
    assert db(home, "select count(*), count(distinct email_domain) from lead") == [(5000, 5000)]
    assert db(home, "select count(*) from enrollment where status = 'active'") == [(5000,)]


def test_leads_import_mapping_and_file_errors(
    home: Path, tmp_path: Path, campaign_file: Path
) -> None:
    add_mailbox("a@brand.example", "cold")
    assert run("campaign", "create", str(campaign_file)).exit_code == 0
    csv = write(tmp_path / "m.csv", "Contact,Given,Dept\nann@acme.example,Ann,growth\n")
    result = run(
        "leads",
        "import",
        str(csv),
        "--campaign",
        "Q3",
        "--mapping",
        "Contact=email",
        "--mapping",
        "Given=first_name",
        "--mapping",
        "Dept=team",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert (
        json.loads(result.output)["enrolled"] == 1 and json.loads(result.output)["warnings"] == []
    )
    assert db(home, "select first_name, fields from lead") == [("Ann", '{"team": "growth"}')]
    no_email = write(tmp_path / "n.csv", "name\nAnn\n")
    result = run("leads", "import", str(no_email), "--campaign", "Q3")
    assert result.exit_code == 2 and "no email column" in flat(result)
    assert run("leads", "import", str(csv), "--campaign", "Nope").exit_code == 2
    assert run("leads", "import", str(csv), "--campaign", "Q3", "--mapping", "bad").exit_code == 2


class CleanDns:
    async def failing(self, domain: str, provider: str) -> tuple[str, ...]:
        return ()


def test_start_checks_readiness_then_pause_and_resume(
    home: Path, tmp_path: Path, campaign_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(campaign_cli, "domain_checker", CleanDns)
    assert run("campaign", "create", str(campaign_file)).exit_code == 0
    refused = run("campaign", "start", "Q3")
    assert refused.exit_code == 2
    assert "selects no mailbox" in flat(refused) and "no lead is enrolled" in flat(refused)
    add_mailbox("a@brand.example", "cold")
    add_mailbox("b@brand.example", "warm")  # not selected by the tag
    csv = write(tmp_path / "l.csv", "email\nann@acme.example\n")
    assert run("leads", "import", str(csv), "--campaign", "Q3").exit_code == 0
    refused = run("campaign", "start", "Q3")
    # The default public URL is loopback: unsubscribe links would not work for recipients.
    assert refused.exit_code == 2 and "MAILFLEET_PUBLIC_URL" in flat(refused)
    assert "public_url_not_https" not in flat(refused)
    monkeypatch.setenv("MAILFLEET_PUBLIC_URL", "https://links.brand.example")
    refused = run("campaign", "start", "Q3")
    assert refused.exit_code == 2 and "MAILFLEET_PUBLIC_URL" not in flat(refused)
    # Warmup that has not run yet is a warning: `mailfleet run` sends it before cold mail.
    readiness = json.loads(run("campaign", "show", "Q3", "--json").output)["readiness"]
    warmup = [f for f in readiness if f["code"] == "warmup_not_running"]
    assert [f["level"] for f in warmup] == ["warning"]
    assert "mailfleet run" in warmup[0]["message"] and "not built" not in warmup[0]["message"]
    off = run("warmup", "off", "a@brand.example")
    assert off.exit_code == 0 and "warmup off" in flat(off)
    young = run("campaign", "start", "Q3")
    assert young.exit_code == 2 and "warmed up for 0 of 14 days" in flat(young)
    db(home, "update mailbox set created_at = datetime(created_at, '-15 days')")
    started = run("campaign", "start", "Q3")
    assert started.exit_code == 0, started.output
    assert db(home, "select status from campaign") == [("active",)]
    assert run("campaign", "start", "Q3").exit_code == 2
    assert run("campaign", "pause", "Q3").exit_code == 0
    assert db(home, "select status from campaign") == [("paused",)]
    assert run("campaign", "resume", "Q3").exit_code == 0
    assert db(home, "select status from campaign") == [("active",)]
    shown = run("campaign", "show", "Q3", "--json")
    item = json.loads(shown.output)
    assert item["mailboxes"] == ["a@brand.example"] and item["enrolled"] == 1
    assert [v["name"] for v in item["steps"][0]["variants"]] == ["A", "B"]
    assert item["stop"]["on_company_reply"] is True and item["readiness"] == []
    listed = json.loads(run("campaign", "list", "--json").output)
    assert [(c["name"], c["status"]) for c in listed] == [("Q3", "active")]
    assert "Q3" in run("campaign", "show", "Q3").output
    kinds = [k for (k,) in db(home, "select kind from event where kind like 'campaign.%'")]
    assert kinds == ["campaign.created", "campaign.started", "campaign.paused", "campaign.resumed"]
    status = json.loads(run("warmup", "status", "--json").output)
    assert [(m["address"], m["warmup"], m["ratio"]) for m in status] == [
        ("a@brand.example", False, 2.0),
        ("b@brand.example", True, 2.0),
    ]
    assert run("warmup", "on", "a@brand.example", "--ratio", "3").exit_code == 0
    assert db(
        home, "select warmup_enabled, warmup_ratio from mailbox where address like 'a@%'"
    ) == [(1, 3.0)]
    # While Q3 runs, a's warmup target is what the sender plans: 3 x its cold cap of the
    # day; b is in no running campaign, so its target is its ramp's.
    status = {m["address"]: m for m in json.loads(run("warmup", "status", "--json").output)}
    a, b = status["a@brand.example"], status["b@brand.example"]
    assert a["cold_target"] > 0 and a["warmup_target"] >= 3 * a["cold_target"]
    assert b["warmup_target"] < 2 * b["cold_target"]


def test_sends_unknown_lists_what_a_person_must_decide(home: Path, campaign_file: Path) -> None:
    add_mailbox("a@brand.example", "cold")
    assert run("campaign", "create", str(campaign_file)).exit_code == 0
    assert "no unknown sends" in run("sends", "unknown").output
    with sqlite3.connect(home / "mailfleet.db") as conn:
        conn.execute(
            "insert into send (workspace_id, kind, mailbox_id, message_id, from_address, "
            "to_address, recipients, subject, status, attempts, claimed_at, error) values "
            "(1, 'cold', 1, '<x1@brand.example>', 'a@brand.example', 'ann@acme.example', 1, "
            "'Hi', 'unknown', 1, '2026-03-02 10:00:00', 'not in the Sent folder')"
        )
    items = json.loads(run("sends", "unknown", "--json").output)
    assert [(i["message_id"], i["to"], i["why"]) for i in items] == [
        ("<x1@brand.example>", "ann@acme.example", "not in the Sent folder")
    ]
    assert "<x1@brand.example>" in flat(run("sends", "unknown"))
