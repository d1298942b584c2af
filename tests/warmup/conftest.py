from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailfleet.clock import VirtualClock, utc
from mailfleet.sandbox import Sandbox, start_sandbox


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(utc(2026, 3, 2, 0))


@pytest.fixture
async def sandbox(tmp_path: Path, clock: VirtualClock) -> AsyncIterator[Sandbox]:
    sb = await start_sandbox(clock, tmp_path / "sandbox")
    try:
        yield sb
    finally:
        await sb.stop()
