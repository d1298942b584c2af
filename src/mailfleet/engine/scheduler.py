"""The runtime's one scheduler: every periodic job of the process on the clock.

A :class:`Job` is a name, how often it runs and one unit of work that may say when it
wants to run next (the engine wakes for the next due send, say). :class:`Scheduler`
owns what every job would otherwise write for itself — the loop, sleeping on the
clock until the next run or the stop, the error capture (a failed run is logged with
its traceback, counted in the :class:`~mailfleet.engine.faults.FaultLog` and retried
after an exponential backoff, never ending the process) and each job's figures — in
the spirit of zulip's queue-worker base. Jobs keep no business rules: they call the
engine and the services.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mailfleet.clock import Clock
from mailfleet.engine.faults import FaultLog

log = logging.getLogger(__name__)

Work = Callable[[datetime], Awaitable[datetime | None]]
"""One run at the given instant; returns when to run next (None: after ``every``)."""


@dataclass(slots=True)
class Job:
    """A periodic unit of work."""

    name: str
    every: timedelta
    work: Work
    first_after: timedelta = timedelta(0)  # the first run waits this long
    runs: int = 0
    failures: int = 0  # in a row; 0 after a run that succeeded
    last_ok: datetime | None = None
    last_error: str | None = field(default=None)


class Scheduler:
    """Runs its jobs on ``clock`` until stopped; see the module docstring."""

    def __init__(
        self,
        clock: Clock,
        faults: FaultLog,
        *,
        backoff_base: timedelta = timedelta(seconds=5),
        backoff_max: timedelta = timedelta(minutes=15),
    ) -> None:
        self.clock = clock
        self.faults = faults
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.jobs: list[Job] = []

    def add(
        self, name: str, every: timedelta, work: Work, *, first_after: timedelta = timedelta(0)
    ) -> Job:
        """Schedule ``work`` every ``every`` (or when it asks), first after ``first_after``."""
        job = Job(name, every, work, first_after)
        self.jobs.append(job)
        return job

    def backoff(self, failures: int) -> timedelta:
        """After ``failures`` failed runs in a row: base · 2^(n-1), capped."""
        grown: timedelta = self.backoff_base * (2 ** min(failures - 1, 20))
        return min(grown, self.backoff_max)

    async def sleep(self, seconds: float, stop: asyncio.Event) -> None:
        """Sleep ``seconds`` of the clock's time, or until ``stop``."""
        napping = asyncio.ensure_future(self.clock.sleep(max(0.0, seconds)))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({napping, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            napping.cancel()
            stopping.cancel()

    async def run(self, stop: asyncio.Event) -> None:
        """Run every job until ``stop``; a run in progress always finishes."""
        await asyncio.gather(*(self._loop(job, stop) for job in self.jobs))

    async def _loop(self, job: Job, stop: asyncio.Event) -> None:
        if job.first_after > timedelta(0):
            await self.sleep(job.first_after.total_seconds(), stop)
        while not stop.is_set():
            now = self.clock.now()
            try:
                wanted = await job.work(now)
            except Exception as exc:  # logged, counted and retried: one bad run ends nothing
                job.failures += 1
                job.last_error = f"{type(exc).__name__}: {exc}"[:300]
                self.faults.record(job.name, exc, now, log)
                wanted = now + self.backoff(job.failures)
            else:
                job.runs += 1
                job.failures = 0
                job.last_ok = now
            after = self.clock.now()
            until = wanted if wanted is not None else after + job.every
            if until > after:
                await self.sleep((until - after).total_seconds(), stop)
