"""Warmup beside cold through ``scenarios/warmup.toml``, counted from what the sandbox received.

Eight mailboxes on four domains and tenants warm each other up for two weeks while a
campaign runs. The audit holds every cold message to 2 warmup messages per cold one
per mailbox and local day; on day 8 the peers start filing the first mailbox's domain
in Junk for two days: warmup's placement shows it, the domain's cold cap is cut within
a day and restored step by step once placement recovers.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mailfleet.simulation import VIOLATION_KEYS, load_scenario, run_scenario
from mailfleet.simulation.population import senders

SCENARIO = Path(__file__).parents[2] / "scenarios" / "warmup.toml"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    scenario, campaign = load_scenario(SCENARIO)
    return asyncio.run(run_scenario(scenario, campaign, tmp_path_factory.mktemp("warmup")))


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
    assert len(boxes) == 8
    for address, row in boxes.items():
        assert row["sent_28d"] > 0, address
        assert row["inbox_share_28d"] is not None, address


def test_junk_on_day_8_cuts_the_domain_cold_cap_within_a_day_then_it_is_restored(
    report: dict[str, Any],
) -> None:
    scenario, _ = load_scenario(SCENARIO)
    fleet = senders(scenario)
    domain = fleet[0].domain
    hit = {s.address for s in fleet if s.domain == domain}
    junked = scenario.instant(8, "00:00")
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
