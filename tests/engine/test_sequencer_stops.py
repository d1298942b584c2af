"""Stops: what each reason ends, suppression per workspace, stop-for-company, and the race
with a send already claimed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mailfleet.campaigns import parse_campaign
from mailfleet.clock import VirtualClock, utc
from mailfleet.sandbox import Sandbox
from mailfleet.services.stops import StopReason, stop_lead, suppress
from mailfleet.store import (
    Campaign,
    CampaignStatus,
    Database,
    Enrollment,
    EnrollmentStatus,
    Event,
    Lead,
    Send,
    SendStatus,
    Suppression,
    Workspace,
)
from mailfleet.store import commands as store_commands

from .world import build_world

AT = utc(2026, 3, 2, 10)
LEADS = ("ann@acme.com", "bob@acme.com", "cy@acme.com", "dee@gmail.com", "eve@gmail.com")


@dataclass
class Store:
    db: Database
    workspace: int
    plain: int  # default stop rules
    strict: int  # on_company_reply, on_auto_reply, on_bounce: any
    leads: dict[str, int]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'stops.db'}")
    await db.migrate()
    async with db.session() as session:
        ws = Workspace(slug="w", name="W", created_at=AT)
        other = Workspace(slug="other", name="Other", created_at=AT)
        session.add_all([ws, other])
        await session.flush()
        ids = []
        for name, stop in (
            ("plain", {}),
            ("strict", {"on_company_reply": True, "on_auto_reply": True, "on_bounce": "any"}),
        ):
            spec = parse_campaign(
                {"name": name, "stop": stop, "steps": [{"subject": "s", "body": "b"}]}
            )
            campaign = store_commands.campaign_from_spec(ws.id, spec, AT)
            campaign.status = CampaignStatus.ACTIVE
            session.add(campaign)
            await session.flush()
            ids.append(campaign.id)
        leads: dict[str, int] = {}
        for email in LEADS:
            lead = Lead(workspace_id=ws.id, email=email, email_normalized=email, created_at=AT)
            session.add(lead)
            # The same address in another workspace is another lead.
            session.add(
                Lead(workspace_id=other.id, email=email, email_normalized=email, created_at=AT)
            )
            await session.flush()
            leads[email] = lead.id
        for campaign_id in ids:
            await store_commands.enroll(
                session, await session.get(Campaign, campaign_id), list(leads.values()), AT
            )  # type: ignore[arg-type]
        workspace_id = ws.id
    yield Store(db, workspace_id, ids[0], ids[1], leads)
    await db.close()


async def statuses(store: Store) -> dict[tuple[str, str], str]:
    """(campaign, email) -> enrollment status."""
    async with store.db.session() as session:
        rows = (
            await session.execute(
                select(Campaign.name, Lead.email, Enrollment.status)
                .join(Campaign, Campaign.id == Enrollment.campaign_id)
                .join(Lead, Lead.id == Enrollment.lead_id)
            )
        ).all()
    return {(c, e): s for c, e, s in rows}


async def test_a_reply_ends_the_leads_sequences_everywhere_and_colleagues_where_asked(
    store: Store,
) -> None:
    async with store.db.session() as session:
        result = await stop_lead(
            session,
            workspace_id=store.workspace,
            email="Ann@Acme.com ",
            reason=StopReason.REPLY,
            at=AT,
            campaign_id=store.plain,
            detail="Re: hello",
        )
    assert result.lead_id == store.leads["ann@acme.com"] and not result.suppressed
    assert len(result.stopped) == 2  # in both campaigns, whichever was replied to
    assert len(result.company_stopped) == 2  # bob and cy, only where the rule says so
    now = await statuses(store)
    assert now[("plain", "ann@acme.com")] == now[("strict", "ann@acme.com")] == "replied"
    assert now[("strict", "bob@acme.com")] == now[("strict", "cy@acme.com")] == "stopped"
    assert now[("plain", "bob@acme.com")] == "active"
    assert now[("strict", "dee@gmail.com")] == "active"  # not a colleague
    async with store.db.session() as session:
        reasons = dict((await session.execute(select(Enrollment.id, Enrollment.stop_reason))).all())
        events = (await session.scalars(select(Event.kind))).all()
    assert reasons[result.stopped[0]] == "reply: Re: hello"
    assert reasons[result.company_stopped[0]] == "company_reply: ann@acme.com replied"
    assert events.count("enrollment.stopped") == 4
    # Idempotent.
    async with store.db.session() as session:
        again = await stop_lead(
            session,
            workspace_id=store.workspace,
            email="ann@acme.com",
            reason=StopReason.REPLY,
            at=AT,
        )
    assert again.stopped == again.company_stopped == []


async def test_a_free_mail_reply_stops_nobody_else(store: Store) -> None:
    async with store.db.session() as session:
        result = await stop_lead(
            session,
            workspace_id=store.workspace,
            email="dee@gmail.com",
            reason=StopReason.REPLY,
            at=AT,
        )
    assert len(result.stopped) == 2 and result.company_stopped == []
    assert (await statuses(store))[("strict", "eve@gmail.com")] == "active"


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        (StopReason.HARD_BOUNCE, "bounced"),
        (StopReason.COMPLAINT, "stopped"),
        (StopReason.UNSUBSCRIBE, "unsubscribed"),
    ],
)
async def test_hard_bounce_complaint_and_unsubscribe_suppress_for_every_campaign(
    store: Store, reason: StopReason, status: str
) -> None:
    lead_id = store.leads["bob@acme.com"]
    async with store.db.session() as session:
        result = await stop_lead(
            session, workspace_id=store.workspace, lead_id=lead_id, reason=reason, at=AT
        )
    assert result.suppressed and len(result.stopped) == 2 and result.company_stopped == []
    now = await statuses(store)
    assert now[("plain", "bob@acme.com")] == now[("strict", "bob@acme.com")] == status
    async with store.db.session() as session:
        rows = (
            await session.execute(
                select(Suppression.workspace_id, Suppression.value, Suppression.reason)
            )
        ).all()
    assert rows == [(store.workspace, "bob@acme.com", reason.value)]  # this workspace only


async def test_rule_based_reasons_follow_each_campaigns_stop_rules(store: Store) -> None:
    async with store.db.session() as session:
        ooo = await stop_lead(
            session,
            workspace_id=store.workspace,
            email="cy@acme.com",
            reason=StopReason.AUTO_REPLY,
            at=AT,
        )
        soft = await stop_lead(
            session,
            workspace_id=store.workspace,
            email="eve@gmail.com",
            reason=StopReason.SOFT_BOUNCE,
            at=AT,
            detail="452 4.2.2 mailbox full",
        )
        manual = await stop_lead(
            session,
            workspace_id=store.workspace,
            email="dee@gmail.com",
            reason=StopReason.MANUAL,
            at=AT,
            campaign_id=store.plain,
        )
    assert len(ooo.stopped) == len(soft.stopped) == len(manual.stopped) == 1
    now = await statuses(store)
    assert now[("strict", "cy@acme.com")] == "stopped" and now[("plain", "cy@acme.com")] == "active"
    assert (
        now[("strict", "eve@gmail.com")] == "bounced"
        and now[("plain", "eve@gmail.com")] == "active"
    )
    assert (
        now[("plain", "dee@gmail.com")] == "stopped"
        and now[("strict", "dee@gmail.com")] == "active"
    )
    async with store.db.session() as session:
        assert (await session.scalars(select(Suppression))).all() == []


async def test_an_unknown_address_is_still_suppressed_and_a_domain_suppression_stops_all(
    store: Store,
) -> None:
    async with store.db.session() as session:
        nobody = await stop_lead(
            session,
            workspace_id=store.workspace,
            email="new@else.com",
            reason=StopReason.UNSUBSCRIBE,
            at=AT,
        )
        acme = await suppress(
            session,
            workspace_id=store.workspace,
            kind="domain",
            value="ACME.com",
            reason="manual",
            at=AT,
        )
    assert nobody.lead_id is None and nobody.suppressed
    assert acme.suppressed and len(acme.stopped) == 6
    with pytest.raises(ValueError, match="exactly one"):
        async with store.db.session() as session:
            await stop_lead(session, workspace_id=store.workspace, reason=StopReason.REPLY, at=AT)


async def test_a_stop_after_the_claim_wins_over_the_submission(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=1, leads=1, steps=2)
    engine = world.engine
    original = engine._mark_submitting

    async def reply_arrives_first(claim):  # type: ignore[no-untyped-def]
        async with world.db.session() as session:
            await stop_lead(
                session,
                workspace_id=world.workspace_id,
                lead_id=(await session.get(Enrollment, claim.planned.enrollment_id)).lead_id,  # type: ignore[union-attr]
                reason=StopReason.REPLY,
                at=clock.now(),
            )
        return await original(claim)

    monkeypatch.setattr(engine, "_mark_submitting", reply_arrives_first)
    report = await engine.tick()
    monkeypatch.undo()
    await engine.run_until(clock.now() + timedelta(days=3))
    await engine.close()
    assert report.stopped == 1 and report.sent == 0
    assert sandbox.prospects.deliveries() == []
    async with world.db.session() as session:
        send = (await session.scalars(select(Send))).one()
        enrollment = (await session.scalars(select(Enrollment))).one()
    assert send.status == SendStatus.FAILED and send.outcome == "stopped"
    assert "reply" in (send.error or "")
    assert enrollment.status == EnrollmentStatus.REPLIED
    await world.db.close()


async def test_a_reply_between_steps_ends_the_sequence_before_the_next_tick(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=1, leads=2, steps=2)
    await world.engine.run_until(clock.now() + timedelta(hours=6))
    async with world.db.session() as session:
        await stop_lead(
            session,
            workspace_id=world.workspace_id,
            email="lead0@prospect.example",
            reason=StopReason.REPLY,
            at=clock.now(),
        )
    await world.engine.run_until(clock.now() + timedelta(days=3))
    await world.engine.close()
    await world.db.close()
    got = sorted(d.address for d in sandbox.prospects.deliveries())
    assert got.count("lead0@prospect.example") == 1 and got.count("lead1@prospect.example") == 2
