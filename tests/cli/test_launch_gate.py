"""The pre-launch gate: every reason listed, --force records them, bad DNS never crashes."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from mailfleet.cli import campaign as campaign_cli
from mailfleet.cli.main import app
from mailfleet.clock import utc
from mailfleet.readiness import (
    GateDomain,
    GateFacts,
    GateMailbox,
    LaunchFacts,
    LeadCheck,
    MailboxFacts,
    assess,
)
from mailfleet.sandbox.dns import SandboxDnsServer, Zones, sandbox_domain_zone

runner = CliRunner()
NOW = utc(2026, 3, 30, 12)

CAMPAIGN = """
name: Q3
timezone: UTC
window: {days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}
steps:
  - subject: "Hi"
    body: "Hello"
"""


class FakeDns:
    """Fails what it is told to, per domain; raises for the domain named ``broken``."""

    def __init__(self, failing: dict[str, tuple[str, ...]], broken: str | None = None) -> None:
        self.failing_by_domain = failing
        self.broken = broken
        self.asked: list[tuple[str, str]] = []

    async def failing(self, domain: str, provider: str) -> tuple[str, ...]:
        self.asked.append((domain, provider))
        if domain == self.broken:
            raise TimeoutError("the DNS server did not answer in 5 s")
        return self.failing_by_domain.get(domain, ())


def facts(
    boxes: tuple[GateMailbox, ...],
    domains: tuple[GateDomain, ...] = (),
    *,
    validation: LeadCheck | None = None,
    unvalidated: int = 0,
    dns_checked: bool = True,
) -> LaunchFacts:
    return LaunchFacts(
        campaign="Q3",
        status="draft",
        steps=1,
        mailboxes=tuple(
            MailboxFacts(b.address, b.status, b.status == "active", False, 0.0, 0) for b in boxes
        ),
        enrolled_active=5,
        gate=GateFacts(
            at=NOW,
            mailboxes=boxes,
            domains=domains,
            dns_checked=dns_checked,
            validation=validation,
            unvalidated=unvalidated,
        ),
    )


def box(address: str, status: str = "active", days: float = 30) -> GateMailbox:
    return GateMailbox(
        address,
        status,
        "hard bounces" if status != "active" else None,
        address.partition("@")[2],
        NOW - timedelta(days=days),
    )


VALID = LeadCheck(NOW - timedelta(days=1), "leads.csv", 5, 5, 0)


def test_gate_lists_every_reason_at_once() -> None:
    found = assess(
        facts(
            (
                box("a@s.example"),
                box("b@s.example", "paused"),
                box("c@t.example", "disconnected"),
                box("d@t.example", days=13.5),
            ),
            (GateDomain("s.example", "google", ("dkim",)), GateDomain("t.example", "generic")),
        )
    )
    codes = sorted(f.code for f in found if f.level == "error")
    assert codes == [
        "dns_failing",
        "leads_unvalidated",
        "mailbox_disconnected",
        "mailbox_paused",
        "warmup_period",
    ]
    text = " ".join(f.message for f in found)
    assert "mailfleet mailbox resume b@s.example" in text
    assert "d@t.example has warmed up for 13 of 14 days" in text
    assert "s.example fails DKIM" in text and "never validated" in text
    assert not [f for f in found if f.code == "mailbox_inactive"]  # not said twice


def test_a_ready_fleet_passes_and_late_enrollments_need_validation() -> None:
    ready = facts(
        (box("a@s.example", days=14),), (GateDomain("s.example", "generic"),), validation=VALID
    )
    assert assess(ready) == []
    late = facts((box("a@s.example"),), validation=VALID, unvalidated=2)
    assert [f.code for f in assess(late)] == ["leads_unvalidated"]
    assert "2 enrolled lead(s) were added after" in assess(late)[0].message
    unchecked = facts(
        (box("a@s.example"),),
        (GateDomain("s.example", "generic"),),
        validation=VALID,
        dns_checked=False,
    )
    assert [(f.level, f.code) for f in assess(unchecked)] == [("warning", "dns_unchecked")]


async def test_a_checker_that_raises_or_answers_nonsense_is_a_finding() -> None:
    from mailfleet.services.gate import check_domain

    timed_out = await check_domain(FakeDns({}, broken="x.example"), "x.example", "google")
    assert timed_out.error is not None and "TimeoutError" in timed_out.error
    odd = await check_domain(FakeDns({"x.example": ("spf", "bimi")}), "x.example", "google")
    assert odd.failing == ("spf",) and "bimi" in (odd.error or "")
    found = assess(facts((box("a@x.example"),), (timed_out,), validation=VALID))
    assert [f.code for f in found] == ["dns_lookup_failed"]


# -- through the CLI ------------------------------------------------------------------------


def _links(url: str, *, rehearsal: bool) -> list[str]:
    box = GateMailbox("a@brand.example", "active", None, "brand.example", NOW, rehearsal=rehearsal)
    found = assess(replace_gate(facts((box,)), public_url=url))
    return [f.code for f in found if f.level == "error"]


def replace_gate(item: LaunchFacts, **changes: object) -> LaunchFacts:
    assert item.gate is not None
    return dataclasses.replace(item, gate=dataclasses.replace(item.gate, **changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "rehearsal", "refused"),
    [
        ("https://links.brand.example", False, False),
        ("http://links.brand.example", False, True),  # a real recipient's client gets http
        ("http://127.0.0.1:8025", False, True),  # loopback: nobody outside can reach it
        ("http://127.0.0.1:8025", True, False),  # the sandbox: the recipient is this machine
        ("links.brand.example/u", False, True),
    ],
)
def test_start_refuses_unsubscribe_links_real_recipients_cannot_use(
    url: str, rehearsal: bool, refused: bool
) -> None:
    assert ("public_url_not_https" in _links(url, rehearsal=rehearsal)) is refused


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("MAILFLEET_HOME", str(folder))
    monkeypatch.delenv("MAILFLEET_DATABASE_URL", raising=False)
    monkeypatch.delenv("MAILFLEET_SECRET_KEY", raising=False)
    monkeypatch.setenv("BOX_PASSWORD", "pw-not-verified")
    monkeypatch.setenv("MAILFLEET_PUBLIC_URL", "https://links.brand.example")
    return folder


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def flat(result: Result) -> str:
    return " ".join(result.output.split())


def sql(home: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(home / "mailfleet.db") as conn:
        return conn.execute(query).fetchall()


def setup_fleet(home: Path, tmp_path: Path) -> None:
    (tmp_path / "q3.yaml").write_text(CAMPAIGN.strip() + "\n", encoding="utf-8")
    assert run("campaign", "create", str(tmp_path / "q3.yaml")).exit_code == 0
    for address in ("a@good.example", "b@good.example", "c@nodkim.example", "d@slow.example"):
        added = run(
            "mailbox",
            "add",
            address,
            "--provider",
            "generic",
            "--smtp-host",
            "smtp.example",
            "--password-env",
            "BOX_PASSWORD",
        )
        assert added.exit_code == 0, added.output
        assert run("warmup", "off", address).exit_code == 0
    sql(home, "update mailbox set created_at = datetime(created_at, '-20 days')")


def test_start_refuses_with_every_reason_then_force_records_them(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dns = FakeDns({"nodkim.example": ("dkim", "dmarc")}, broken="slow.example")
    monkeypatch.setattr(campaign_cli, "domain_checker", lambda: dns)
    setup_fleet(home, tmp_path)
    sql(
        home,
        "update mailbox set status = 'paused', status_reason = 'by hand' "
        "where address = 'b@good.example'",
    )
    csv = tmp_path / "leads.csv"
    csv.write_text("email\nann@acme.example\nbob@acme.example\nnot-an-address\n", encoding="utf-8")
    imported = run("leads", "import", str(csv), "--campaign", "Q3")
    assert imported.exit_code == 0, imported.output
    assert sql(home, "select rows, accepted, rejected, enrolled from lead_validation") == [
        (3, 2, 1, 2)
    ]
    refused = run("campaign", "start", "Q3")
    assert refused.exit_code == 2
    text = flat(refused)
    assert "b@good.example is paused (by hand)" in text
    assert "nodkim.example fails DKIM, DMARC" in text
    assert "slow.example: its DNS could not be checked: TimeoutError" in text
    assert "--force" in text
    assert sorted(dns.asked) == [
        ("good.example", "generic"),
        ("nodkim.example", "generic"),
        ("slow.example", "generic"),
    ]
    assert sql(home, "select status from campaign") == [("draft",)]
    shown = json.loads(run("campaign", "show", "Q3", "--json").output)
    assert {"mailbox_paused", "dns_failing", "dns_lookup_failed"} <= {
        r["code"] for r in shown["readiness"]
    }

    forced = run("campaign", "start", "Q3", "--force")
    assert forced.exit_code == 0, forced.output
    assert "overridden" in flat(forced)
    assert sql(home, "select status from campaign") == [("active",)]
    ((data,),) = sql(home, "select data from event where kind = 'campaign.forced'")
    codes = sorted(o["code"] for o in json.loads(str(data))["overridden"])
    assert codes == ["dns_failing", "dns_lookup_failed", "mailbox_paused"]


def test_leads_enrolled_outside_an_import_need_a_new_validation(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(campaign_cli, "domain_checker", lambda: FakeDns({}))
    setup_fleet(home, tmp_path)
    sql(
        home,
        "insert into lead (workspace_id, email, email_normalized, email_domain, fields, "
        "created_at) values (1, 'x@y.example', 'x@y.example', 'y.example', '{}', "
        "'2026-01-01 00:00:00')",
    )
    sql(
        home,
        "insert into enrollment (campaign_id, lead_id, status, next_step, next_due_at, "
        "\"references\", created_at, updated_at) values (1, 1, 'active', 1, "
        "'2026-01-01 00:00:00', '[]', '2099-01-01 00:00:00', '2099-01-01 00:00:00')",
    )
    refused = run("campaign", "start", "Q3")
    assert refused.exit_code == 2 and "the lead list was never validated" in flat(refused)
    csv = tmp_path / "more.csv"
    csv.write_text("email\nann@acme.example\n", encoding="utf-8")
    assert run("leads", "import", str(csv), "--campaign", "Q3").exit_code == 0
    refused = run("campaign", "start", "Q3")
    assert refused.exit_code == 2
    assert "1 enrolled lead(s) were added after the last validation" in flat(refused)
    sql(home, "delete from enrollment where lead_id = 1")
    started = run("campaign", "start", "Q3")
    assert started.exit_code == 0, started.output


def test_start_asks_the_configured_nameserver_and_refuses_failing_domains(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No fake: ``campaign start`` checks every domain through MAILFLEET_DNS_NAMESERVER."""
    zones = Zones()
    zones.add(sandbox_domain_zone("good.example", "generic"))
    # A generic host names no DKIM selector, so DMARC and MX are what the gate can see.
    zones.add(sandbox_domain_zone("nodkim.example", "generic", omit=("dmarc",)))
    zones.add(sandbox_domain_zone("slow.example", "generic", omit=("mx",)))
    with SandboxDnsServer(zones) as server:
        monkeypatch.setenv("MAILFLEET_DNS_NAMESERVER", server.address)
        monkeypatch.setenv("MAILFLEET_DNS_TIMEOUT", "5")
        setup_fleet(home, tmp_path)
        csv = tmp_path / "leads.csv"
        csv.write_text("email\nann@acme.example\n", encoding="utf-8")
        assert run("leads", "import", str(csv), "--campaign", "Q3").exit_code == 0
        refused = run("campaign", "start", "Q3")
    assert refused.exit_code == 2, refused.output
    text = flat(refused)
    assert "nodkim.example fails DMARC" in text
    assert "slow.example fails MX" in text
    assert "good.example" not in text
    assert sql(home, "select status from campaign") == [("draft",)]


def test_a_badly_written_nameserver_setting_is_named(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILFLEET_DNS_NAMESERVER", "dns.example.com:53")
    setup_fleet(home, tmp_path)
    refused = run("campaign", "start", "Q3")
    assert refused.exit_code == 2
    assert "MAILFLEET_DNS_NAMESERVER" in flat(refused)
