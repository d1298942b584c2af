"""A warmup world: two tenants, two domains each, mailboxes read and written over the sandbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select

from fakes.rows import enroll_leads
from mailfleet.clock import VirtualClock
from mailfleet.engine.credentials import CredentialCache
from mailfleet.engine.warmup import WarmupConfig, WarmupSender
from mailfleet.engine.warmup_receiver import WarmupReceiver
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
from mailfleet.store.models import WarmupSettings
from mailfleet.transport.secrets import SecretBox
from mailfleet.transport.smtp import SmtpPool

TENANTS = ("contoso.onmicrosoft.com", "fabrikam.onmicrosoft.com")
DOMAINS = {"alpha.example": 0, "beta.example": 0, "gamma.example": 1, "delta.example": 1}


@dataclass
class WarmupWorld:
    db: Database
    clock: VirtualClock
    sandbox: Sandbox
    sender: WarmupSender
    receiver: WarmupReceiver
    pool: SmtpPool
    http: httpx.AsyncClient
    ids: dict[str, int]  # address -> mailbox id
    box: SecretBox

    async def close(self) -> None:
        await self.receiver.close()
        await self.pool.close_all()
        await self.http.aclose()
        await self.db.close()

    async def settings(self, address: str) -> WarmupSettings:
        async with self.db.session() as session:
            row = await session.get(WarmupSettings, self.ids[address])
            assert row is not None
            return row


async def build(
    tmp: Path,
    clock: VirtualClock,
    sandbox: Sandbox,
    *,
    per_domain: int = 1,
    config: WarmupConfig | None = None,
    started_on: date | None = None,
    gap_seconds: int = 60,
    leads: int = 0,
    daily_cap: int | None = None,
) -> WarmupWorld:
    """The world; with ``leads`` a running one-step campaign mails prospects from every mailbox."""
    now = clock.now()
    db = Database(f"sqlite+aiosqlite:///{tmp / 'warmup.db'}")
    await db.migrate()
    box = SecretBox.from_key_file(tmp / "key")
    for tenant in TENANTS:
        sandbox.add_tenant(tenant)
        sandbox.register_app(tenant, "app", "s3cret")
    ids: dict[str, int] = {}
    async with db.session() as session:
        ws = Workspace(slug="t", name="T", created_at=now)
        session.add(ws)
        await session.flush()
        for name, tenant_index in DOMAINS.items():
            tenant = TENANTS[tenant_index]
            domain = Domain(
                workspace_id=ws.id,
                name=name,
                provider="microsoft365",
                tenant=tenant,
                created_at=now,
            )
            session.add(domain)
            await session.flush()
            for i in range(per_domain):
                address = f"rep{i}@{name}"
                sandbox.add_mailbox(address, tenant)
                mailbox = Mailbox(
                    workspace_id=ws.id,
                    domain_id=domain.id,
                    address=address,
                    display_name=f"{name.split('.')[0].title()} Rep{i}",
                    provider="microsoft365",
                    tenant=tenant,
                    smtp_host=sandbox.smtp_host,
                    smtp_port=sandbox.smtp_port,
                    smtp_security="starttls",
                    imap_host=sandbox.imap_host,
                    imap_port=sandbox.imap_port,
                    imap_security="tls",
                    ca_file=str(sandbox.ca_file),
                    auth_kind="oauth2_client",
                    token_endpoint=sandbox.token_url(tenant),
                    client_id="app",
                    secret=box.seal({"client_secret": "s3cret"}),
                    min_gap_seconds=gap_seconds,
                    daily_cap=daily_cap,
                    ramp_start=now.date() - timedelta(days=60),
                    timezone="UTC",
                    warmup_enabled=True,
                    tags=[],
                    created_at=now,
                )
                session.add(mailbox)
                await session.flush()
                ids[address] = mailbox.id
                session.add(
                    WarmupSettings(
                        mailbox_id=mailbox.id,
                        started_on=started_on or now.date(),
                        paused=False,
                        weekdays_only=False,
                        shared_pool=False,
                        cold_cap_factor=1.0,
                        updated_at=now,
                    )
                )
        if leads:
            sandbox.add_prospect_domain("prospect.example")
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
            campaign.steps.append(Step(position=1, subject="Hello", body_text="Hi there"))
            session.add(campaign)
            await session.flush()
            addresses = (f"lead{i}@p{i}.prospect.example" for i in range(leads))
            await enroll_leads(session, ws.id, campaign.id, ((a, {}) for a in addresses), now)
    http = httpx.AsyncClient(timeout=30)
    credentials = CredentialCache(box, clock, http)
    pool = SmtpPool(clock)
    config = config or WarmupConfig()
    sender = WarmupSender(db, clock, credentials, pool, config=config)
    receiver = WarmupReceiver(db, clock, credentials, config=config)
    return WarmupWorld(db, clock, sandbox, sender, receiver, pool, http, ids, box)


async def mailbox(world: WarmupWorld, address: str) -> Mailbox:
    async with world.db.session() as session:
        row = (await session.scalars(select(Mailbox).where(Mailbox.address == address))).one()
        return row
