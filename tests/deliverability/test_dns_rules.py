"""The pure rules behind the DNS checks, on hand-made answers."""

import pytest

from mailfleet.deliverability.dns_checks import check_dmarc, check_mta_sts, check_spf, check_tls_rpt
from mailfleet.deliverability.findings import Severity
from mailfleet.providers import GENERIC, GOOGLE_WORKSPACE
from mailfleet.transport.dns import Answer, DmarcResult, LookupStatus, SpfResult


def spf(record: str, includes: tuple[str, ...] = ("_spf.google.com",)) -> SpfResult:
    return SpfResult(record, True, None, 1, includes)


@pytest.mark.parametrize(
    ("record", "warned"),
    [
        ("v=spf1 include:_spf.google.com -all", False),
        ("v=spf1 include:_spf.google.com ~all", False),
        ("v=spf1 include:_spf.google.com +all", True),
        ("v=spf1 include:_spf.google.com all", True),
        ("v=spf1 include:_spf.google.com ?all", True),
        ("v=spf1 include:_spf.google.com", True),
        ("v=spf1 redirect=_spf.google.com", False),
    ],
)
def test_spf_that_does_not_fail_strangers_is_a_warning(record: str, warned: bool) -> None:
    findings = check_spf("b.com", spf(record), GOOGLE_WORKSPACE)
    assert any(f.severity is Severity.WARNING for f in findings) is warned
    assert not any(f.severity is Severity.ERROR for f in findings)


def test_generic_providers_need_no_include() -> None:
    [finding] = check_spf("b.com", spf("v=spf1 mx -all", ()), GENERIC)
    assert finding.ok


def dmarc(**tags: str) -> DmarcResult:
    record = "; ".join(f"{k}={v}" for k, v in tags.items())
    return DmarcResult(record, True, None, "b.com", {"v": "DMARC1", **tags})


def test_dmarc_policy_percentage_and_reports() -> None:
    [ok] = check_dmarc("b.com", dmarc(p="reject", rua="mailto:d@b.com", adkim="s"))
    assert ok.ok and "policy reject, alignment dkim strict, spf relaxed" in ok.found
    partial = check_dmarc("b.com", dmarc(p="quarantine", pct="20", rua="mailto:d@b.com"))
    assert [f.severity for f in partial] == [Severity.WARNING]
    assert "applies to 20 % of mail only" in partial[0].found
    blind = check_dmarc("b.com", dmarc(p="reject"))
    assert "no rua" in blind[0].found
    inherited = DmarcResult("v=DMARC1; p=reject", True, None, "b.com", {"p": "reject", "rua": "x"})
    assert "(inherited from b.com)" in check_dmarc("mail.b.com", inherited)[0].found


def test_optional_records_malformed_or_doubled_are_warnings() -> None:
    def txt(*records: str) -> Answer:
        return Answer("_mta-sts.b.com", "TXT", LookupStatus.OK, records)

    assert check_mta_sts("b.com", txt("v=STSv1; id=2026")).ok
    assert check_mta_sts("b.com", txt("v=STSv2; id=1")).severity is Severity.WARNING
    two = check_tls_rpt("b.com", txt("v=TLSRPTv1; rua=a", "v=TLSRPTv1; rua=b"))
    assert two.severity is Severity.WARNING and "expected one record" in two.found
