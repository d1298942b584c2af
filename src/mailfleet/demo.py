"""``mailfleet demo``: a whole simulated world on this machine.

Two emulated Microsoft 365 tenants (the sandbox: SMTP submission with STARTTLS and
XOAUTH2, IMAP, a token service), each with a sending domain of two mailboxes,
generated prospects, and a two-step campaign run through the real engine on a
virtual clock. Everything listens on 127.0.0.1; nothing leaves the machine.

Warmup runs as in production: the mailboxes warm each other up across the two
tenants (a mailbox never warms against its own domain or tenant), the peers read
their warmup mail over IMAP, rescue it from Junk and reply to some of it, and a
cold send goes out only while the mailbox's warmup sends of the day are at least
twice its cold sends. The mailboxes stand for inboxes two months into their
warmup, so the ramp is at its ceiling and the cold cap at the steady band's top.
"""

from __future__ import annotations

import csv
import io
import random
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import delete, func, select

from mailfleet.campaigns import CampaignSpec, load_campaign, parse_campaign
from mailfleet.clock import VirtualClock
from mailfleet.config import Settings
from mailfleet.engine.inbox import InboxSync, run_with_sending
from mailfleet.engine.runtime import Engine, TickReport
from mailfleet.engine.warmup_receiver import ReceiverReport, WarmupReceiver
from mailfleet.leads import parse_leads
from mailfleet.sandbox import Sandbox, start_sandbox
from mailfleet.store import (
    CampaignStatus,
    Database,
    Domain,
    Mailbox,
    Send,
    SendKind,
    SendStatus,
    Workspace,
)
from mailfleet.store import commands as store_commands
from mailfleet.store import repository as repo
from mailfleet.store import warmup as warmup_store
from mailfleet.store.inbox_queries import inbound_counts
from mailfleet.store.models import WarmupMessage
from mailfleet.transport.secrets import SecretBox
from mailfleet.warmup import WarmupConfig

WORKSPACE = "demo"
# One tenant per sending domain: warmup peers are never on the sender's own tenant.
DOMAINS = (
    ("brightpath-mail.example", "brightpath-sandbox.onmicrosoft.com"),
    ("trybrightpath.example", "trybrightpath-sandbox.onmicrosoft.com"),
)
WARMED_FOR = timedelta(days=60)  # how long the demo's mailboxes have been warming up
SENDERS = (("Alex Morgan", "alex"), ("Sam Rivera", "sam"))
PROSPECT_DOMAINS = tuple(f"prospect{i}.example" for i in range(1, 9))

DEMO_CAMPAIGN = """
name: Demo outreach
timezone: Europe/London
window: {days: [mon, tue, wed, thu, fri, sat, sun], start: "08:00", end: "18:00"}
steps:
  - subject: "{Quick|Short} question about {{ company | default('your team') }}"
    body: |
      {Hi|Hello} {{ first_name | default("there") }},

      {I noticed|I saw} {{ company | default("your company") }} is growing
      its {{ team | default("sales") }} team.
      Would a 15-minute call next week be worth it?

      {{ sender_first_name }}
  - delay_days: 2
    body: |
      {Hi|Hey} {{ first_name | default("there") }}, just bringing this
      back to the top of your inbox.

      {{ sender_first_name }}
"""

FIRST = (
    "Ana",
    "Ben",
    "Chloé",
    "Dan",
    "Eva",
    "Finn",
    "Grace",
    "Hugo",
    "Iris",
    "Jonas",
    "Kira",
    "Liam",
    "Mara",
    "Nils",
    "Olga",
    "Paul",
    "Rosa",
    "Tom",
    "Uma",
    "Zoë",
)
LAST = (
    "Berg",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "García",
    "Hughes",
    "Jansen",
    "Keller",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Okafor",
    "Peters",
    "Rossi",
    "Silva",
)
TEAMS = ("sales", "growth", "revenue", "partnerships", "marketing")


class DemoError(Exception):
    """The demo could not start; the message says why."""


