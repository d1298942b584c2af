"""``mailfleet dns check``, ``workspace set|show`` and ``inventory`` as an operator runs them."""

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deliverability.zones import fixture_zones
from mailfleet.cli.main import app
from mailfleet.clock import SystemClock
from mailfleet.sandbox.dns import SandboxDnsServer
from mailfleet.store import Database, Domain, Mailbox, Workspace

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("MAILFLEET_HOME", str(folder))
    monkeypatch.delenv("MAILFLEET_DATABASE_URL", raising=False)
    return folder


@pytest.fixture(scope="module")
def nameserver() -> Iterator[str]:
    with SandboxDnsServer(fixture_zones()) as server:
        yield server.address


def flat(output: str) -> str:
    return " ".join(output.split())


def seed(home: Path, *, ages: dict[str, int], domains: dict[str, str]) -> None:
    """A workspace with ``domains`` (name -> provider) and mailboxes aged ``ages`` days."""

    async def run() -> None:
        now = SystemClock().now()
        db = Database(f"sqlite+aiosqlite:///{home / 'mailfleet.db'}")
        await db.migrate()
        async with db.session() as session:
            ws = Workspace(slug="acme", name="Acme", created_at=now)
            session.add(ws)
            await session.flush()
            rows = {}
            for name, provider in domains.items():
                rows[name] = Domain(
                    workspace_id=ws.id, name=name, provider=provider, tenant="cold", created_at=now
                )
                session.add(rows[name])
            await session.flush()
            for address, days in ages.items():
                domain = rows[address.rpartition("@")[2]]
                session.add(
                    Mailbox(
                        workspace_id=ws.id,
                        domain_id=domain.id,
                        address=address,
                        provider=domain.provider,
                        tenant="cold",
                        smtp_host="smtp.office365.com",
                        smtp_port=587,
                        smtp_security="starttls",
                        auth_kind="password",
                        ramp_start=(now - timedelta(days=days)).date(),
                        tags=["q4"],
                        created_at=now,
                    )
                )
        await db.close()

    home.mkdir(parents=True, exist_ok=True)
    asyncio.run(run())


