"""The gate and auto-pause through the simulation: sandbox prospects bounce, health pauses.

Three days on the virtual clock: three mailboxes on one domain whose DKIM is missing,
prospects of whom 6 % bounce hard. Before sending, the gate refuses (DKIM, and a
lead list enrolled without validation). While it runs, the health pass (hourly, as
``mailfleet run`` would) pauses each mailbox at the first pass after its evidence
passes 2 % over 20 cold sends — not before, not later — and the engine sends no
cold mail from it afterwards.

The simulation has no health hook yet (``simulation/`` belongs to another part), so
this test subclasses it and calls the pass between the world's actions.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from mailfleet.deliverability.health import HealthPolicy, assess_mailbox
from mailfleet.engine.health import HealthReport, apply_health
from mailfleet.readiness import assess
from mailfleet.simulation.runner import Simulation
from mailfleet.simulation.scenario import parse_scenario, scenario_campaign
from mailfleet.store import Campaign, Event, Send, SendKind
from mailfleet.store.health import mailbox_evidence
from mailfleet.store.launch import gate_facts

SCENARIO: dict[str, Any] = {
    "name": "bouncing",
    "days": 3,
    "start": "2026-03-02",
    "timezone": "UTC",
    "seed": 7,
    "fleet": {"domains": 1, "mailboxes_per_domain": 3, "ages_days": [60], "min_gap_seconds": 300},
    "leads": {"count": 300, "companies": 100},
    "campaign": {
        "name": "Bounce",
        "timezone": "UTC",
        "window": {"days": [1, 2, 3, 4, 5], "start": "08:00", "end": "18:00"},
        "steps": [{"subject": "Hello {{ company }}", "body": "Hi, a quick question."}],
    },
    "prospects": {"bounce_hard": 0.06, "reply": 0.05},
    "inbox": {"sync_minutes": 0},
}
HOUR = timedelta(hours=1)


class NoDkim:
    async def failing(self, domain: str, provider: str) -> tuple[str, ...]:
        return ("dkim",)


class HealthSimulation(Simulation):
    """The simulation with the health pass every hour of the virtual clock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.passes: list[HealthReport] = []
        self.gate_codes: list[str] = []

    async def _run_days(self) -> None:
        assert self._db is not None and self._world is not None
        async with self._db.session() as session:
            campaign = await session.scalar(
                select(Campaign)
                .where(Campaign.id == self._world.campaign_id)
                .options(selectinload(Campaign.steps))
            )
            assert campaign is not None
            facts = await gate_facts(session, campaign, self.clock.now(), NoDkim())
        self.gate_codes = [f.code for f in assess(facts) if f.level == "error"]
        # The health pass as a world event every hour, so the driver wakes for it.
        at, number = self.start + HOUR, 1_000_000
        while at < self.end:
            self._schedule(at, number, self._health)
            at, number = at + HOUR, number + 1
        await super()._run_days()

    async def _health(self) -> None:
        assert self._db is not None
        self.passes.append(await apply_health(self._db, self.clock.now()))


def test_gate_refuses_then_health_pauses_bouncing_mailboxes_on_time(tmp_path: Path) -> None:
    scenario = parse_scenario(SCENARIO, source="test")
    simulation = HealthSimulation(scenario, scenario_campaign(scenario, tmp_path), tmp_path)
    report = asyncio.run(simulation.run())

    assert "dns_failing" in simulation.gate_codes
    assert "leads_unvalidated" in simulation.gate_codes  # the world enrolls leads directly
    assert "warmup_period" not in simulation.gate_codes  # 60-day-old mailboxes
    assert report["inbound"]["read_by_engine"].get("bounce", 0) > 0

    paused = [p for health in simulation.passes for p in health.paused]
    assert paused, "no mailbox was paused"
    assert len({p.address for p in paused}) == len(paused)  # each paused once

    async def check() -> None:
        from mailfleet.store import Database

        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'simulation.db'}")
        try:
            async with db.session() as session:
                events = (
                    await session.scalars(
                        select(Event).where(Event.kind == "mailbox.paused").order_by(Event.at)
                    )
                ).all()
                health_events = [e for e in events if (e.data or {}).get("source") == "health"]
                assert len(health_events) == len(paused)
                policy = HealthPolicy()
                times = [p.at for p in simulation.passes]
                for event in health_events:
                    assert event.mailbox_id is not None
                    at = event.at
                    index = times.index(at)
                    assert index > 0 and times[index] - times[index - 1] == HOUR
                    before = {
                        m.evidence.mailbox_id: m for m in simulation.passes[index - 1].mailboxes
                    }[event.mailbox_id]
                    # Paused at the first hourly pass after the threshold was crossed.
                    assert before.pause is None, before.pause
                    now_ = {e.mailbox_id: e for e in await mailbox_evidence(session, at, policy)}[
                        event.mailbox_id
                    ]
                    assert assess_mailbox(now_, policy).pause is not None
                    assert now_.month.sends >= policy.min_sends
                    later = await session.scalar(
                        select(func.count()).where(
                            Send.mailbox_id == event.mailbox_id,
                            Send.kind == SendKind.COLD,
                            Send.claimed_at > at,
                        )
                    )
                    assert later == 0, "the engine sent cold mail from a paused mailbox"
        finally:
            await db.close()

    asyncio.run(check())
