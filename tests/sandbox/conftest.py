"""Fixtures for the sandbox tests: a running sandbox with one tenant and SMTP clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosmtplib
import pytest

from mailfleet.clock import VirtualClock, utc
from mailfleet.sandbox import Sandbox, create_tls_material, start_sandbox

from .support import HOSTNAME, SENDER, app_token, populate, smtp_client


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(utc(2025, 3, 3, 9, 0, 0))


@pytest.fixture
async def sandbox(clock: VirtualClock, tmp_path: Path) -> AsyncIterator[Sandbox]:
    """The whole sandbox, as ``start_sandbox`` builds it."""
    box = populate(await start_sandbox(clock, tmp_path))
    try:
        yield box
    finally:
        await box.stop()


@pytest.fixture
async def smtp_sandbox(clock: VirtualClock, tmp_path: Path) -> AsyncIterator[Sandbox]:
    """The sandbox with only SMTP listening; tokens are issued in-process.

    Stopping uvicorn costs about 0.1 s, which most SMTP tests have no reason to pay.
    """
    tls = create_tls_material(tmp_path / "tls", ("localhost", "127.0.0.1"))
    box = populate(Sandbox(clock, tls, HOSTNAME))
    await box.smtp.start()
    try:
        yield box
    finally:
        await box.stop()


@pytest.fixture
async def client(smtp_sandbox: Sandbox) -> AsyncIterator[aiosmtplib.SMTP]:
    """Connected, EHLO'd, not yet STARTTLS'd."""
    smtp = smtp_client(smtp_sandbox)
    await smtp.connect()
    try:
        yield smtp
    finally:
        smtp.close()


@pytest.fixture
async def tls_client(client: aiosmtplib.SMTP) -> aiosmtplib.SMTP:
    """Connected, upgraded with STARTTLS and EHLO'd again, not authenticated."""
    await client.starttls()
    await client.ehlo()
    return client


@pytest.fixture
async def authed_client(tls_client: aiosmtplib.SMTP, smtp_sandbox: Sandbox) -> aiosmtplib.SMTP:
    """Authenticated as SENDER with an app-only XOAUTH2 token."""
    await tls_client.auth_xoauth2(SENDER, app_token(smtp_sandbox))
    return tls_client
