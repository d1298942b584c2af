"""DNS checks of a sending domain: MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT.

:func:`evaluate_dns` is pure: it turns what the DNS said (a
:class:`~mailfleet.transport.dns.DomainDns`) into findings.
:func:`mailfleet.engine.dns_checks.check_domain` does the lookups and calls it.
"""

from __future__ import annotations

import re

from mailfleet.deliverability.dns_records import (
    MAX_SPF_LOOKUPS,
    dkim_fix,
    dmarc_fix,
    expected_mx,
    mx_matches,
    spf_value,
    txt,
)
from mailfleet.deliverability.findings import Finding, Severity, passed, problem
from mailfleet.providers import ProviderPreset
from mailfleet.transport.dns import (
    Answer,
    DmarcResult,
    DomainDns,
    LookupStatus,
    SpfResult,
)

_DNS_TROUBLE = ("timed out", "lifetime expired", "servfail", "nameservers failed", "no nameservers")
_ALL = re.compile(r"(?:^|\s)([+?~-]?)all(?:\s|$)", re.IGNORECASE)


def evaluate_dns(
    dns: DomainDns, preset: ProviderPreset, *, tenant: str | None = None
) -> tuple[Finding, ...]:
    """Every finding for one domain's DNS (pure)."""
    return (
        *check_mx(dns.domain, dns.mx, preset),
        *check_spf(dns.domain, dns.spf, preset),
        *check_dkim(dns, preset, tenant),
        *check_dmarc(dns.domain, dns.dmarc),
        check_mta_sts(dns.domain, dns.mta_sts),
        check_tls_rpt(dns.domain, dns.tls_rpt),
    )


def _dns_trouble(error: str | None) -> bool:
    """True when checkdmarc's error is the DNS failing, not the record being wrong."""
    return error is not None and any(t in error.lower() for t in _DNS_TROUBLE)


def _unanswered(domain: str, check: str, error: str, fix: str) -> Finding:
    found = f"lookup failed: {error}"
    fix = f"make the domain's nameservers answer, then publish: {fix}"
    return problem(domain, check, Severity.ERROR, found, fix)


def _lookup_failed(domain: str, check: str, answer: Answer, fix: str) -> Finding:
    return problem(
        domain,
        check,
        Severity.ERROR,
        answer.describe(),
        f"make the domain's nameservers answer ({answer.status}), then publish: {fix}",
    )


def check_mx(domain: str, mx: Answer, preset: ProviderPreset) -> list[Finding]:
    """MX present, not a null MX, and pointing at the provider."""
    fix = expected_mx(domain, preset)
    if mx.failed:
        return [_lookup_failed(domain, "mx", mx, fix)]
    if mx.status is not LookupStatus.OK or not mx.records:
        why = mx.describe() + ": replies and bounces to this domain cannot be delivered"
        return [problem(domain, "mx", Severity.ERROR, why, fix)]
    hosts = [r.partition(" ")[2].strip().rstrip(".") for r in mx.records]
    if hosts == [""] or hosts == ["."]:
        found = f"null MX ({mx.describe()}): the domain refuses all mail, replies bounce"
        return [problem(domain, "mx", Severity.ERROR, found, fix)]
    if not any(mx_matches(h, preset) for h in hosts):
        found = f"{mx.describe()} — not {preset.title}'s mail servers; replies go elsewhere"
        return [problem(domain, "mx", Severity.WARNING, found, fix)]
    return [passed(domain, "mx", mx.describe())]


def check_spf(domain: str, spf: SpfResult, preset: ProviderPreset) -> list[Finding]:
    """SPF present, one record, valid, within 10 lookups, including the provider."""
    fix = txt(domain, spf_value(preset))
    error = spf.error or ""
    if _dns_trouble(spf.error):
        return [_unanswered(domain, "spf", error, fix)]
    if spf.record is None:
        if "multiple" in error.lower():
            found = f"{error}: receivers treat two SPF records as a permanent error"
            return [problem(domain, "spf", Severity.ERROR, found, f"keep only one: {fix}")]
        return [problem(domain, "spf", Severity.ERROR, error or "no SPF record", fix)]
    lookups = spf.dns_lookups
    too_many = (lookups is not None and lookups > MAX_SPF_LOOKUPS) or "too many" in error.lower()
    if too_many:
        count = f"{lookups} DNS lookups" if lookups is not None else error
        found = f"{spf.record} — {count}, over the limit of {MAX_SPF_LOOKUPS} (permerror)"
        return [problem(domain, "spf", Severity.ERROR, found, f"remove includes: {fix}")]
    if not spf.valid:
        found = f"{spf.record} — {error or 'invalid'}"
        return [problem(domain, "spf", Severity.ERROR, found, fix)]
    findings: list[Finding] = []
    include = preset.spf_include
    if include and include.lower() not in spf.includes:
        found = f"{spf.record} — does not include {include}: {preset.title} mail fails SPF"
        amended = txt(domain, spf_value(preset, spf.record))
        findings.append(problem(domain, "spf", Severity.ERROR, found, amended))
    qualifier = _ALL.search(spf.record)
    redirected = "redirect=" in spf.record.lower()
    lenient = qualifier is not None and qualifier.group(1) in ("+", "?", "")  # "" means "+"
    if (qualifier is None and not redirected) or lenient:
        ending = "no 'all'" if qualifier is None else f"'{qualifier.group(0).strip()}'"
        found = f"{spf.record} — ends with {ending}: mail from any server is not failed"
        findings.append(problem(domain, "spf", Severity.WARNING, found, fix))
    if not findings:
        used = lookups or 0
        plural = "" if used == 1 else "s"
        findings.append(passed(domain, "spf", f"{spf.record} ({used} DNS lookup{plural})"))
    return findings