@dataclass(slots=True)
class DemoSummary:
    """What the demo did, as written to ``--json``."""

    days: int
    started_at: str
    ended_at: str
    mailboxes: int
    leads: int
    sends: int
    sends_by_step: dict[str, int]
    sends_by_mailbox: dict[str, int]
    follow_ups_threaded: int
    follow_ups_unthreaded: int
    leads_with_step1_once: int
    duplicate_sends: int
    delivered_to_prospects: int
    errors: list[str] = field(default_factory=list)
    # What the prospects sent back, as the inbox sync read it from the sending mailboxes.
    replies: int = 0
    auto_replies: int = 0
    bounces: int = 0
    hard_bounces: int = 0
    unsubscribes: int = 0
    answers_in_junk: int = 0
    # Warmup between the mailboxes, and what the receiving peers found over IMAP.
    warmup_sent: int = 0
    warmup_by_mailbox: dict[str, int] = field(default_factory=dict)
    warmup_replies: int = 0
    warmup_found_in_inbox: int = 0
    warmup_rescued_from_junk: int = 0

    def as_json(self) -> dict[str, Any]:
        """The summary as a JSON-able mapping."""
        return asdict(self)


def generate_leads_csv(count: int, seed: int = 7) -> str:
    """A CSV of ``count`` fictional prospects, as a sequencer would export it."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Email", "First Name", "Last Name", "Company Name", "Job Title", "Team"])
    for i in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        domain = PROSPECT_DOMAINS[i % len(PROSPECT_DOMAINS)]
        company = domain.split(".")[0].capitalize() + " " + rng.choice(("GmbH", "Ltd", "Inc", "BV"))
        local = f"{first}.{last}.{i}".lower().encode("ascii", "ignore").decode()
        writer.writerow(
            [f"{local}@{domain}", first, last, company, "Head of Sales", rng.choice(TEAMS)]
        )
    return out.getvalue()


def _start_of_demo(today: date) -> datetime:
    from datetime import UTC

    return datetime.combine(today, time(7, 0), UTC)


async def _reset(db: Database) -> None:
    async with db.session() as session:
        await session.execute(delete(Workspace).where(Workspace.slug == WORKSPACE))


async def _build_world(
    db: Database,
    sandbox: Sandbox,
    box: SecretBox,
    spec: CampaignSpec,
    leads_path: Path,
    now: datetime,
) -> tuple[int, int, list[str]]:
    """Create the workspace, domains, mailboxes, leads and the running campaign."""
    client_id = "mailfleet-demo-app"
    client_secret = secrets.token_urlsafe(24)
    for _, tenant in DOMAINS:
        sandbox.add_tenant(tenant)
        sandbox.register_app(tenant, client_id, client_secret)
    for domain in PROSPECT_DOMAINS:
        sandbox.add_prospect_domain(domain)
    with leads_path.open(encoding="utf-8-sig", newline="") as handle:
        parsed = parse_leads(handle, source=str(leads_path), allow_test_domains=True)
    problems = [str(error) for error in parsed.errors]
    async with db.session() as session:
        workspace = Workspace(slug=WORKSPACE, name="Demo workspace", created_at=now)
        session.add(workspace)
        await session.flush()
        mailboxes: list[Mailbox] = []
        for domain_name, tenant in DOMAINS:
            sending = Domain(
                workspace_id=workspace.id,
                name=domain_name,
                provider="microsoft365",
                tenant=tenant,
                created_at=now - timedelta(days=90),
            )
            session.add(sending)
            await session.flush()
            for display, local in SENDERS:
                address = f"{local}@{domain_name}"
                sandbox.add_mailbox(address, tenant)
                mailbox = Mailbox(
                    workspace_id=workspace.id,
                    domain_id=sending.id,
                    address=address,
                    display_name=display,
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
                    client_id=client_id,
                    secret=box.seal({"client_secret": client_secret}),
                    daily_cap=25,  # the top of the steady band (PROVIDERS.md: 15-25)
                    min_gap_seconds=600,
                    ramp_start=(now - WARMED_FOR).date(),
                    timezone=spec.timezone,
                    warmup_enabled=True,
                    tags=["demo"],
                    created_at=now - WARMED_FOR,
                )
                session.add(mailbox)
                mailboxes.append(mailbox)
        await session.flush()
        # Their warmup began two months ago: the ramp is at its ceiling.
        for row in (await warmup_store.settings_of(session, mailboxes, now)).values():
            row.started_on = (now - WARMED_FOR).date()
        campaign = store_commands.campaign_from_spec(workspace.id, spec, now)
        campaign.status = CampaignStatus.ACTIVE
        campaign.started_at = now
        session.add(campaign)
        await session.flush()
        imported = await store_commands.store_leads(
            session, workspace.id, parsed.leads, now, source=str(leads_path)
        )
        problems.extend(imported.skipped)
        await store_commands.enroll(session, campaign, imported.lead_ids, now)
    return len(mailboxes), len(imported.lead_ids), problems


async def _summarise(
    db: Database,
    days: int,
    start: datetime,
    end: datetime,
    mailboxes: int,
    leads: int,
    errors: list[str],
    delivered: int,
) -> DemoSummary:
    async with db.session() as session:
        workspace = (
            await session.scalars(select(Workspace).where(Workspace.slug == WORKSPACE))
        ).one()
        sent = (
            await session.execute(
                select(Send, Mailbox.address)
                .join(Mailbox, Mailbox.id == Send.mailbox_id)
                .where(
                    Send.workspace_id == workspace.id,
                    Send.kind == SendKind.COLD,
                    Send.status == SendStatus.SENT,
                )
            )
        ).all()
        first_ids = {s.enrollment_id: s.message_id for s, _ in sent if s.step_position == 1}
        by_step: dict[str, int] = {}
        by_mailbox: dict[str, int] = {}
        per_enrollment_step: dict[tuple[int | None, int | None], int] = {}
        threaded = unthreaded = 0
        for send, address in sent:
            by_step[str(send.step_position)] = by_step.get(str(send.step_position), 0) + 1
            by_mailbox[address] = by_mailbox.get(address, 0) + 1
            key = (send.enrollment_id, send.step_position)
            per_enrollment_step[key] = per_enrollment_step.get(key, 0) + 1
            if (send.step_position or 0) > 1:
                if send.in_reply_to and send.in_reply_to == first_ids.get(send.enrollment_id):
                    threaded += 1
                else:
                    unthreaded += 1
    return DemoSummary(
        days=days,
        started_at=start.isoformat(),
        ended_at=end.isoformat(),
        mailboxes=mailboxes,
        leads=leads,
        sends=len(sent),
        sends_by_step=dict(sorted(by_step.items())),
        sends_by_mailbox=dict(sorted(by_mailbox.items())),
        follow_ups_threaded=threaded,
        follow_ups_unthreaded=unthreaded,
        leads_with_step1_once=sum(
            1 for (_, step), n in per_enrollment_step.items() if step == 1 and n == 1
        ),
        duplicate_sends=sum(n - 1 for n in per_enrollment_step.values() if n > 1),
        delivered_to_prospects=delivered,
        errors=errors,
    )


async def _summarise_inbox(db: Database, summary: DemoSummary) -> None:
    async with db.session() as session:
        workspace = await repo.workspace_by_slug(session, WORKSPACE)
        assert workspace is not None
        counts = await inbound_counts(session, workspace.id)
    summary.replies = counts.get("reply", 0)
    summary.auto_replies = counts.get("auto_reply", 0)
    summary.bounces = counts.get("bounce", 0)
    summary.hard_bounces = counts.get("hard_bounce", 0)
    summary.unsubscribes = counts.get("unsubscribe", 0)
    summary.answers_in_junk = counts.get("in_junk", 0)


async def _summarise_warmup(db: Database, summary: DemoSummary, received: ReceiverReport) -> None:
    async with db.session() as session:
        rows = await session.execute(
            select(Mailbox.address, func.count(Send.id))
            .join(Send, Send.mailbox_id == Mailbox.id)
            .where(Send.kind == SendKind.WARMUP, Send.status == SendStatus.SENT)
            .group_by(Mailbox.address)
            .order_by(Mailbox.address)
        )
        summary.warmup_by_mailbox = {str(address): int(n) for address, n in rows.all()}
        summary.warmup_replies = int(
            await session.scalar(
                select(func.count())
                .select_from(WarmupMessage)
                .join(Send, Send.id == WarmupMessage.send_id)
                .where(WarmupMessage.origin == "reply", Send.status == SendStatus.SENT)
            )
            or 0
        )
    summary.warmup_sent = sum(summary.warmup_by_mailbox.values())
    summary.warmup_found_in_inbox = received.inbox
    summary.warmup_rescued_from_junk = received.rescued


async def run_demo(
    settings: Settings,
    *,
    days: int,
    today: date,
    lead_count: int = 100,
    leads_file: Path | None = None,
    campaign_file: Path | None = None,
    progress: Callable[[datetime, datetime, datetime, TickReport], None] | None = None,
) -> DemoSummary:
    """Build the simulated world, run the campaign for ``days`` virtual days, summarise."""
    if days < 1:
        raise DemoError("--days must be at least 1")
    home = settings.ensure_home()
    demo_dir = home / "demo"
    demo_dir.mkdir(exist_ok=True)
    if campaign_file is not None:
        spec = load_campaign(campaign_file)
    else:
        spec = parse_campaign(
            yaml.safe_load(DEMO_CAMPAIGN), source="embedded demo campaign", extra_fields={"team"}
        )
    if leads_file is None:
        leads_file = demo_dir / "leads.csv"
        leads_file.write_text(generate_leads_csv(lead_count), encoding="utf-8")
    elif not leads_file.is_file():
        raise DemoError(f"{leads_file}: no such lead file")
    box = SecretBox.from_key_file(
        settings.resolved_key_file,
        settings.secret_key.get_secret_value() if settings.secret_key else None,
    )
    start = _start_of_demo(today)
    end = start + timedelta(days=days)
    clock = VirtualClock(start)
    db = Database(settings.resolved_database_url)
    try:
        await db.migrate()
        await _reset(db)
        async with await start_sandbox(clock, demo_dir / "sandbox") as sandbox:
            mailboxes, leads, problems = await _build_world(
                db, sandbox, box, spec, leads_file, start
            )
            warmup = WarmupConfig(seed=1)
            engine = Engine(
                db,
                clock,
                box,
                public_url=settings.public_url,
                unsubscribe_key=box.derive("unsubscribe-links"),
                seed=1,
                warmup=warmup,
            )
            errors: list[str] = list(problems)
            inbox = InboxSync(db, clock, engine.credentials, seed=1)
            receiver = WarmupReceiver(db, clock, engine.credentials, config=warmup)
            received = ReceiverReport()

            async def between_passes() -> None:
                # The prospects' answers that are due are filed, the peers read their warmup.
                sandbox.release_answers(clock.now())
                received.merge(await receiver.run_once())

            try:

                def on_tick(report: TickReport) -> None:
                    errors.extend(report.errors)
                    if progress is not None:
                        progress(start, end, clock.now(), report)

                # Sending and the inbox sync take turns on the virtual clock; the
                # prospects' answers that are due are filed before each sync.
                synced = await run_with_sending(
                    engine, inbox, end, before_sync=between_passes, progress=on_tick
                )
                errors.extend(synced.errors)
                errors.extend(received.errors)
            finally:
                await receiver.close()
                await inbox.close()
                await engine.close()
            delivered = sandbox.prospects.count()
        summary = await _summarise(db, days, start, end, mailboxes, leads, errors, delivered)
        await _summarise_inbox(db, summary)
        await _summarise_warmup(db, summary, received)
        return summary
    finally:
        await db.close()
