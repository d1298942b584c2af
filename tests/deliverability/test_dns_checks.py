"""DNS checks against fixture zones on the loopback DNS server: each fault is a finding."""

import time

import pytest

from mailfleet.deliverability import DomainReport, Finding, Severity
from mailfleet.engine.dns_checks import check_domain
from mailfleet.sandbox.dns import SandboxDnsServer
from mailfleet.transport.dns import DnsResolver


def by_check(report: DomainReport, check: str) -> list[Finding]:
    return [f for f in report.findings if f.check == check]


def errors(report: DomainReport, check: str) -> list[Finding]:
    return [f for f in by_check(report, check) if f.severity is Severity.ERROR]


async def test_a_good_microsoft_365_domain_passes_every_gate_check(resolver: DnsResolver) -> None:
    report = await check_domain("good365.com", "microsoft365", resolver=resolver, tenant="contoso")
    assert report.failing == frozenset()
    assert not report.has_errors
    assert {f.check for f in report.findings if f.ok} >= {"mx", "spf", "dkim", "dmarc"}
    dkim = by_check(report, "dkim")
    assert [f.found.split(":")[0] for f in dkim] == ["selector1", "selector2"]
    assert "contoso.onmicrosoft.com" in dkim[0].found
    assert "include:spf.protection.outlook.com" in by_check(report, "spf")[0].found
    assert "policy quarantine" in by_check(report, "dmarc")[0].found
    assert "alignment dkim relaxed, spf relaxed" in by_check(report, "dmarc")[0].found
    # MTA-STS and TLS-RPT are optional: information with the record to publish.
    mta = by_check(report, "mta-sts")[0]
    assert (mta.ok, mta.severity) == (False, Severity.INFO)
    assert mta.fix.startswith('_mta-sts.good365.com TXT "v=STSv1;')


async def test_a_good_google_domain_passes_every_gate_check(resolver: DnsResolver) -> None:
    report = await check_domain("GoodGoogle.com.", "google", resolver=resolver)
    assert report.domain == "goodgoogle.com"
    assert report.failing == frozenset()
    assert "include:_spf.google.com" in by_check(report, "spf")[0].found
    assert by_check(report, "dkim")[0].found == "google: key published"


async def test_the_provider_decides_what_is_expected(resolver: DnsResolver) -> None:
    # A Google domain checked as Microsoft 365: SPF lacks the include, DKIM selectors absent.
    report = await check_domain("goodgoogle.com", "microsoft365", resolver=resolver)
    assert report.failing == {"spf", "dkim"}
    spf = errors(report, "spf")[0]
    assert "does not include spf.protection.outlook.com" in spf.found
    assert spf.fix == (
        'goodgoogle.com TXT "v=spf1 include:spf.protection.outlook.com '
        'include:_spf.google.com -all"'
    )
    dkim = errors(report, "dkim")[0]
    assert dkim.fix.startswith(
        "selector1._domainkey.goodgoogle.com CNAME "
        "selector1-goodgoogle-com._domainkey.<tenant>.onmicrosoft.com"
    )
    assert by_check(report, "mx")[0].severity is Severity.WARNING


async def test_spf_syntax_error_is_an_error_with_the_record_to_publish(
    resolver: DnsResolver,
) -> None:
    report = await check_domain("syntax-spf.com", "google", resolver=resolver)
    assert report.failing == {"spf"}
    spf = errors(report, "spf")[0]
    assert "ipv4 is not a valid SPF mechanism" in spf.found
    assert spf.fix == 'syntax-spf.com TXT "v=spf1 include:_spf.google.com -all"'


async def test_spf_include_loop_is_a_finding(resolver: DnsResolver) -> None:
    report = await check_domain("loop.com", "google", resolver=resolver)
    assert report.failing == {"spf"}
    assert "loop" in errors(report, "spf")[0].found.lower()


async def test_spf_over_ten_lookups_is_an_error(resolver: DnsResolver) -> None:
    report = await check_domain("manylookups.com", "google", resolver=resolver)
    assert report.failing == {"spf"}
    spf = errors(report, "spf")[0]
    assert "over the limit of 10" in spf.found
    assert "12 DNS lookups" in spf.found or "too many" in spf.found.lower()


async def test_two_spf_records_are_an_error(resolver: DnsResolver) -> None:
    report = await check_domain("twospf.com", "google", resolver=resolver)
    spf = errors(report, "spf")[0]
    assert "multiple SPF" in spf.found
    assert spf.fix.startswith("keep only one: twospf.com TXT")


async def test_spf_without_the_provider_include_gives_the_amended_record(
    resolver: DnsResolver,
) -> None:
    report = await check_domain("noinclude.com", "google", resolver=resolver)
    spf = errors(report, "spf")[0]
    assert spf.fix == 'noinclude.com TXT "v=spf1 include:_spf.google.com ip4:192.0.2.1 -all"'


