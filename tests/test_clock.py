import asyncio
from datetime import timedelta

import pytest

from mailfleet.clock import Clock, SystemClock, VirtualClock, utc


def test_virtual_clock_only_moves_when_told() -> None:
    clock = VirtualClock(utc(2026, 3, 2, 9))
    assert clock.now() == utc(2026, 3, 2, 9)
    clock.advance(timedelta(minutes=5))
    assert clock.now() == utc(2026, 3, 2, 9, 5)
    clock.advance_to(utc(2026, 3, 2, 8))  # the past is ignored
    assert clock.now() == utc(2026, 3, 2, 9, 5)


async def test_virtual_sleep_jumps_without_waiting() -> None:
    clock = VirtualClock(utc(2026, 3, 2))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await clock.sleep(3 * 86400)
    assert clock.now() == utc(2026, 3, 5)
    assert loop.time() - started < 1


async def test_virtual_clock_with_speed_flows_faster_than_real_time() -> None:
    clock = VirtualClock(utc(2026, 3, 2), speed=3600)
    await asyncio.sleep(0.05)
    assert clock.now() - utc(2026, 3, 2) >= timedelta(seconds=150)


def test_clocks_are_clocks_and_refuse_bad_input() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(VirtualClock(utc(2026, 1, 1)), Clock)
    with pytest.raises(ValueError, match="timezone-aware"):
        from datetime import datetime

        VirtualClock(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="backwards"):
        VirtualClock(utc(2026, 1, 1)).advance(-1)
