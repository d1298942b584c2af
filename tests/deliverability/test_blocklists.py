"""Blocklist lookups on the loopback DNS server: listed, clean, refused codes, and the cache."""

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from mailfleet.clock import utc
from mailfleet.deliverability import ListingStatus, listing_finding
from mailfleet.deliverability.findings import Severity
from mailfleet.engine.dns_checks import check_blocklists
from mailfleet.sandbox.dns import SandboxDnsServer, ZoneRecord, Zones
from mailfleet.store.blocklist_cache import FileListingCache
from mailfleet.transport.dns import DnsResolver

NOW = utc(2026, 11, 27, 9, 0)
ZONES = ("dbl.spamhaus.org", "multi.uribl.com", "multi.surbl.org")


@pytest.fixture
def lists() -> Iterator[SandboxDnsServer]:
    zones = Zones(
        [
            ZoneRecord("spammy.com.dbl.spamhaus.org", "A", "127.0.1.2"),
            ZoneRecord("spammy.com.multi.uribl.com", "A", "127.0.0.2"),
            ZoneRecord("spammy.com.multi.surbl.org", "A", "127.0.0.24"),
            ZoneRecord("viapublic.com.dbl.spamhaus.org", "A", "127.255.255.254"),
            ZoneRecord("viapublic.com.multi.uribl.com", "A", "127.0.0.1"),
            ZoneRecord("viapublic.com.multi.surbl.org", "A", "10.0.0.1"),
        ]
    )
    zones.timeout.add("slowlist.com.multi.uribl.com")
    with SandboxDnsServer(zones) as server:
        yield server


def resolver_for(server: SandboxDnsServer, timeout: float = 3.0) -> DnsResolver:
    return DnsResolver(server.address, timeout=timeout)


async def test_a_listed_domain(lists: SandboxDnsServer) -> None:
    found = await check_blocklists("spammy.com", resolver=resolver_for(lists), now=NOW, zones=ZONES)
    assert [x.status for x in found] == [ListingStatus.LISTED] * 3
    assert found[0].reason == "spam domain"
    assert found[1].reason == "listed (127.0.0.2: black)"
    assert found[2].reason == "listed (127.0.0.24: phishing, malware)"
    finding = listing_finding(found[0])
    assert finding.severity is Severity.ERROR and finding.check == "blocklist"


async def test_a_clean_domain(lists: SandboxDnsServer) -> None:
    found = await check_blocklists("clean.com", resolver=resolver_for(lists), now=NOW, zones=ZONES)
    assert {x.status for x in found} == {ListingStatus.CLEAN}
    assert all(listing_finding(x).ok for x in found)


async def test_refused_and_meaningless_codes_are_unknown_not_listed(
    lists: SandboxDnsServer,
) -> None:
    found = await check_blocklists(
        "viapublic.com", resolver=resolver_for(lists), now=NOW, zones=ZONES
    )
    assert [x.status for x in found] == [ListingStatus.UNKNOWN] * 3
    assert "public/open resolver" in found[0].reason
    assert "query refused" in found[1].reason
    assert "outside 127.0.0.0/8" in found[2].reason
    assert listing_finding(found[0]).severity is Severity.WARNING


async def test_a_list_that_does_not_answer_is_unknown(lists: SandboxDnsServer) -> None:
    found = await check_blocklists(
        "slowlist.com", resolver=resolver_for(lists, 0.5), now=NOW, zones=("multi.uribl.com",)
    )
    assert found[0].status is ListingStatus.UNKNOWN
    assert "timeout" in found[0].reason


async def test_answers_are_cached_until_the_ttl(lists: SandboxDnsServer, tmp_path: Path) -> None:
    path = tmp_path / "blocklists.json"
    resolver = resolver_for(lists)
    zone = ("dbl.spamhaus.org",)
    first = await check_blocklists(
        "spammy.com", resolver=resolver, now=NOW, zones=zone, cache=FileListingCache(path)
    )
    assert first[0].status is ListingStatus.LISTED
    lists.zones.records.clear()  # the list drops the domain
    cached = await check_blocklists(
        "spammy.com",
        resolver=resolver,
        now=NOW + timedelta(hours=5),
        zones=zone,
        cache=FileListingCache(path),  # a new process reads the file
    )
    assert cached[0].status is ListingStatus.LISTED
    assert cached[0].checked_at == NOW
    expired = await check_blocklists(
        "spammy.com",
        resolver=resolver,
        now=NOW + timedelta(hours=7),
        zones=zone,
        cache=FileListingCache(path),
    )
    assert expired[0].status is ListingStatus.CLEAN


async def test_unknown_answers_are_kept_briefly(lists: SandboxDnsServer, tmp_path: Path) -> None:
    cache = FileListingCache(tmp_path / "b.json")
    zone = ("dbl.spamhaus.org",)
    resolver = resolver_for(lists)
    await check_blocklists("viapublic.com", resolver=resolver, now=NOW, zones=zone, cache=cache)
    later = NOW + timedelta(minutes=16)
    assert cache.get("viapublic.com", "dbl.spamhaus.org", later) is None
    assert cache.get("viapublic.com", "dbl.spamhaus.org", NOW + timedelta(minutes=14))


@pytest.mark.parametrize("content", ["", "{not json", "[1, 2]", '{"a|b": {"status": "weird"}}'])
async def test_a_damaged_cache_file_is_ignored_and_rewritten(
    lists: SandboxDnsServer, tmp_path: Path, content: str
) -> None:
    path = tmp_path / "blocklists.json"
    path.write_text(content, encoding="utf-8")
    cache = FileListingCache(path)
    found = await check_blocklists(
        "spammy.com", resolver=resolver_for(lists), now=NOW, zones=ZONES[:1], cache=cache
    )
    assert found[0].status is ListingStatus.LISTED
    assert json.loads(path.read_text())["spammy.com|dbl.spamhaus.org"]["status"] == "listed"