def test_json_lists_findings_per_domain_and_exit_zero_when_clean(
    home: Path, nameserver: str
) -> None:
    result = runner.invoke(
        app,
        [
            "dns",
            "check",
            "goodgoogle.com",
            "--provider",
            "google",
            "--nameserver",
            nameserver,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.output)
    assert report["domain"] == "goodgoogle.com" and report["failing"] == []
    checks = {f["check"] for f in report["findings"]}
    assert checks >= {"mx", "spf", "dkim", "dmarc", "mta-sts", "tls-rpt", "blocklist"}
    for finding in report["findings"]:
        assert set(finding) == {"domain", "check", "ok", "severity", "found", "fix"}
    blocklist = [f for f in report["findings"] if f["check"] == "blocklist"]
    assert [f["found"].split(":")[0] for f in blocklist] == [
        "dbl.spamhaus.org",
        "multi.uribl.com",
        "multi.surbl.org",
    ]
    assert (home / "blocklists.json").exists()


def test_an_error_finding_exits_one_and_the_table_shows_the_fix(
    home: Path, nameserver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # one row per finding, nothing folded
    result = runner.invoke(
        app,
        [
            "dns",
            "check",
            "nodkim.com",
            "slow.com",
            "--provider",
            "google",
            "--nameserver",
            nameserver,
            "--no-blocklists",
            "--timeout",
            "2",
        ],
    )
    assert result.exit_code == 1
    text = flat(result.output)
    assert "nodkim.com (google)" in text and "slow.com (google)" in text
    assert "no DKIM key at google._domainkey.nodkim.com" in text
    assert "google._domainkey.nodkim.com TXT" in text


def test_stored_domains_are_checked_with_their_provider(home: Path, nameserver: str) -> None:
    seed(home, ages={}, domains={"good365.com": "microsoft365", "goodgoogle.com": "google"})
    result = runner.invoke(
        app,
        [
            "dns",
            "check",
            "--nameserver",
            nameserver,
            "--json",
            "--no-blocklists",
            "--tenant",
            "contoso",
        ],
    )
    assert result.exit_code == 0, result.output
    reports = json.loads(result.output)
    assert [(r["domain"], r["provider"]) for r in reports] == [
        ("good365.com", "microsoft365"),
        ("goodgoogle.com", "google"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nameserver", "dns.google"], "is not an IP address"),
        (["--nameserver", "127.0.0.1:99999"], "is not 1-65535"),
        (["--provider", "yahoo"], "use one of generic, google, microsoft365"),
    ],
)
def test_bad_options_say_why(home: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["dns", "check", "brand-mail.com", *args])
    assert result.exit_code == 2
    assert message in flat(result.output)


def test_no_domain_and_nothing_stored(home: Path) -> None:
    result = runner.invoke(app, ["dns", "check"])
    assert result.exit_code == 2
    assert "no domain given and none stored" in flat(result.output)


def test_workspace_settings_round_trip_and_bad_values(home: Path) -> None:
    result = runner.invoke(
        app,
        [
            "workspace",
            "set",
            "--primary-domain",
            "Brand.com",
            "--primary-tenant",
            "brandcorp",
            "--main-site",
            "https://brand.com/",
        ],
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(runner.invoke(app, ["workspace", "show", "--json"]).output)
    assert shown == {
        "workspace": "default",
        "name": "default",
        "primary_domain": "brand.com",
        "primary_tenant": "brandcorp",
        "main_site": "https://brand.com/",
    }
    bad = runner.invoke(app, ["workspace", "set", "--main-site", "ftp://brand.com"])
    assert bad.exit_code == 2 and "give an http(s) URL" in flat(bad.output)
    bad = runner.invoke(app, ["workspace", "set", "--primary-domain", "not a domain"])
    assert bad.exit_code == 2 and "is not a domain name" in flat(bad.output)
    runner.invoke(app, ["workspace", "set", "--main-site", ""])
    assert (
        json.loads(runner.invoke(app, ["workspace", "show", "--json"]).output)["main_site"] is None
    )


def test_inventory_lists_the_fleet_and_warns(home: Path) -> None:
    seed(
        home,
        ages={
            "a@brand.com": 10,
            "b@cold-one.com": 400,
            "c@cold-one.com": 600,
            "d@cold-one.com": 1,
            "e@cold-one.com": 1,
        },
        domains={"brand.com": "microsoft365", "cold-one.com": "microsoft365"},
    )
    assert runner.invoke(app, ["workspace", "set", "--primary-domain", "brand.com"]).exit_code == 0
    result = runner.invoke(app, ["inventory", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [d["domain"] for d in data["domains"]] == ["brand.com", "cold-one.com"]
    first = data["domains"][1]["mailboxes"][0]
    assert (first["address"], first["age_days"], first["tags"]) == ("b@cold-one.com", 400, ["q4"])
    assert sorted((w["rule"], w["subject"]) for w in data["warnings"]) == [
        ("inboxes-per-domain", "cold-one.com"),
        ("primary-domain", "brand.com"),
        ("refresh-due", "b@cold-one.com"),
        ("refresh-overdue", "c@cold-one.com"),
    ]
    table = runner.invoke(app, ["inventory"])
    assert table.exit_code == 0
    assert "refresh-overdue" in flat(table.output)


def test_inventory_without_a_workspace(home: Path) -> None:
    result = runner.invoke(app, ["inventory"])
    assert result.exit_code == 2
    assert "no workspace yet" in flat(result.output)


def test_forwarding_is_checked_when_a_main_site_is_set(home: Path, nameserver: str) -> None:
    # goodgoogle.com's A record is 127.0.0.1 in the fixture zones; its website is found
    # through --nameserver, so the check stays on loopback whatever answers there.
    result = runner.invoke(
        app,
        [
            "dns",
            "check",
            "goodgoogle.com",
            "--provider",
            "google",
            "--nameserver",
            nameserver,
            "--no-blocklists",
            "--json",
            "--main-site",
            "https://brand.example/",
            "--timeout",
            "1",
        ],
    )
    [report] = json.loads(result.output)
    [forwarding] = [f for f in report["findings"] if f["check"] == "forwarding"]
    assert forwarding["found"].startswith("http://goodgoogle.com/")
    assert not forwarding["ok"]
    assert forwarding["fix"].startswith(
        "redirect http://goodgoogle.com/ and https://goodgoogle.com/"
    )
    assert result.exit_code == 0  # forwarding is a warning, not an error
