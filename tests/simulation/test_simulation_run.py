"""Shipped scenarios end to end: zero violations, and a crash that loses and duplicates nothing."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mailfleet.simulation import VIOLATION_KEYS, load_scenario, run_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def run(name: str, folder: Path) -> dict[str, Any]:
    scenario, campaign = load_scenario(SCENARIOS / name)
    return asyncio.run(run_scenario(scenario, campaign, folder))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run("smoke.toml", tmp_path_factory.mktemp("smoke"))


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run("faults.toml", tmp_path_factory.mktemp("faults"))


def test_smoke_scenario_sends_every_step_and_reports_zero_violations(
    smoke: dict[str, Any],
) -> None:
    assert set(smoke["violations"]) == set(VIOLATION_KEYS)
    assert smoke["violations"] == dict.fromkeys(VIOLATION_KEYS, 0), smoke["violation_details"]
    totals = smoke["totals"]
    assert totals["by_step"]["1"] == smoke["leads"] == 40  # every lead got its opener once
    assert int(totals["by_step"].get("2", 0)) > 0
    assert totals["cold"] == totals["messages_accepted"] == smoke["engine"]["sent"]
    # Prospects answered and the engine read the answers through IMAP.
    assert sum(smoke["inbound"]["answers_filed"].values()) > 0
    assert smoke["inbound"]["read_by_engine"].get("reply", 0) > 0
    assert totals["leads_stopped_by_the_world"] > 0
    assert smoke["exactly_once"]["duplicates"] == smoke["exactly_once"]["lost"] == 0


def test_faults_scenario_survives_every_fault_with_zero_violations(
    faults: dict[str, Any],
) -> None:
    assert faults["violations"] == dict.fromkeys(VIOLATION_KEYS, 0), faults["violation_details"]
    by_kind = {f["kind"]: f for f in faults["faults"]}
    # The burst was answered 451 4.7.500 and the mailbox backed off, then went on.
    assert by_kind["server_busy"]["refusals"] >= 1
    assert by_kind["server_busy"]["mailbox_status_at_end"] == "active"
    # The revoked grant left its mailbox disconnected, not retrying for ever.
    assert by_kind["token_revoked"]["tokens_revoked"] >= 1
    assert by_kind["token_revoked"]["mailbox_status_at_end"] == "disconnected"
    assert faults["totals"]["refusals"]["provider_limits"] == 0


def test_crash_between_claim_and_outcome_loses_and_duplicates_nothing(
    faults: dict[str, Any],
) -> None:
    crash = faults["crash"]
    assert crash["struck_at"] is not None and crash["struck_at"] >= crash["armed_at"]
    assert crash["in_flight"] >= 1  # the engine died with a send between claim and outcome
    # The sandbox had accepted it; reconciliation found it in Sent Items instead of resending.
    assert crash["in_flight_accepted_by_sandbox"] >= 1
    assert crash["reconciled"]["found_in_sent_items"] == crash["in_flight_accepted_by_sandbox"]
    once = faults["exactly_once"]
    assert once["duplicates"] == 0
    assert once["lost"] == 0
    assert once["accepted_but_unknown"] == 0
    assert faults["violations"]["duplicate_message_id"] == 0
    assert faults["violations"]["duplicate_lead_step"] == 0
