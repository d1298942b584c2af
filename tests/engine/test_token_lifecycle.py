"""Tokens over a sending day: short-lived tokens, early expiry, rotation, and a revoked grant."""

import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from fakes.msal_authority import FakeAuthority
from mailfleet.clock import VirtualClock
from mailfleet.engine.credentials import CredentialCache, DatabaseCredentialStore, MailboxTokens
from mailfleet.sandbox import Sandbox
from mailfleet.store import Event, Mailbox, MailboxStatus, Send, SendStatus
from mailfleet.transport.msal_tokens import DeviceCodeSignIn, MsalEnvironment

from .world import TENANT, World, build_world, day

PUBLIC_CLIENT = "00000000-0000-0000-0000-5a4db0c11e47"


def msal_env(authority: FakeAuthority) -> MsalEnvironment:
    return MsalEnvironment("https://login.test", authority, instance_discovery=False)


def use_store(world: World, authority: FakeAuthority | None = None) -> None:
    """The engine as it runs once runtime.py passes a store (see the report)."""
    world.engine.credentials = CredentialCache(
        world.box,
        world.clock,
        world.engine.http,
        store=DatabaseCredentialStore(world.db, world.clock),
        msal_environment=msal_env(authority) if authority else None,
    )


async def sends_by_status(world: World) -> Counter[str]:
    async with world.db.session() as session:
        return Counter((await session.scalars(select(Send.status))).all())


async def test_short_lived_tokens_are_renewed_and_no_message_is_lost(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    sandbox.tokens.lifetime = 420  # 7 minutes: every send needs a fresh token
    world = await build_world(tmp_path, clock, sandbox, mailboxes=2, leads=8, steps=1)
    use_store(world)
    issued = len(sandbox.tokens._tokens)
    try:
        await world.engine.run_until(day(clock, 1))
    finally:
        await world.engine.close()
    assert await sends_by_status(world) == {SendStatus.SENT: 8}
    assert len(sandbox.prospects.deliveries()) == 8
    # One app serves both mailboxes: one token at a time, renewed ahead of expiry.
    assert len(sandbox.tokens._tokens) - issued >= 4


async def test_a_token_dying_early_gets_one_forced_refresh_and_the_message_goes(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=1, leads=4, steps=1)
    use_store(world)
    try:
        await world.engine.run_until(clock.now() + timedelta(minutes=15))
        async with world.db.session() as session:
            mailbox = await session.get(Mailbox, world.mailbox_ids[0])
        assert mailbox is not None
        tokens = world.engine.credentials.credentials(mailbox).tokens
        assert isinstance(tokens, MailboxTokens)
        current = await tokens.access_token()
        sandbox.tokens.revoke(current.token)  # the server forgets it while we still trust it
        await world.engine.run_until(day(clock, 1))
    finally:
        await world.engine.close()
    assert await sends_by_status(world) == {SendStatus.SENT: 4}
    assert len(sandbox.prospects.deliveries()) == 4
    # The next send came well inside the revoked token's lifetime: it went out on the first
    # attempt only because the 535 5.7.3 got one forced refresh and a retry.
    async with world.db.session() as session:
        attempts = (await session.scalars(select(Send.attempts))).all()
    assert attempts == [1, 1, 1, 1]


async def test_rotated_cache_is_stored_and_a_revoked_grant_disconnects_the_mailbox(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=2, leads=12, steps=1)
    sandbox.tokens.lifetime = 600
    authority = FakeAuthority(tenants={TENANT})

    def mint(user: str | None, tenant: str, scopes: list[str]) -> tuple[str, int]:
        assert user is not None
        issued = sandbox.tokens.issue_delegated(user, scopes, client_id=PUBLIC_CLIENT)
        return issued.value, sandbox.tokens.lifetime

    authority.minter = mint
    delegated = "rep0@sender.example"
    authority.approve_device_code(delegated)
    sign_in = DeviceCodeSignIn(
        address=delegated,
        client_id=PUBLIC_CLIENT,
        tenant=TENANT,
        clock=clock,
        environment=msal_env(authority),
    )
    await sign_in.start()
    signed = await sign_in.finish()
    async with world.db.session() as session:
        mailbox = await session.get(Mailbox, world.mailbox_ids[0])
        assert mailbox is not None
        mailbox.auth_kind = "m365_delegated"
        mailbox.client_id = PUBLIC_CLIENT
        mailbox.token_endpoint = "https://login.test"
        mailbox.secret = world.box.seal({"token_cache": signed.token_cache, "account": delegated})
        first_blob = mailbox.secret
    use_store(world, authority)
    try:
        await world.engine.run_until(clock.now() + timedelta(minutes=50))
        assert authority.grants("refresh_token") >= 1
        async with world.db.session() as session:
            mailbox = await session.get(Mailbox, world.mailbox_ids[0])
            assert mailbox is not None and mailbox.status == MailboxStatus.ACTIVE
            stored = world.box.open(mailbox.secret or b"")
        assert mailbox.secret != first_blob
        live = set(authority.refresh_tokens)
        cache = json.loads(stored["token_cache"])
        kept = {entry["secret"] for entry in cache["RefreshToken"].values()}
        assert kept <= live and kept  # the rotated refresh token was sealed and stored
        authority.revoke(delegated)  # the user changed the password
        await world.engine.run_until(day(clock, 1))
    finally:
        await world.engine.close()
    async with world.db.session() as session:
        mailbox = await session.get(Mailbox, world.mailbox_ids[0])
        assert mailbox is not None
        events = (
            await session.scalars(select(Event).where(Event.kind == "mailbox.disconnected"))
        ).all()
        sent = (await session.scalars(select(Send).where(Send.status == SendStatus.SENT))).all()
    assert mailbox.status == MailboxStatus.DISCONNECTED
    reason = mailbox.status_reason or ""
    assert "AADSTS50173" in reason and "revoked" in reason
    assert f"mailfleet mailbox connect {delegated} --device-code" in reason
    assert len(events) == 1 and events[0].mailbox_id == mailbox.id
    # Every first step went out exactly once; after the disconnect, from the other mailbox.
    assert sorted(Counter(s.enrollment_id for s in sent).values()) == [1] * 12
    assert len(sandbox.prospects.deliveries()) == 12
    assert {s.mailbox_id for s in sent} == set(world.mailbox_ids)
