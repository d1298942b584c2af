"""Deliverability checks that look things up: DNS records and blocklists.

The lookups go through :mod:`mailfleet.transport.dns`; what the answers mean is
decided by the pure rules of :mod:`mailfleet.deliverability`. The CLI (``dns
check``), the pre-launch gate and the simulator call these.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from mailfleet.deliverability.blocklists import (
    DEFAULT_BLOCKLISTS,
    DEFAULT_TTL,
    Listing,
    ListingCache,
    interpret,
)
from mailfleet.deliverability.dns_checks import evaluate_dns
from mailfleet.deliverability.dns_records import normalize_domain
from mailfleet.deliverability.findings import DomainReport, Severity, problem
from mailfleet.providers import ProviderPreset, get_preset
from mailfleet.transport.dns import DnsResolver, gather_domain

__all__ = ["ResolverDomainChecker", "check_blocklists", "check_domain"]


async def check_domain(
    domain: str,
    provider: str | ProviderPreset,
    *,
    resolver: DnsResolver,
    selectors: tuple[str, ...] | list[str] | None = None,
    tenant: str | None = None,
) -> DomainReport:
    """Check ``domain``'s DNS for ``provider``; never raises for DNS trouble or bad names.

    ``report.failing`` is the set among {"mx", "spf", "dkim", "dmarc"} with an error.
    """
    try:
        preset = provider if isinstance(provider, ProviderPreset) else get_preset(provider)
    except KeyError as exc:
        finding = problem(domain, "provider", Severity.ERROR, str(exc.args[0]), "")
        return DomainReport(domain, str(provider), (finding,))
    name = normalize_domain(domain)
    if name is None:
        found = f"{domain!r} is not a domain name"
        findings = tuple(
            problem(domain, check, Severity.ERROR, found, "give a name like brand-mail.com")
            for check in ("mx", "spf", "dkim", "dmarc")
        )
        return DomainReport(domain, preset.name, findings)
    chosen = tuple(selectors) if selectors else preset.dkim_selectors
    dns = await gather_domain(resolver, name, chosen)
    return DomainReport(name, preset.name, evaluate_dns(dns, preset, tenant=tenant))


class ResolverDomainChecker:
    """The launch gate's :class:`~mailfleet.readiness.DomainChecker` over :func:`check_domain`."""

    def __init__(self, resolver: DnsResolver) -> None:
        self.resolver = resolver

    async def failing(self, domain: str, provider: str) -> tuple[str, ...]:
        """Names among ``mx``, ``spf``, ``dkim``, ``dmarc`` whose check has an error finding."""
        report = await check_domain(domain, provider, resolver=self.resolver)
        return tuple(sorted(report.failing))


async def check_blocklists(
    domain: str,
    *,
    resolver: DnsResolver,
    now: datetime,
    zones: Sequence[str] = DEFAULT_BLOCKLISTS,
    cache: ListingCache | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> list[Listing]:
    """Look ``domain`` up on every list, using fresh cached answers when there are."""
    listings: list[Listing] = []
    fresh: list[Listing] = []
    for zone in zones:
        cached = cache.get(domain, zone, now) if cache is not None else None
        if cached is not None:
            listings.append(cached)
            continue
        answer = await resolver.lookup(f"{domain}.{zone}", "A")
        listing = interpret(domain, zone, answer, now)
        listings.append(listing)
        fresh.append(listing)
    if cache is not None and fresh:
        cache.put(fresh, ttl)
    return listings
