"""Warmup beside cold through the simulation, counted from what the sandbox received.

``scenarios/warmup.toml`` (two weeks, eight mailboxes) shows this at length; the test
runs a shorter world of the same shape so CI stays quick: six mailboxes on three
domains and tenants warm each other up for six days while a campaign runs. The audit
holds every cold message to 2 warmup messages per cold one per mailbox and local day;
on day 2 the peers file the first mailbox's domain in Junk for a day: warmup's
placement shows it, the domain's cold cap is cut within a day and restored step by
step once placement recovers.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from mailfleet.simulation import VIOLATION_KEYS, run_scenario
from mailfleet.simulation.population import senders
from mailfleet.simulation.scenario import Scenario, parse_scenario, scenario_campaign

WORLD: dict[str, Any] = {
    "name": "warmup-short",
    "days": 6,
    "start": "2026-03-02",
    "timezone": "UTC",
    "seed": 3,
    "fleet": {
        "domains": 3,
        "mailboxes_per_domain": 2,
        "tenants": 3,
        "ages_days": [60],
        "min_gap_seconds": 300,
        "warmup_enabled": True,
    },
    "leads": {"count": 400, "companies": 100},
    "campaign": {
        "name": "Warm",
        "timezone": "UTC",
        "window": {"days": [1, 2, 3, 4, 5, 6, 7], "start": "08:00", "end": "18:00"},
        "steps": [{"subject": "Hello {{ company }}", "body": "Hi, a quick question."}],
    },
    "prospects": {"reply": 0.05},
    "audit": {"warmup_ratio": 2},
    "faults": [{"kind": "junk", "mailbox": 0, "day": 2, "time": "00:00", "share": 1.0, "days": 1}],
}


def scenario() -> Scenario:
    return parse_scenario(WORLD, source="test")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("warmup")
    world = scenario()
    return asyncio.run(run_scenario(world, scenario_campaign(world, folder), folder))


def test_every_cold_send_kept_the_ratio_and_no_limit_broke(report: dict[str, Any]) -> None:
    assert report["violation_details"]["warmup_ratio_checked"] is True
    assert report["violations"] == dict.fromkeys(VIOLATION_KEYS, 0), report["violation_details"]
    totals = report["totals"]
    assert totals["cold"] > 0
    assert totals["warmup"] >= 2 * totals["cold"]
    assert report["exactly_once"]["duplicates"] == report["exactly_once"]["lost"] == 0


def test_placement_is_reported_per_mailbox(report: dict[str, Any]) -> None:
    warmup = report["warmup"]
    assert warmup["enabled"] is True
    assert not warmup["receiver_errors"]
    boxes = warmup["mailboxes"]
    assert len(boxes) == 6
    for address, row in boxes.items():
        assert row["sent_28d"] > 0, address
        assert row["inbox_share_28d"] is not None, address
    domains = warmup["domains"]
    assert set(domains) == {address.rpartition("@")[2] for address in boxes}
    for domain, row in domains.items():
        members = [a for a in boxes if a.endswith("@" + domain)]
        assert row["mailboxes"] == len(members), domain
        assert row["sent_28d"] == sum(boxes[a]["sent_28d"] for a in members), domain
        assert 0 <= row["inbox_share_28d"] <= 1 and row["bounce_rate_28d"] is not None, domain
    # The domain the peers junked on day 2 shows it over 28 days; the others do not.
    junked = senders(scenario())[0].domain
    assert domains[junked]["junk_share_28d"] > 0
    assert all(row["junk_share_28d"] == 0 for d, row in domains.items() if d != junked)


def test_junk_on_day_2_cuts_the_domain_cold_cap_within_a_day_then_it_is_restored(
    report: dict[str, Any],
) -> None:
    world = scenario()
    fleet = senders(world)
    domain = fleet[0].domain
    hit = {s.address for s in fleet if s.domain == domain}
    junked = world.instant(2, "00:00")
    changes = report["warmup"]["cold_cap_changes"]
    cuts = [c for c in changes if "cut" in c["reason"]]
    restores = [c for c in changes if "restored" in c["reason"]]
    assert cuts and {c["mailbox"] for c in cuts} <= hit  # only the junked domain was cut
    first_cut = min(datetime.fromisoformat(c["at"]) for c in cuts)
    assert junked < first_cut <= junked + timedelta(days=1)
    assert restores, "placement recovered but the cap was never restored"
    assert min(datetime.fromisoformat(c["at"]) for c in restores) > first_cut
    # Restored gradually: several steps, never straight back to full.
    assert len(restores) >= 2
