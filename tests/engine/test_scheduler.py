"""The runtime's scheduler: jobs on the clock, failures logged, counted and backed off."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta

import pytest

from mailfleet.clock import VirtualClock, utc
from mailfleet.engine.faults import FaultLog
from mailfleet.engine.scheduler import Scheduler

START = utc(2026, 3, 2, 9)


@pytest.mark.parametrize("asks", [False, True])
async def test_a_job_runs_on_its_period_or_when_it_asks(asks: bool) -> None:
    clock = VirtualClock(START)
    scheduler = Scheduler(clock, FaultLog())
    stop = asyncio.Event()
    seen: list[datetime] = []

    async def work(now: datetime) -> datetime | None:
        seen.append(now)
        if len(seen) == 4:
            stop.set()
        return now + timedelta(minutes=2) if asks else None

    scheduler.add("job", timedelta(minutes=5), work, first_after=timedelta(minutes=1))
    await asyncio.wait_for(scheduler.run(stop), 10)
    step = 2 if asks else 5
    assert seen == [START + timedelta(minutes=1 + step * i) for i in range(4)]


async def test_a_failing_job_is_counted_backed_off_and_never_stops_the_others() -> None:
    clock = VirtualClock(START)
    faults = FaultLog()
    scheduler = Scheduler(clock, faults, backoff_base=timedelta(seconds=10))
    stop = asyncio.Event()
    attempts: list[datetime] = []

    async def flaky(now: datetime) -> None:
        attempts.append(now)
        if len(attempts) <= 3:
            raise RuntimeError(f"failure {len(attempts)}")
        stop.set()

    job = scheduler.add("flaky", timedelta(hours=1), flaky)
    await asyncio.wait_for(scheduler.run(stop), 10)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps == [10, 20, 40]  # exponential backoff, then the run that worked
    assert faults.snapshot() == {"flaky": 3} and job.failures == 0 and job.runs == 1
    assert job.last_error == "RuntimeError: failure 3"
