"""The pre-launch gate and the bounce guard through ``scenarios/deliverability.toml``.

One domain publishes no DKIM, so the gate (asking the sandbox's nameserver, as
``campaign start`` asks ``MAILFLEET_DNS_NAMESERVER``) would refuse the launch; one
mailbox's slice of the list bounces hard at 5 %. The hourly health pass pauses that
mailbox — and only that one — at the first pass after its evidence crosses 2 % over
20 cold sends, and the sandbox receives no cold mail from it afterwards.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mailfleet.deliverability.health import HealthPolicy, assess_mailbox
from mailfleet.simulation import load_scenario, run_scenario
from mailfleet.simulation.population import senders, sending_domains
from mailfleet.store import Database, Mailbox, Send, SendKind
from mailfleet.store.health import mailbox_evidence

SCENARIO = Path(__file__).parents[2] / "scenarios" / "deliverability.toml"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("deliverability")
    scenario, campaign = load_scenario(SCENARIO)
    return asyncio.run(run_scenario(scenario, campaign, folder)), folder


def test_the_gate_names_the_domain_without_dkim(run: tuple[dict[str, Any], Path]) -> None:
    report, _ = run
    scenario, _ = load_scenario(SCENARIO)
    nodkim = sending_domains(scenario)[1][0]
    gate = report["gate"]
    assert gate["would_refuse"] is True
    errors = [f for f in gate["findings"] if f["level"] == "error"]
    assert [f["code"] for f in errors] == ["dns_failing"]
    assert f"{nodkim} fails DKIM" in errors[0]["message"]


def test_only_the_bad_list_mailbox_is_paused_at_the_first_pass_past_the_threshold(
    run: tuple[dict[str, Any], Path],
) -> None:
    report, folder = run
    scenario, _ = load_scenario(SCENARIO)
    bad = senders(scenario)[4].address
    paused = report["health"]["paused"]
    assert [p["mailbox"] for p in paused] == [bad]
    at = datetime.fromisoformat(paused[0]["at"])
    assert report["violations"]["sent_after_stop"] == 0

    async def evidence_at(moment: datetime) -> Any:
        db = Database(f"sqlite+aiosqlite:///{folder / 'simulation.db'}")
        try:
            async with db.session() as session:
                rows = await mailbox_evidence(session, moment, HealthPolicy())
        finally:
            await db.close()
        return next(e for e in rows if e.address == bad)

    policy = HealthPolicy()
    now_ = asyncio.run(evidence_at(at))
    before = asyncio.run(evidence_at(at - timedelta(minutes=scenario.health.every_minutes)))
    assert assess_mailbox(now_, policy).pause is not None
    assert now_.month.sends >= policy.min_sends
    assert assess_mailbox(before, policy).pause is None  # not a pass earlier

    async def cold_after(moment: datetime) -> int:
        db = Database(f"sqlite+aiosqlite:///{folder / 'simulation.db'}")
        try:
            async with db.session() as session:
                count = await session.scalar(
                    select(func.count())
                    .select_from(Send)
                    .join(Mailbox, Mailbox.id == Send.mailbox_id)
                    .where(
                        Mailbox.address == bad,
                        Send.kind == SendKind.COLD,
                        Send.claimed_at > moment,
                    )
                )
        finally:
            await db.close()
        return int(count or 0)

    assert asyncio.run(cold_after(at)) == 0


def test_nothing_cold_leaves_the_paused_mailbox_and_the_rest_keep_sending(
    run: tuple[dict[str, Any], Path],
) -> None:
    report, _ = run
    assert report["violations"] == dict.fromkeys(report["violations"], 0)
    by_sender = report["totals"]["per_mailbox"]
    assert by_sender["min"] > 0
    assert report["exactly_once"]["duplicates"] == report["exactly_once"]["lost"] == 0
