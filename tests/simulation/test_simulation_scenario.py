"""Scenario files: validated up front, naming file and field; worlds generated the same way."""

from pathlib import Path

import pytest

from mailfleet.simulation import ScenarioError, load_scenario, parse_scenario, population

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

MINIMAL = {
    "name": "t",
    "days": 1,
    "fleet": {"domains": 2, "mailboxes": 3},
    "leads": {"count": 5},
    "campaign": {"name": "C", "steps": [{"subject": "Hi", "body": "Hello"}]},
}


@pytest.mark.parametrize(
    "name",
    [
        "smoke.toml",
        "faults.toml",
        "month.toml",
        "month-warmup.toml",
        "deliverability.toml",
        "warmup.toml",
    ],
)
def test_shipped_scenarios_load_with_their_campaigns(name: str) -> None:
    scenario, campaign = load_scenario(SCENARIOS / name)
    assert scenario.days >= 1 and campaign.steps


def test_the_month_scenario_is_the_one_of_the_issue() -> None:
    scenario, campaign = load_scenario(SCENARIOS / "month.toml")
    assert scenario.days == 30
    assert scenario.fleet.domains == 15 and scenario.fleet.total_mailboxes == 40
    assert scenario.leads.count == 20_000 and len(campaign.steps) == 3
    kinds = {fault.kind for fault in scenario.faults}
    assert kinds == {"server_busy", "token_revoked", "crash"}


def test_the_warmup_month_is_the_month_with_warmup_and_deliverability_faults() -> None:
    month, _ = load_scenario(SCENARIOS / "month.toml")
    scenario, _ = load_scenario(SCENARIOS / "month-warmup.toml")
    assert (scenario.days, scenario.leads.count) == (month.days, month.leads.count)
    assert scenario.fleet.total_mailboxes == month.fleet.total_mailboxes == 40
    kinds = {fault.kind for fault in scenario.faults}
    assert {"server_busy", "token_revoked", "crash", "junk", "bad_list"} == kinds
    assert scenario.fleet.warmup_enabled and scenario.fleet.tenants > 1
    assert scenario.audit.warmup_ratio == 2
    assert [(d.domain, d.omit) for d in scenario.dns] == [(14, ["dkim"])]


def test_mailboxes_are_dealt_over_domains_with_ages_and_unique_addresses() -> None:
    scenario, _ = load_scenario(SCENARIOS / "month.toml")
    senders = population.senders(scenario)
    assert len({s.address for s in senders}) == 40
    per_domain: dict[str, int] = {}
    for sender in senders:
        per_domain[sender.domain] = per_domain.get(sender.domain, 0) + 1
    assert sorted(per_domain.values()) == [2] * 5 + [3] * 10
    # Age 1 means the ramp starts on the first day of the run.
    assert senders[0].ramp_start == scenario.start
    assert population.senders(scenario) == senders  # deterministic
    leads = population.leads(scenario)
    assert len({lead.email for lead in leads}) == 20_000


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"prospects": {"reply": 0.7, "bounce_hard": 0.5}}, "add up to more than 1"),
        ({"fleet": {"domains": 2}}, "exactly one of mailboxes"),
        ({"fleet": {"domains": 4, "mailboxes": 3}}, "at least one mailbox"),
        (
            {"faults": [{"kind": "server_busy", "mailbox": 7, "day": 1, "minutes": 5}]},
            "mailbox 7 is not in 0..2",
        ),
        ({"faults": [{"kind": "crash", "day": 3}]}, "day 3 of a 1-day run"),
        ({"faults": [{"kind": "meteor", "day": 1}]}, "faults.0"),
        ({"timezone": "Mars/Olympus"}, "not an IANA timezone"),
        ({"faults": [{"kind": "crash", "day": 1, "time": "25:00"}]}, "not a time"),
    ],
)
def test_invalid_scenarios_name_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario({**MINIMAL, **change}, source="bad.toml")
    assert "bad.toml" in str(info.value) and message in str(info.value)


def test_campaign_file_is_resolved_next_to_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "name: C\nsteps:\n  - subject: Hi {{ nickname }}\n    body: Hello\n", encoding="utf-8"
    )
    (tmp_path / "s.toml").write_text(
        'name = "s"\ndays = 1\ncampaign = "c.yaml"\n'
        "[fleet]\ndomains = 1\nmailboxes = 1\n[leads]\ncount = 1\n",
        encoding="utf-8",
    )
    with pytest.raises(ScenarioError, match="nickname"):
        load_scenario(tmp_path / "s.toml")
    (tmp_path / "s.toml").write_text("name = [", encoding="utf-8")
    with pytest.raises(ScenarioError, match="not valid toml"):
        load_scenario(tmp_path / "s.toml")


def test_bad_dns_deviations_and_new_faults_are_named() -> None:
    bad = {**MINIMAL, "dns": [{"domain": 3, "omit": ["dkim"]}]}
    with pytest.raises(ScenarioError, match=r"dns 1: domain 3 is not in 0\.\.1"):
        parse_scenario(bad, source="s.toml")
    part = {**MINIMAL, "dns": [{"domain": 0, "omit": ["bimi"]}]}
    with pytest.raises(ScenarioError, match=r"dns\.0\.omit\.0"):
        parse_scenario(part, source="s.toml")
    share = {**MINIMAL, "faults": [{"kind": "bad_list", "mailbox": 0, "day": 1, "share": 0}]}
    with pytest.raises(ScenarioError, match="share"):
        parse_scenario(share, source="s.toml")
