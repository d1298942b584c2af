"""Register the emulated Microsoft 365 world's mailboxes in the data folder.

``mailfleet sandbox`` starts the sandbox on fixed loopback ports and calls
:func:`register`: the mailboxes (``rep1@sandbox-1.example`` …, two per sending domain,
the domains spread over two tenants so warmup crosses tenants) are written once, with
their endpoints, OAuth app credentials (sealed) and the sandbox's CA file, and on a
later start only brought up to date. The same rows are then registered in the running
sandbox, so ``mailfleet run`` sends to it exactly as to real servers.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from mailfleet.sandbox import Sandbox
from mailfleet.store import Database, Domain, Mailbox, Workspace
from mailfleet.store import warmup as warmup_store
from mailfleet.transport.secrets import SecretBox

TENANTS = ("sandbox-a.onmicrosoft.com", "sandbox-b.onmicrosoft.com")
CLIENT_ID = "mailfleet-sandbox-app"
PROSPECT_DOMAINS = tuple(f"prospect{i}.example" for i in range(1, 5))


@dataclass(frozen=True, slots=True)
class Registered:
    """The sandbox's mailboxes as the data folder now knows them."""

    workspace: str
    mailboxes: tuple[str, ...]
    added: int


def app_secret(folder: Path) -> str:
    """The sandbox app's client secret, kept in the folder so restarts reuse it."""
    path = folder / "app.json"
    if path.is_file():
        return str(json.loads(path.read_text(encoding="utf-8"))["client_secret"])
    value = secrets.token_urlsafe(24)
    path.write_text(json.dumps({"client_secret": value}), encoding="utf-8")
    path.chmod(0o600)
    return value


def _address(n: int) -> tuple[str, str, str]:
    """(address, domain, tenant) of the sandbox's n-th mailbox (1-based)."""
    domain_no = (n + 1) // 2
    domain = f"sandbox-{domain_no}.example"
    return f"rep{n}@{domain}", domain, TENANTS[(domain_no - 1) % len(TENANTS)]


async def register(
    db: Database,
    box: SecretBox,
    sandbox: Sandbox,
    secret: str,
    *,
    count: int,
    workspace_slug: str,
    at: datetime,
    aged_days: int,
) -> Registered:
    """Write (or refresh) ``count`` sandbox mailboxes and register them in ``sandbox``."""
    for tenant in TENANTS:
        sandbox.add_tenant(tenant)
        sandbox.register_app(tenant, CLIENT_ID, secret)
    for prospect in PROSPECT_DOMAINS:
        sandbox.add_prospect_domain(prospect)
    born = at - timedelta(days=aged_days)
    added = 0
    async with db.session() as session:
        ws = await session.scalar(select(Workspace).where(Workspace.slug == workspace_slug))
        if ws is None:
            ws = Workspace(slug=workspace_slug, name=workspace_slug, created_at=at)
            session.add(ws)
            await session.flush()
        domains = {
            d.name: d
            for d in (await session.scalars(select(Domain).where(Domain.workspace_id == ws.id)))
        }
        existing = {
            m.address: m
            for m in (await session.scalars(select(Mailbox).where(Mailbox.workspace_id == ws.id)))
        }
        fresh: list[Mailbox] = []
        for n in range(1, count + 1):
            address, domain_name, tenant = _address(n)
            domain = domains.get(domain_name)
            if domain is None:
                domain = Domain(
                    workspace_id=ws.id,
                    name=domain_name,
                    provider="microsoft365",
                    tenant=tenant,
                    created_at=born,
                )
                session.add(domain)
                await session.flush()
                domains[domain_name] = domain
            mailbox = existing.get(address)
            if mailbox is None:
                mailbox = Mailbox(
                    workspace_id=ws.id,
                    domain_id=domain.id,
                    address=address,
                    display_name=f"Rep {n}",
                    provider="microsoft365",
                    tenant=tenant,
                    auth_kind="oauth2_client",
                    client_id=CLIENT_ID,
                    ramp_start=born.date(),
                    timezone="UTC",
                    warmup_enabled=True,
                    tags=["sandbox"],
                    created_at=born,
                )
                session.add(mailbox)
                fresh.append(mailbox)
                existing[address] = mailbox
                added += 1
            _point_at(mailbox, sandbox, box, secret, tenant)
        await session.flush()
        for row in (await warmup_store.settings_of(session, fresh, at)).values():
            row.started_on = born.date()
        sandboxed = [m for m in existing.values() if m.smtp_host == sandbox.smtp_host and m.tenant]
        for mailbox in sandboxed:
            assert mailbox.tenant is not None
            sandbox.add_mailbox(mailbox.address, mailbox.tenant)
            sandbox.publish_domain(mailbox.address.rpartition("@")[2], tenant=mailbox.tenant)
        names = tuple(sorted(m.address for m in sandboxed))
    return Registered(workspace_slug, names, added)


def _point_at(mailbox: Mailbox, sandbox: Sandbox, box: SecretBox, secret: str, tenant: str) -> None:
    """The sandbox's endpoints and app credentials on a mailbox row."""
    mailbox.smtp_host, mailbox.smtp_port, mailbox.smtp_security = (
        sandbox.smtp_host,
        sandbox.smtp_port,
        "starttls",
    )
    mailbox.imap_host, mailbox.imap_port, mailbox.imap_security = (
        sandbox.imap_host,
        sandbox.imap_port,
        "tls",
    )
    mailbox.ca_file = str(sandbox.ca_file)
    mailbox.token_endpoint = sandbox.token_url(tenant)
    mailbox.secret = box.seal({"client_secret": secret})
