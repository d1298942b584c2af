"""A small world for engine tests: a sandbox tenant, mailboxes and a running campaign."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from fakes.rows import enroll_leads
from mailfleet.clock import VirtualClock
from mailfleet.engine.runtime import Engine
from mailfleet.limits import FleetPolicy
from mailfleet.sandbox import Sandbox
from mailfleet.store import (
    Campaign,
    CampaignStatus,
    Database,
    Domain,
    Mailbox,
    Step,
    Workspace,
)
from mailfleet.transport.secrets import SecretBox

TENANT = "contoso.onmicrosoft.com"
# Every lead of this world is at one domain, prospect.example: the recipient-domain caps
# would be the only limit that binds, and these tests are about the others.
NO_RECIPIENT_DOMAIN_CAPS = FleetPolicy(
    recipient_domain_per_mailbox=None, recipient_domain_per_workspace=None
)


@dataclass
class World:
    db: Database
    clock: VirtualClock
    sandbox: Sandbox
    box: SecretBox
    engine: Engine
    workspace_id: int
    campaign_id: int
    mailbox_ids: list[int]


async def build_world(
    tmp: Path,
    clock: VirtualClock,
    sandbox: Sandbox,
    *,
    mailboxes: int = 2,
    leads: int = 10,
    daily_cap: int = 30,
    gap_seconds: int = 600,
    steps: int = 2,
    secret: str = "s3cret-value",
    warmup: bool = False,
    fleet: FleetPolicy = NO_RECIPIENT_DOMAIN_CAPS,
) -> World:
    """A tenant with ``mailboxes`` 60-day-old mailboxes and a campaign with ``leads`` due now.

    The mailboxes' warmup is off unless ``warmup`` (no warmup engine runs here, so the
    warmup ratio would hold every cold send back).
    """
    now = clock.now()
    db = Database(f"sqlite+aiosqlite:///{tmp / 'engine.db'}")
    await db.migrate()
    box = SecretBox.from_key_file(tmp / "key")
    sandbox.add_tenant(TENANT)
    sandbox.register_app(TENANT, "app", secret)
    sandbox.add_prospect_domain("prospect.example")
    async with db.session() as session:
        ws = Workspace(slug="t", name="T", created_at=now)
        session.add(ws)
        await session.flush()
        domain = Domain(
            workspace_id=ws.id,
            name="sender.example",
            provider="microsoft365",
            tenant=TENANT,
            created_at=now,
        )
        session.add(domain)
        await session.flush()
        ids = []
        for i in range(mailboxes):
            address = f"rep{i}@sender.example"
            sandbox.add_mailbox(address, TENANT)
            mb = Mailbox(
                workspace_id=ws.id,
                domain_id=domain.id,
                address=address,
                display_name=f"Rep {i}",
                provider="microsoft365",
                tenant=TENANT,
                smtp_host=sandbox.smtp_host,
                smtp_port=sandbox.smtp_port,
                smtp_security="starttls",
                ca_file=str(sandbox.ca_file),
                auth_kind="oauth2_client",
                token_endpoint=sandbox.token_url(TENANT),
                client_id="app",
                secret=box.seal({"client_secret": secret}),
                daily_cap=daily_cap,
                min_gap_seconds=gap_seconds,
                ramp_start=now.date() - timedelta(days=60),
                timezone="UTC",
                warmup_enabled=warmup,
                tags=[],
                created_at=now,
            )
            session.add(mb)
            await session.flush()
            ids.append(mb.id)
        campaign = Campaign(
            workspace_id=ws.id,
            name="C",
            status=CampaignStatus.ACTIVE,
            timezone="UTC",
            window_days=[1, 2, 3, 4, 5, 6, 7],
            window_start_minute=0,
            window_end_minute=24 * 60,
            use_lead_timezone=False,
            mailbox_tags=[],
            settings={},
            created_at=now,
            started_at=now,
        )
        campaign.steps.append(
            Step(
                position=1,
                delay_days=0,
                subject="Hello {{ company }}",
                body_text="Hi {{ first_name | default('there') }}",
                threaded=True,
                variants={},
            )
        )
        for position in range(2, steps + 1):
            campaign.steps.append(
                Step(
                    position=position,
                    delay_days=1,
                    subject="",
                    body_text=f"Follow-up {position}",
                    threaded=True,
                    variants={},
                )
            )
        session.add(campaign)
        await session.flush()
        await enroll_leads(
            session,
            ws.id,
            campaign.id,
            (
                (f"lead{i}@prospect.example", {"first_name": f"L{i}", "company": f"Co {i}"})
                for i in range(leads)
            ),
            now,
        )
        campaign_id, ws_id = campaign.id, ws.id
    engine = Engine(
        db,
        clock,
        box,
        public_url="https://mf.example",
        unsubscribe_key=b"k" * 32,
        seed=1,
        fleet=fleet,
    )
    return World(db, clock, sandbox, box, engine, ws_id, campaign_id, ids)


def day(clock: VirtualClock, n: float) -> datetime:
    return clock.now() + timedelta(days=n)
