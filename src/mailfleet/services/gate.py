"""The pre-launch gate's facts: read from the store, then DNS looked up outside it.

:func:`gather` reads what :func:`mailfleet.readiness.assess` needs in one short read
session, closes it, and only then asks the :class:`~mailfleet.readiness.DomainChecker`
about each sending domain (concurrently; a lookup that raises is a finding, never a
crash): no network round trip ever holds a database transaction open.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from mailfleet.readiness import (
    DEFAULT_WARMUP_DAYS,
    DNS_CHECKS,
    DomainChecker,
    Finding,
    GateDomain,
    LaunchFacts,
    assess,
)
from mailfleet.store import Campaign, Database
from mailfleet.store.launch import gate_facts


async def check_domain(checker: DomainChecker, name: str, provider: str) -> GateDomain:
    """One domain's DNS verdict; a failed lookup is recorded as the domain's error."""
    try:
        failing = await checker.failing(name, provider)
    except Exception as exc:  # a resolver's timeout or SERVFAIL is a finding, not a crash
        return GateDomain(name, provider, (), f"{type(exc).__name__}: {exc}"[:300])
    known = tuple(c for c in DNS_CHECKS if c in set(failing))
    unknown = sorted(set(failing) - set(DNS_CHECKS))
    if unknown:
        return GateDomain(name, provider, known, f"unexpected check names {unknown}")
    return GateDomain(name, provider, known)


async def check_domains(facts: LaunchFacts, checker: DomainChecker | None) -> LaunchFacts:
    """``facts`` with every sending domain's DNS verdict (unchanged when no checker)."""
    if checker is None or facts.gate is None:
        return facts
    domains = facts.gate.domains
    checked = await asyncio.gather(*(check_domain(checker, d.name, d.provider) for d in domains))
    return replace(facts, gate=replace(facts.gate, domains=tuple(checked), dns_checked=True))


async def gather(
    db: Database,
    campaign_id: int,
    at: datetime,
    checker: DomainChecker | None,
    *,
    public_url: str | None = None,
    warmup_days: int = DEFAULT_WARMUP_DAYS,
) -> LaunchFacts:
    """The gate's facts for a campaign at ``at``: store read first, DNS after it closed."""
    async with db.session() as session:
        campaign = await session.scalar(
            select(Campaign).where(Campaign.id == campaign_id).options(selectinload(Campaign.steps))
        )
        if campaign is None:
            raise LookupError(f"no campaign with id {campaign_id}")
        facts = await gate_facts(
            session, campaign, at, warmup_days=warmup_days, public_url=public_url
        )
    return await check_domains(facts, checker)


async def findings(
    db: Database,
    campaign_id: int,
    at: datetime,
    checker: DomainChecker | None,
    *,
    public_url: str | None = None,
) -> list[Finding]:
    """Every launch check's findings for a campaign, errors first."""
    return assess(await gather(db, campaign_id, at, checker, public_url=public_url))
