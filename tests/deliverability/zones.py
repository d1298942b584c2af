"""Fixture zones: good and broken sending domains, as the loopback DNS server serves them."""

from mailfleet.sandbox.dns import ZoneRecord, Zones, sandbox_domain_zone


def fixture_zones() -> Zones:
    zones = Zones()
    zones.add(sandbox_domain_zone("good365.com", "microsoft365", tenant="contoso"))
    zones.add(sandbox_domain_zone("goodgoogle.com", "google"))
    zones.add(sandbox_domain_zone("syntax-spf.com", "google", broken=["spf"]))
    zones.add(sandbox_domain_zone("nodkim.com", "google", omit=["dkim"]))
    zones.add(sandbox_domain_zone("nomx.com", "microsoft365", tenant="contoso", omit=["mx"]))
    zones.add(sandbox_domain_zone("nodmarc.com", "google", omit=["dmarc"]))
    zones.add(sandbox_domain_zone("monitor.com", "google", broken=["dmarc"]))
    # Microsoft 365 CNAMEs published, but DKIM never turned on: the targets do not exist.
    zones.add(
        sandbox_domain_zone("dkimoff365.com", "microsoft365", tenant="contoso", broken=["dkim"])
    )
    zones.add(sandbox_domain_zone("nullmx.com", "google", omit=["mx"]))
    zones.add([ZoneRecord("nullmx.com", "MX", "0 .")])
    # SPF without the provider, but valid; and an SPF that reaches Google through a nested include.
    zones.add(sandbox_domain_zone("noinclude.com", "google", omit=["spf"]))
    zones.add([ZoneRecord("noinclude.com", "TXT", "v=spf1 ip4:192.0.2.1 -all")])
    zones.add(sandbox_domain_zone("nested.com", "google", omit=["spf"]))
    zones.add(
        [
            ZoneRecord("nested.com", "TXT", "v=spf1 include:_spf.nested.com ~all"),
            ZoneRecord("_spf.nested.com", "TXT", "v=spf1 include:_spf.google.com ~all"),
        ]
    )
    # Two SPF records; two DMARC records.
    zones.add(sandbox_domain_zone("twospf.com", "google", omit=["spf"]))
    zones.add(
        [
            ZoneRecord("twospf.com", "TXT", "v=spf1 include:_spf.google.com -all"),
            ZoneRecord("twospf.com", "TXT", "v=spf1 ip4:192.0.2.1 -all"),
        ]
    )
    zones.add(sandbox_domain_zone("twodmarc.com", "google", omit=["dmarc"]))
    zones.add(
        [
            ZoneRecord("_dmarc.twodmarc.com", "TXT", "v=DMARC1; p=none"),
            ZoneRecord("_dmarc.twodmarc.com", "TXT", "v=DMARC1; p=reject"),
        ]
    )
    # An include loop, and 11 includes (one lookup each, over the limit of 10).
    zones.add(sandbox_domain_zone("loop.com", "google", omit=["spf"]))
    zones.add(
        [
            ZoneRecord("loop.com", "TXT", "v=spf1 include:_spf.google.com include:a.loop.com -all"),
            ZoneRecord("a.loop.com", "TXT", "v=spf1 include:b.loop.com -all"),
            ZoneRecord("b.loop.com", "TXT", "v=spf1 include:a.loop.com -all"),
        ]
    )
    zones.add(sandbox_domain_zone("manylookups.com", "google", omit=["spf"]))
    includes = " ".join(f"include:i{n}.manylookups.com" for n in range(11))
    zones.add(
        [ZoneRecord("manylookups.com", "TXT", f"v=spf1 include:_spf.google.com {includes} -all")]
    )
    zones.add(
        ZoneRecord(f"i{n}.manylookups.com", "TXT", f"v=spf1 ip4:192.0.2.{n} -all")
        for n in range(11)
    )
    # A domain whose nameserver never answers, and one that answers SERVFAIL.
    zones.add(sandbox_domain_zone("slow.com", "google"))
    zones.timeout.update({"slow.com", "_dmarc.slow.com", "google._domainkey.slow.com"})
    zones.add(sandbox_domain_zone("broken.com", "google"))
    zones.servfail.update({"broken.com", "_dmarc.broken.com", "google._domainkey.broken.com"})
    return zones
