"""Time as a dependency.

Policy code never reads the wall clock: it is handed a ``datetime``. The engine,
the transport and the sandbox hold a :class:`Clock` and ask it for the time and
for sleeps, so a :class:`VirtualClock` can run whole simulated days in seconds.

All datetimes are timezone-aware and in UTC.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """A source of the current time and of sleeps measured in that time."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """Return the wall-clock time in UTC."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Sleep in real time."""
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """A clock that starts at a chosen instant and moves when told to.

    With ``speed=None`` (the default) time only moves through :meth:`advance`,
    :meth:`advance_to` and :meth:`sleep`, which jumps forward at once: a
    discrete-event simulation with one driver. With ``speed=k`` virtual time
    also flows on its own, ``k`` times faster than real time, and sleeps take
    ``seconds / k`` of real time.
    """

    def __init__(self, start: datetime, speed: float | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start time")
        if speed is not None and speed <= 0:
            raise ValueError("VirtualClock speed must be positive")
        self._base = start.astimezone(UTC)
        self._speed = speed
        self._anchor = time.monotonic()

    @property
    def speed(self) -> float | None:
        """Virtual seconds per real second, or None when time only jumps."""
        return self._speed

    def now(self) -> datetime:
        """Return the virtual time."""
        if self._speed is None:
            return self._base
        elapsed = (time.monotonic() - self._anchor) * self._speed
        return self._base + timedelta(seconds=elapsed)

    def advance(self, delta: timedelta | float) -> datetime:
        """Move time forward by ``delta`` (seconds or a timedelta) and return the new time."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._rebase(self.now() + timedelta(seconds=seconds))
        return self.now()

    def advance_to(self, when: datetime) -> datetime:
        """Move time forward to ``when``; a time in the past leaves the clock where it is."""
        if when > self.now():
            self._rebase(when.astimezone(UTC))
        return self.now()

    async def sleep(self, seconds: float) -> None:
        """Jump forward (no speed) or sleep the scaled real time (with a speed)."""
        seconds = max(0.0, seconds)
        if self._speed is None:
            self.advance(seconds)
            await asyncio.sleep(0)
        else:
            await asyncio.sleep(seconds / self._speed)

    def _rebase(self, when: datetime) -> None:
        self._base = when
        self._anchor = time.monotonic()


class FlowingClock:
    """Virtual time that flows ``speed`` times faster than the wall clock from ``origin``.

    It reads the wall clock (not a process's monotonic clock), so every process given the
    same ``origin`` and ``speed`` agrees on the time: ``mailfleet sandbox`` and
    ``mailfleet run`` can rehearse a month in an hour together (``MAILFLEET_CLOCK_SPEED``
    and ``MAILFLEET_CLOCK_ORIGIN``).
    """

    def __init__(self, origin: datetime, speed: float) -> None:
        if origin.tzinfo is None:
            raise ValueError("FlowingClock needs a timezone-aware origin")
        if speed <= 0:
            raise ValueError("FlowingClock speed must be positive")
        self.origin = origin.astimezone(UTC)
        self.speed = speed

    def now(self) -> datetime:
        """The origin plus the wall time since, times the speed."""
        elapsed = time.time() - self.origin.timestamp()
        return self.origin + timedelta(seconds=elapsed * self.speed)

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of virtual time: ``seconds / speed`` of real time."""
        await asyncio.sleep(max(0.0, seconds) / self.speed)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """Build a UTC datetime; a small convenience for tests and the demo."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