async def test_a_nested_provider_include_counts(resolver: DnsResolver) -> None:
    report = await check_domain("nested.com", "google", resolver=resolver)
    assert "spf" not in report.failing
    assert by_check(report, "spf")[0].found.endswith("(2 DNS lookups)")


async def test_multiple_dmarc_records_are_an_error(resolver: DnsResolver) -> None:
    report = await check_domain("twodmarc.com", "google", resolver=resolver)
    assert report.failing == {"dmarc"}
    dmarc = errors(report, "dmarc")[0]
    assert "Multiple DMARC" in dmarc.found
    assert dmarc.fix == (
        'keep only one: _dmarc.twodmarc.com TXT "v=DMARC1; p=quarantine; '
        'rua=mailto:dmarc@twodmarc.com; adkim=r; aspf=r"'
    )


async def test_missing_dmarc_is_an_error_and_p_none_a_warning(resolver: DnsResolver) -> None:
    missing = await check_domain("nodmarc.com", "google", resolver=resolver)
    assert missing.failing == {"dmarc"}
    monitor = await check_domain("monitor.com", "google", resolver=resolver)
    assert monitor.failing == frozenset()
    warning = by_check(monitor, "dmarc")[0]
    assert warning.severity is Severity.WARNING
    assert "policy none" in warning.found


async def test_missing_dkim_is_an_error(resolver: DnsResolver) -> None:
    report = await check_domain("nodkim.com", "google", resolver=resolver)
    assert report.failing == {"dkim"}
    dkim = errors(report, "dkim")[0]
    assert dkim.found == "no DKIM key at google._domainkey.nodkim.com"
    assert dkim.fix.startswith('google._domainkey.nodkim.com TXT "v=DKIM1; k=rsa; p=<public key')


async def test_microsoft_cnames_without_signing_turned_on(resolver: DnsResolver) -> None:
    report = await check_domain("dkimoff365.com", "microsoft365", resolver=resolver)
    dkim = errors(report, "dkim")
    assert len(dkim) == 2
    assert "(CNAME to selector1-dkimoff365-com._domainkey.contoso.onmicrosoft.com)" in dkim[0].found
    assert "Set-DkimSigningConfig -Identity dkimoff365.com -Enabled $true" in dkim[0].fix


async def test_configured_selectors_replace_the_provider_ones(resolver: DnsResolver) -> None:
    report = await check_domain("goodgoogle.com", "google", resolver=resolver, selectors=["s1"])
    assert errors(report, "dkim")[0].found == "no DKIM key at s1._domainkey.goodgoogle.com"


async def test_no_mx_and_null_mx_are_errors(resolver: DnsResolver) -> None:
    report = await check_domain("nomx.com", "microsoft365", resolver=resolver)
    assert report.failing == {"mx"}
    assert errors(report, "mx")[0].fix == "nomx.com MX 0 nomx-com.mail.protection.outlook.com"
    null = await check_domain("nullmx.com", "google", resolver=resolver)
    assert "null MX" in errors(null, "mx")[0].found


async def test_a_server_that_times_out_is_a_finding_within_the_budget(
    dns_server: SandboxDnsServer,
) -> None:
    resolver = DnsResolver(dns_server.address, timeout=1.0)
    started = time.monotonic()
    report = await check_domain("slow.com", "google", resolver=resolver)
    assert time.monotonic() - started < 6
    assert report.failing == {"mx", "spf", "dkim", "dmarc"}
    mx = errors(report, "mx")[0]
    assert "timeout" in mx.found
    assert mx.fix.startswith("make the domain's nameservers answer (timeout)")
    for check in ("spf", "dmarc"):
        assert errors(report, check)[0].found.startswith("lookup failed: ")
        assert errors(report, check)[0].fix.startswith("make the domain's nameservers answer")


async def test_servfail_is_a_finding(resolver: DnsResolver) -> None:
    report = await check_domain("broken.com", "google", resolver=resolver)
    assert report.failing == {"mx", "spf", "dkim", "dmarc"}
    assert "servfail" in errors(report, "mx")[0].found.lower()
    assert "SERVFAIL" in errors(report, "spf")[0].found


async def test_a_name_that_does_not_exist(resolver: DnsResolver) -> None:
    report = await check_domain("absent.com", "google", resolver=resolver)
    assert report.failing == {"mx", "spf", "dkim", "dmarc"}
    assert "NXDOMAIN" in errors(report, "mx")[0].found


@pytest.mark.parametrize("bad", ["", "not a domain", "-x.com", "a..b", "x" * 70 + ".com", "com"])
async def test_bad_domain_names_are_findings_not_crashes(resolver: DnsResolver, bad: str) -> None:
    report = await check_domain(bad, "google", resolver=resolver)
    assert report.failing == {"mx", "spf", "dkim", "dmarc"}
    assert "is not a domain name" in report.findings[0].found


async def test_an_unknown_provider_is_a_finding(resolver: DnsResolver) -> None:
    report = await check_domain("good365.com", "yahoo", resolver=resolver)
    assert report.has_errors
    assert "unknown provider 'yahoo'" in report.findings[0].found
