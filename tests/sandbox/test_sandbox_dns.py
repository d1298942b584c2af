"""The sandbox's authoritative DNS server: records, NXDOMAIN, faults, TCP, zone knobs."""

from collections.abc import Iterator

import dns.message
import dns.query
import dns.rcode
import pytest

from mailfleet.sandbox.dns import SandboxDnsServer, ZoneRecord, Zones, sandbox_domain_zone
from mailfleet.transport.dns import DnsResolver, LookupStatus, NameserverError, parse_nameserver

LONG = "v=spf1 " + " ".join(f"ip4:192.0.2.{n}" for n in range(40)) + " -all"


@pytest.fixture
def server() -> Iterator[SandboxDnsServer]:
    zones = Zones(
        [
            ZoneRecord("brand-mail.com", "A", "127.0.0.1"),
            ZoneRecord("brand-mail.com", "NS", "ns1.brand-mail.com"),
            ZoneRecord("brand-mail.com", "MX", "10 mx.brand-mail.com"),
            ZoneRecord("brand-mail.com", "TXT", LONG),
            ZoneRecord("www.brand-mail.com", "CNAME", "brand-mail.com"),
            ZoneRecord("a.b.deep.com", "A", "127.0.0.2"),
        ],
        servfail={"sick.com"},
        timeout={"mute.com"},
    )
    with SandboxDnsServer(zones) as running:
        yield running


async def test_records_of_each_type(server: SandboxDnsServer) -> None:
    resolver = DnsResolver(server.address, timeout=1)
    assert (await resolver.lookup("brand-mail.com", "A")).records == ("127.0.0.1",)
    assert (await resolver.lookup("brand-mail.com", "MX")).records == ("10 mx.brand-mail.com",)
    assert (await resolver.lookup("brand-mail.com", "NS")).records == ("ns1.brand-mail.com",)
    # TXT over 255 bytes is split into strings and joined back.
    assert (await resolver.lookup("brand-mail.com", "TXT")).records == (LONG,)
    www = await resolver.lookup("WWW.brand-mail.com", "A")
    assert www.records == ("127.0.0.1",)
    assert www.canonical_name == "brand-mail.com"


async def test_missing_names_types_and_faults(server: SandboxDnsServer) -> None:
    resolver = DnsResolver(server.address, timeout=0.5)
    assert (await resolver.lookup("nothing.com", "A")).status is LookupStatus.NXDOMAIN
    assert (await resolver.lookup("brand-mail.com", "CNAME")).status is LookupStatus.NODATA
    # An empty non-terminal exists: NOERROR with no records, not NXDOMAIN.
    assert (await resolver.lookup("b.deep.com", "A")).status is LookupStatus.NODATA
    assert (await resolver.lookup("sick.com", "A")).status is LookupStatus.SERVFAIL
    assert (await resolver.lookup("mute.com", "A")).status is LookupStatus.TIMEOUT


def test_tcp_answers_on_the_same_port(server: SandboxDnsServer) -> None:
    query = dns.message.make_query("brand-mail.com", "TXT")
    reply = dns.query.tcp(query, "127.0.0.1", port=server.port, timeout=2)
    assert reply.rcode() == dns.rcode.NOERROR
    assert b"".join(reply.answer[0][0].strings).decode() == LONG


def test_a_sandbox_domain_zone_follows_its_provider() -> None:
    records = sandbox_domain_zone("brand-mail.com", "microsoft365", tenant="contoso")
    as_text = {(r.name, r.rtype, r.value) for r in records}
    assert ("brand-mail.com", "MX", "10 brand-mail-com.mail.protection.outlook.com") in as_text
    assert ("brand-mail.com", "TXT", "v=spf1 include:spf.protection.outlook.com -all") in as_text
    assert (
        "selector1._domainkey.brand-mail.com",
        "CNAME",
        "selector1-brand-mail-com._domainkey.contoso.onmicrosoft.com",
    ) in as_text
    bare = sandbox_domain_zone("b.com", "google", omit=["mx", "spf", "dkim", "dmarc"])
    assert {r.rtype for r in bare if r.name == "b.com"} == {"A"}
    with pytest.raises(ValueError, match="unknown zone parts"):
        sandbox_domain_zone("b.com", "google", omit=["spff"])
    with pytest.raises(ValueError, match="type 'AAAA'"):
        ZoneRecord("b.com", "AAAA", "::1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("[::1]:53", ("::1", 53)),
        ("::1", ("::1", 53)),
    ],
)
def test_nameserver_values(text: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize("text", ["dns.google", "127.0.0.1:0", "127.0.0.1:x", "1.2.3.4:70000", ""])
def test_bad_nameserver_values_say_why(text: str) -> None:
    with pytest.raises(NameserverError, match="nameserver"):
        parse_nameserver(text)