def check_dkim(dns: DomainDns, preset: ProviderPreset, tenant: str | None) -> list[Finding]:
    """A DKIM key published under every selector (CNAMEs for Microsoft 365)."""
    domain = dns.domain
    if not dns.dkim_txt:
        found = f"no DKIM selector known for {preset.title}"
        fix = "name the selectors your provider signs with (--selector NAME)"
        return [problem(domain, "dkim", Severity.WARNING, found, fix)]
    findings = []
    for selector, key in dns.dkim_txt.items():
        fix = dkim_fix(domain, selector, preset, tenant)
        cname = dns.dkim_cname.get(selector)
        cname_missing = cname is not None and cname.status is LookupStatus.NODATA
        cname_missing = cname_missing or (
            cname is not None and cname.status is LookupStatus.NXDOMAIN
        )
        if preset.dkim_publish == "cname" and cname_missing:
            found = f"no CNAME at {selector}._domainkey.{domain}"
            findings.append(problem(domain, "dkim", Severity.ERROR, found, fix))
            continue
        if key.failed:
            findings.append(_lookup_failed(domain, "dkim", key, fix))
            continue
        record = next((r for r in key.records if "p=" in r or r.startswith("v=DKIM1")), None)
        if key.status is not LookupStatus.OK or record is None:
            where = f" (CNAME to {cname.records[0]})" if cname and cname.records else ""
            found = f"no DKIM key at {selector}._domainkey.{domain}{where}"
            findings.append(problem(domain, "dkim", Severity.ERROR, found, fix))
            continue
        key_value = re.search(r"(?:^|;)\s*p=([^;]*)", record)
        if key_value is None or not key_value.group(1).strip():
            found = f"{selector}: empty public key (p=): the key is revoked"
            findings.append(problem(domain, "dkim", Severity.ERROR, found, fix))
            continue
        via = f" via {key.canonical_name}" if key.canonical_name else ""
        findings.append(passed(domain, "dkim", f"{selector}: key published{via}"))
    return findings


def check_dmarc(domain: str, dmarc: DmarcResult) -> list[Finding]:
    """One valid DMARC record, its policy and alignment."""
    fix = dmarc_fix(domain)
    if _dns_trouble(dmarc.error):
        return [_unanswered(domain, "dmarc", dmarc.error or "", fix)]
    if dmarc.record is None or not dmarc.valid:
        found = dmarc.error or "no DMARC record"
        if dmarc.record:
            found = f"{dmarc.record} — {found}"
        if "multiple" in found.lower():
            fix = f"keep only one: {fix}"
        return [problem(domain, "dmarc", Severity.ERROR, found, fix)]
    tags = dmarc.tags
    policy = tags.get("p", "none")
    alignment = f"dkim {_mode(tags.get('adkim'))}, spf {_mode(tags.get('aspf'))}"
    where = f" (inherited from {dmarc.location})" if dmarc.location not in (None, domain) else ""
    summary = f"{dmarc.record}{where} — policy {policy}, alignment {alignment}"
    findings = []
    if policy == "none":
        found = f"{summary}: monitoring only, receivers do not act on failures"
        findings.append(problem(domain, "dmarc", Severity.WARNING, found, fix))
    if tags.get("pct", "100") != "100":
        found = f"{summary}: applies to {tags['pct']} % of mail only"
        findings.append(problem(domain, "dmarc", Severity.WARNING, found, fix))
    if not tags.get("rua"):
        found = f"{summary}: no rua, so no aggregate reports"
        findings.append(problem(domain, "dmarc", Severity.WARNING, found, fix))
    return findings or [passed(domain, "dmarc", summary)]


def _mode(value: str | None) -> str:
    return "strict" if value == "s" else "relaxed"


def check_mta_sts(domain: str, answer: Answer) -> Finding:
    """MTA-STS is optional: missing is information, a malformed record a warning."""
    fix = (
        txt(f"_mta-sts.{domain}", "v=STSv1; id=1")
        + f" and serve https://mta-sts.{domain}/.well-known/mta-sts.txt"
    )
    return _optional(domain, "mta-sts", answer, "v=STSv1", fix)


def check_tls_rpt(domain: str, answer: Answer) -> Finding:
    """TLS-RPT is optional: missing is information, a malformed record a warning."""
    fix = txt(f"_smtp._tls.{domain}", f"v=TLSRPTv1; rua=mailto:tls-reports@{domain}")
    return _optional(domain, "tls-rpt", answer, "v=TLSRPTv1", fix)


def _optional(domain: str, check: str, answer: Answer, version: str, fix: str) -> Finding:
    if answer.status is LookupStatus.OK:
        good = [r for r in answer.records if r.replace(" ", "").startswith(version + ";")]
        if len(good) == 1:
            return passed(domain, check, good[0])
        found = f"{answer.describe()} — expected one record starting {version};"
        return problem(domain, check, Severity.WARNING, found, fix)
    return problem(domain, check, Severity.INFO, f"not published ({answer.describe()})", fix)
