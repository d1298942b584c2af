"""``ImapClient.idle``: IDLE until the server reports something, the time is up, or a wake-up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from mailfleet.clock import VirtualClock
from mailfleet.sandbox import INBOX, Sandbox
from mailfleet.transport.imap import ImapClient, ImapEndpoint

ADDRESS = "idle@brand.example"
GUARD = 10.0  # a hang guard, not a timing assertion


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[ImapClient]:
    sandbox.add_tenant("t.onmicrosoft.com")
    sandbox.add_mailbox(ADDRESS, "t.onmicrosoft.com", password="a long enough password")
    endpoint = ImapEndpoint(sandbox.imap_host, sandbox.imap_port, ca_file=str(sandbox.ca_file))
    imap = ImapClient(endpoint)
    await imap.connect()
    await imap.login_password(ADDRESS, "a long enough password")
    await imap.select("INBOX")
    try:
        yield imap
    finally:
        await imap.logout()


async def test_idle_returns_what_the_server_pushes(
    client: ImapClient, sandbox: Sandbox, clock: VirtualClock
) -> None:
    async def arrive() -> None:
        await asyncio.sleep(0.05)
        sandbox.store.append(
            ADDRESS,
            INBOX,
            b"Subject: hi\r\n\r\nhi\r\n",
            sender="a@b",
            recipients=[ADDRESS],
            received_at=clock.now(),
        )

    task = asyncio.create_task(arrive())
    lines = await asyncio.wait_for(client.idle(GUARD), GUARD)
    await task
    assert "1 EXISTS" in lines
    # The session is usable afterwards: IDLE ended with DONE and its tagged OK.
    assert (await client.select("INBOX")).exists == 1


async def test_idle_ends_quietly_when_the_time_is_up_or_on_wake(client: ImapClient) -> None:
    assert await asyncio.wait_for(client.idle(0.05), GUARD) == []
    wake = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, wake.set)
    assert await asyncio.wait_for(client.idle(GUARD, wake=wake), GUARD) == []
    assert client.is_connected
