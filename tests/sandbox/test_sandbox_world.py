"""One call starts the whole sandbox on free loopback ports; stop() leaves nothing behind."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx
import pytest

import mailfleet.sandbox
from mailfleet.clock import VirtualClock, utc
from mailfleet.sandbox import INBOX, SENT_ITEMS, Sandbox, start_sandbox

from .support import (
    APP_SCOPE,
    CLIENT_ID,
    CLIENT_SECRET,
    PROSPECT_DOMAIN,
    SENDER,
    TENANT,
    populate,
)


async def test_start_returns_loopback_addresses(sandbox: Sandbox, tmp_path: Path) -> None:
    assert sandbox.smtp_host == "127.0.0.1"
    assert sandbox.smtp_port > 0
    assert sandbox.token_base_url == f"http://127.0.0.1:{sandbox.token_server.port}"
    assert sandbox.token_url(TENANT).endswith(f"/{TENANT}/oauth2/v2.0/token")
    assert sandbox.ca_file.is_file()
    assert sandbox.ca_file.is_relative_to(tmp_path)


async def test_token_over_http_then_xoauth2_submission_end_to_end(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            sandbox.token_url(TENANT),
            data={
                "grant_type": "client_credentials",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "scope": APP_SCOPE,
            },
        )
    token = response.json()["access_token"]

    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = f"pat@{PROSPECT_DOMAIN}"
    msg["Subject"] = "Hello"
    msg["Message-ID"] = "<e2e@brand-mail.test>"
    msg.set_content("Hi Pat.\n")
    async with aiosmtplib.SMTP(
        hostname=sandbox.smtp_host,
        port=sandbox.smtp_port,
        start_tls=True,
        tls_context=sandbox.client_tls_context(),
    ) as smtp:
        await smtp.auth_xoauth2(SENDER, token)
        await smtp.send_message(msg)

    assert sandbox.store.count(f"pat@{PROSPECT_DOMAIN}", INBOX) == 1
    assert sandbox.store.find_by_message_id(SENDER, SENT_ITEMS, "<e2e@brand-mail.test>")
    assert [d.subject for d in sandbox.prospects.received(f"pat@{PROSPECT_DOMAIN}")] == ["Hello"]


async def test_stop_closes_open_sessions_and_leaves_no_tasks(
    clock: VirtualClock, tmp_path: Path
) -> None:
    before = asyncio.all_tasks()
    box = populate(await start_sandbox(clock, tmp_path))
    smtp = aiosmtplib.SMTP(
        hostname=box.smtp_host,
        port=box.smtp_port,
        start_tls=True,
        tls_context=box.client_tls_context(),
    )
    await smtp.connect()
    await smtp.auth_xoauth2(SENDER, box.tokens.issue_delegated(SENDER).value)
    # A second client that connected and went quiet before STARTTLS.
    reader, writer = await asyncio.open_connection(box.smtp_host, box.smtp_port)
    await reader.readline()
    async with httpx.AsyncClient() as http:
        await http.post(box.introspection_url, data={"token": "x"})

    await asyncio.wait_for(box.stop(), timeout=3)

    assert not box.smtp.sessions
    assert asyncio.all_tasks() - before == set()
    assert await reader.read() == b""  # the server hung up
    writer.close()
    await writer.wait_closed()
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await smtp.noop()
    smtp.close()
    with pytest.raises(OSError):
        await asyncio.open_connection(box.smtp_host, box.smtp_port)
    await box.stop()  # stopping twice is harmless


async def test_usable_as_async_context_manager(clock: VirtualClock, tmp_path: Path) -> None:
    async with await start_sandbox(clock, tmp_path, hostname="mx.test") as box:
        reader, writer = await asyncio.open_connection(box.smtp_host, box.smtp_port)
        assert await reader.readline() == b"220 mx.test Microsoft ESMTP MAIL Service ready\r\n"
        writer.close()
        await writer.wait_closed()
    with pytest.raises(OSError):
        await asyncio.open_connection(box.smtp_host, box.smtp_port)


async def test_mailboxes_need_an_existing_tenant(sandbox: Sandbox) -> None:
    with pytest.raises(KeyError, match="add_tenant"):
        sandbox.add_mailbox("x@y.test", "no-such-tenant")
    with pytest.raises(ValueError, match="already exists"):
        sandbox.add_mailbox(SENDER.upper(), TENANT)
    assert sandbox.store.folders(SENDER) == [
        "INBOX",
        "Junk",
        "Sent Items",
        "Archive",
        "Deleted Items",
    ]


def test_public_names() -> None:
    assert set(mailfleet.sandbox.__all__) == {
        "FAULTS",
        "INBOX",
        "JUNK",
        "MICROSOFT_365_LIMITS",
        "NO_LIMITS",
        "SENT_ITEMS",
        "AccessToken",
        "Answer",
        "AnswerShares",
        "Directory",
        "Fate",
        "FaultSpec",
        "ImapServer",
        "Introspection",
        "LimitMeter",
        "MailFolder",
        "MailStore",
        "MailboxBehaviour",
        "OAuthApp",
        "Principal",
        "ProspectDelivery",
        "ProspectSimulator",
        "Refusal",
        "Reply",
        "Sandbox",
        "SandboxMailbox",
        "StoredMessage",
        "Submission",
        "SubmissionLimits",
        "SubmissionServer",
        "TlsMaterial",
        "TokenCheck",
        "TokenError",
        "TokenServer",
        "TokenService",
        "TokenStatus",
        "build_token_app",
        "client_context",
        "closed_port",
        "create_tls_material",
        "fault",
        "normalize_address",
        "start_sandbox",
    }


async def test_the_world_publishes_its_domains_on_its_own_nameserver(tmp_path: Path) -> None:
    from mailfleet.engine.dns_checks import check_domain
    from mailfleet.transport.dns import DnsResolver

    sandbox = await start_sandbox(VirtualClock(utc(2026, 3, 2, 9)), tmp_path)
    async with sandbox:
        sandbox.publish_domain("alpha-mail.test", tenant="contoso")
        sandbox.publish_domain("beta-mail.test", omit=("dkim",))
        resolver = DnsResolver(sandbox.dns_address, timeout=5)
        good = await check_domain("alpha-mail.test", "microsoft365", resolver=resolver)
        bad = await check_domain("beta-mail.test", "microsoft365", resolver=resolver)
        assert good.failing == set(), good.findings
        assert bad.failing == {"dkim"}
        sandbox.publish_domain("beta-mail.test")  # fixed: its records are replaced
        fixed = await check_domain("beta-mail.test", "microsoft365", resolver=resolver)
        assert fixed.failing == set()
