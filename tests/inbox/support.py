"""A small world for inbox tests: a sandbox tenant, one sending mailbox read over IMAP, leads.

The campaign sends through the real engine and the sandbox's SMTP; the inbox sync
reads the same mailbox over the sandbox's IMAP. Messages that should arrive are
either the simulated prospects' answers or built here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from email.utils import format_datetime, make_msgid
from pathlib import Path

from fakes.rows import enroll_leads
from mailfleet.clock import Clock, VirtualClock, utc
from mailfleet.engine.inbox import InboxSettings, InboxSync
from mailfleet.engine.runtime import Engine
from mailfleet.limits import FleetPolicy, RampPolicy
from mailfleet.sandbox import INBOX, Sandbox
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
SENDER = "rep@sender.example"
PROSPECTS = "prospect.example"
DATE = utc(2026, 3, 2, 9)


@dataclass
class InboxWorld:
    db: Database
    clock: VirtualClock
    sandbox: Sandbox
    engine: Engine
    inbox: InboxSync
    workspace_id: int
    campaign_id: int
    mailbox_id: int

    async def send_due(self, within: timedelta = timedelta(hours=1)) -> None:
        """Run the engine for ``within`` (one send per mailbox per tick): due steps go out."""
        reports = await self.engine.run_until(self.clock.now() + within)
        assert not [e for r in reports for e in r.errors]

    def deliver(
        self, raw: bytes, *, folder: str = INBOX, sender: str = "x@prospect.example"
    ) -> None:
        """Drop ``raw`` into the sending mailbox, as if it had arrived from outside."""
        self.sandbox.store.append(
            SENDER, folder, raw, sender=sender, recipients=[SENDER], received_at=self.clock.now()
        )

    async def close(self) -> None:
        await self.inbox.close()
        await self.engine.close()
        await self.db.close()


async def build(
    tmp: Path,
    clock: VirtualClock,
    sandbox: Sandbox,
    *,
    leads: int = 4,
    steps: int = 2,
    settings: dict[str, object] | None = None,
    companies: list[str] | None = None,
    sync_clock: Clock | None = None,
    inbox_settings: InboxSettings | None = None,
) -> InboxWorld:
    now = clock.now()
    db = Database(f"sqlite+aiosqlite:///{tmp / 'inbox.db'}")
    await db.migrate()
    box = SecretBox.from_key_file(tmp / "key")
    sandbox.add_tenant(TENANT)
    sandbox.register_app(TENANT, "app", "s3cret")
    sandbox.add_prospect_domain(PROSPECTS)
    sandbox.add_mailbox(SENDER, TENANT)
    async with db.session() as session:
        ws = Workspace(slug="t", name="T", created_at=now)
        session.add(ws)
        await session.flush()
        domain = Domain(
            workspace_id=ws.id, name="sender.example", provider="microsoft365", created_at=now
        )
        session.add(domain)
        await session.flush()
        mailbox = Mailbox(
            workspace_id=ws.id,
            domain_id=domain.id,
            address=SENDER,
            display_name="Rita Rep",
            provider="microsoft365",
            tenant=TENANT,
            smtp_host=sandbox.smtp_host,
            smtp_port=sandbox.smtp_port,
            smtp_security="starttls",
            imap_host=sandbox.imap_host,
            imap_port=sandbox.imap_port,
            imap_security="tls",
            ca_file=str(sandbox.ca_file),
            auth_kind="oauth2_client",
            token_endpoint=sandbox.token_url(TENANT),
            client_id="app",
            secret=box.seal({"client_secret": "s3cret"}),
            daily_cap=100,
            min_gap_seconds=1,
            ramp_start=now.date() - timedelta(days=60),
            timezone="UTC",
            tags=[],
            warmup_enabled=False,
            created_at=now,
        )
        session.add(mailbox)
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
            settings=dict(settings or {}),
            created_at=now,
            started_at=now,
        )
        campaign.steps.append(
            Step(position=1, delay_days=0, subject="Hello {{ company }}", body_text="Hi there")
        )
        for position in range(2, steps + 1):
            campaign.steps.append(
                Step(position=position, delay_days=2, subject="", body_text=f"Follow-up {position}")
            )
        session.add(campaign)
        await session.flush()
        await enroll_leads(
            session,
            ws.id,
            campaign.id,
            (
                (
                    f"lead{i}@{PROSPECTS}",
                    {"first_name": f"L{i}", "company": companies[i] if companies else f"Co {i}"},
                )
                for i in range(leads)
            ),
            now,
        )
        await session.flush()
        ids = (ws.id, campaign.id, mailbox.id)
    engine = Engine(
        db,
        clock,
        box,
        public_url="https://mf.example",
        unsubscribe_key=b"k" * 32,
        seed=1,
        # The mailbox's daily cap of 100 is above the 15-25 band: let it count, explicitly.
        fleet=FleetPolicy(ramp=RampPolicy(steady_max=100)),
    )
    inbox = InboxSync(
        db,
        sync_clock or clock,
        engine.credentials,
        settings=inbox_settings or InboxSettings(concurrency=4),
        seed=1,
    )
    return InboxWorld(db, clock, sandbox, engine, inbox, *ids)


def message(
    *,
    sender: str = "lead0@prospect.example",
    subject: str = "Re: Hello",
    body: str = "Sounds good, let's talk.",
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
) -> bytes:
    """A plain message from ``sender`` to the sending mailbox."""
    lines = [
        f"From: {sender}",
        f"To: {SENDER}",
        f"Subject: {subject}",
        f"Date: {format_datetime(DATE)}",
        f"Message-ID: {message_id or make_msgid(domain='prospect.example')}",
    ]
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append(f"References: {references}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    lines += ["Content-Type: text/plain; charset=utf-8", "", body, ""]
    return "\r\n".join(lines).encode()
