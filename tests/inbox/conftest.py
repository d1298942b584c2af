"""Fixtures of the inbox tests: the sandbox on a virtual clock, and a real Dovecot."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mailfleet.clock import VirtualClock, utc
from mailfleet.sandbox import Sandbox, start_sandbox

from .dovecot import Dovecot, dovecot_binary, running_dovecot


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(utc(2026, 3, 2, 8))


@pytest.fixture
async def sandbox(tmp_path: Path, clock: VirtualClock) -> AsyncIterator[Sandbox]:
    sb = await start_sandbox(clock, tmp_path / "sandbox")
    try:
        yield sb
    finally:
        await sb.stop()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """A real Dovecot on loopback for the whole session (started once: about a second)."""
    binary = dovecot_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("dovecot is not installed; scripts/test installs dovecot-imapd/pop3d")
        pytest.skip(
            "dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d, "
            "or run scripts/test, which does)"
        )
    with running_dovecot(binary) as server:
        yield server
