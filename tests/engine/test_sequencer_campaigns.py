"""Campaign features through the engine and the sandbox: A/B variants, mailbox lists, the
warmup ratio, recipient-domain and sending-domain caps."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path

from sqlalchemy import select

from mailfleet.campaigns import choose_variant
from mailfleet.clock import VirtualClock
from mailfleet.limits import FleetPolicy
from mailfleet.sandbox import Sandbox
from mailfleet.store import Campaign, Domain, Lead, Mailbox, Send, SendKind, SendStatus, Step

from .world import World, build_world


async def sent(world: World) -> list[Send]:
    async with world.db.session() as session:
        return list(
            (await session.scalars(select(Send).where(Send.status == SendStatus.SENT))).all()
        )


async def test_each_lead_gets_its_weighted_variant_recorded_on_the_send(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=2, leads=12, steps=1)
    async with world.db.session() as session:
        step = (await session.scalars(select(Step))).one()
        step.variants = {
            "variants": [
                {
                    "name": "A",
                    "weight": 3,
                    "subject": "Hello {{ company }}",
                    "body": "a",
                    "html": None,
                },
                {"name": "B", "weight": 1, "subject": "Question", "body": "b", "html": None},
            ]
        }
        leads = {lead.email: lead.id for lead in (await session.scalars(select(Lead))).all()}
    try:
        await world.engine.run_until(clock.now() + timedelta(days=2))
    finally:
        await world.engine.close()
    sends = await sent(world)
    assert len(sends) == 12
    for send in sends:
        expected = "AB"[choose_variant([3, 1], f"{world.campaign_id}:{leads[send.to_address]}:1")]
        assert send.variant == expected
        assert send.subject == (
            "Question" if expected == "B" else f"Hello Co {send.to_address[4:-17]}"
        )
        raw = sandbox.store.messages(send.to_address)[0].raw
        body = message_from_bytes(raw, policy=default).get_body(("plain",))
        assert body is not None and body.get_content().strip() == expected.lower()
    assert set(Counter(s.variant for s in sends)) == {"A", "B"}
    await world.db.close()


async def test_a_campaign_listing_mailboxes_sends_only_from_them(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=3, leads=6, steps=1)
    async with world.db.session() as session:
        campaign = await session.get(Campaign, world.campaign_id)
        assert campaign is not None
        campaign.settings = {"mailboxes": ["REP2@sender.example"]}
    try:
        await world.engine.run_until(clock.now() + timedelta(days=1))
    finally:
        await world.engine.close()
    assert {s.from_address for s in await sent(world)} == {"rep2@sender.example"}
    await world.db.close()


async def test_warmup_on_holds_cold_back_until_warmup_is_recorded(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=1, leads=5, steps=1, warmup=True)
    report = await world.engine.tick()
    assert report.planned == 0
    async with world.db.session() as session:
        box = (await session.scalars(select(Mailbox))).one()
        for i in range(5):  # five accepted warmup sends today: room for two cold ones at 2:1
            session.add(
                Send(
                    workspace_id=world.workspace_id,
                    kind=SendKind.WARMUP,
                    mailbox_id=box.id,
                    message_id=f"<warm{i}@sender.example>",
                    from_address=box.address,
                    to_address=f"peer{i}@peer.example",
                    subject="warmup",
                    status=SendStatus.SENT,
                    claimed_at=clock.now() - timedelta(hours=1),
                )
            )
    try:
        await world.engine.run_until(clock.now() + timedelta(hours=12))
    finally:
        await world.engine.close()
    cold = [s for s in await sent(world) if s.kind == SendKind.COLD]
    assert len(cold) == 2
    await world.db.close()


async def test_recipient_domain_caps_hold_with_the_default_fleet_policy(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(
        tmp_path,
        clock,
        sandbox,
        mailboxes=3,
        leads=20,
        steps=1,
        fleet=FleetPolicy(recipient_domain_per_workspace=12),
    )
    try:
        await world.engine.run_until(clock.now() + timedelta(hours=16))
    finally:
        await world.engine.close()
    sends = await sent(world)
    assert {s.recipient_domain for s in sends} == {"prospect.example"}
    per_box = Counter(s.mailbox_id for s in sends)
    assert len(sends) == 12  # the workspace cap, before three mailboxes' 5 each (15)
    assert max(per_box.values()) <= 5
    await world.db.close()


async def test_a_sending_domain_cap_is_shared_by_its_mailboxes(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=2, leads=10, steps=1)
    async with world.db.session() as session:
        domain = (await session.scalars(select(Domain))).one()
        domain.daily_cap = 3
    try:
        await world.engine.run_until(clock.now() + timedelta(hours=15))
    finally:
        await world.engine.close()
    assert len(await sent(world)) == 3
    await world.db.close()
