"""Domain blocklists (DNS-based): what each return code means, and the check per domain.

A listed domain answers ``A 127.0.x.y`` under the list's zone; a clean one is
NXDOMAIN. Lists also answer codes that mean *we did not look*: Spamhaus's
127.255.255.252–255 (typo, public/open resolver, over the free limit) and URIBL's
and SURBL's 127.0.0.1 (query refused, usually through a public resolver). Those,
and timeouts or SERVFAIL, are ``unknown`` — never ``listed`` and never ``clean``.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from mailfleet.deliverability.findings import Finding, Severity, passed, problem
from mailfleet.transport.dns import Answer, LookupStatus

DEFAULT_BLOCKLISTS = ("dbl.spamhaus.org", "multi.uribl.com", "multi.surbl.org")
DEFAULT_TTL = timedelta(hours=6)

SPAMHAUS_DBL = {
    "127.0.1.2": "spam domain",
    "127.0.1.4": "phishing domain",
    "127.0.1.5": "malware domain",
    "127.0.1.6": "botnet C&C domain",
    "127.0.1.102": "abused legit spam",
    "127.0.1.103": "abused spammed redirector",
    "127.0.1.104": "abused legit phish",
    "127.0.1.105": "abused legit malware",
    "127.0.1.106": "abused legit botnet C&C",
}
SPAMHAUS_REFUSED = {
    "127.255.255.252": "typo in the list name",
    "127.255.255.254": "query through a public/open resolver: Spamhaus does not answer those",
    "127.255.255.255": "over the free query limit",
}
URIBL_BITS = {2: "black", 4: "grey", 8: "red", 16: "gold"}
SURBL_BITS = {8: "phishing", 16: "malware", 64: "abuse", 128: "cracked"}


class ListingStatus(enum.StrEnum):
    """What a blocklist said about a domain."""

    LISTED = "listed"
    CLEAN = "clean"
    UNKNOWN = "unknown"  # refused, timed out, or an answer that means nothing


@dataclass(frozen=True, slots=True)
class Listing:
    """One domain on one list."""

    domain: str
    zone: str
    status: ListingStatus
    reason: str
    checked_at: datetime


def interpret(domain: str, zone: str, answer: Answer, now: datetime) -> Listing:
    """Read a blocklist answer (pure)."""
    if answer.status in (LookupStatus.NXDOMAIN, LookupStatus.NODATA):
        return Listing(domain, zone, ListingStatus.CLEAN, "not listed", now)
    if answer.status is not LookupStatus.OK:
        return Listing(domain, zone, ListingStatus.UNKNOWN, answer.describe(), now)
    reasons: list[str] = []
    unknown: list[str] = []
    for code in answer.records:
        meaning = _meaning(zone, code)
        (unknown if meaning.startswith("?") else reasons).append(meaning.lstrip("?"))
    if reasons:
        return Listing(domain, zone, ListingStatus.LISTED, "; ".join(reasons), now)
    return Listing(domain, zone, ListingStatus.UNKNOWN, "; ".join(unknown), now)


def _meaning(zone: str, code: str) -> str:
    """What ``code`` means on ``zone``; a leading ``?`` marks an answer that is not a listing."""
    try:
        address = ipaddress.IPv4Address(code)
    except ValueError:
        return f"?answer {code!r} is not an address"
    if not address.is_loopback:
        return f"?answer {code} is outside 127.0.0.0/8 (a resolver rewriting NXDOMAIN?)"
    if zone.endswith("spamhaus.org"):
        if code in SPAMHAUS_REFUSED:
            return f"?{code}: {SPAMHAUS_REFUSED[code]}"
        return SPAMHAUS_DBL.get(code, f"listed ({code})")
    last = int(code.rsplit(".", 1)[1])
    if code == "127.0.0.1":
        return "?127.0.0.1: query refused (public resolver or blocked querier)"
    bits = URIBL_BITS if "uribl" in zone else SURBL_BITS if "surbl" in zone else {}
    names = [name for bit, name in bits.items() if last & bit]
    return f"listed ({code}: {', '.join(names)})" if names else f"listed ({code})"


def listing_finding(listing: Listing) -> Finding:
    """The finding for one listing."""
    found = f"{listing.zone}: {listing.reason}"
    if listing.status is ListingStatus.CLEAN:
        return passed(listing.domain, "blocklist", found)
    if listing.status is ListingStatus.UNKNOWN:
        fix = "query the list through your own recursive resolver (not 8.8.8.8/1.1.1.1)"
        return problem(listing.domain, "blocklist", Severity.WARNING, f"unknown — {found}", fix)
    fix = f"stop sending from {listing.domain}; request delisting at {listing.zone}'s lookup page"
    return problem(listing.domain, "blocklist", Severity.ERROR, f"listed — {found}", fix)


class ListingCache(Protocol):
    """Where listings are kept between runs (see :mod:`mailfleet.store.blocklist_cache`)."""

    def get(self, domain: str, zone: str, now: datetime) -> Listing | None:
        """A listing still fresh at ``now``, if any."""

    def put(self, listings: Sequence[Listing], ttl: timedelta) -> None:
        """Remember ``listings`` for ``ttl`` (unknown ones for less: they may clear up)."""
