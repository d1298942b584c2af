"""Findings: what a deliverability check saw, how bad it is, and the exact fix."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

GATE_CHECKS = frozenset({"mx", "spf", "dkim", "dmarc"})


class Severity(enum.StrEnum):
    """How much a finding matters; ``error`` fails ``dns check`` and the launch gate."""

    INFO = "info"  # passing, or worth knowing
    WARNING = "warning"  # works, but costs deliverability
    ERROR = "error"  # mail will fail authentication or not arrive


@dataclass(frozen=True, slots=True)
class Finding:
    """One check of one domain: ``fix`` is the exact record to publish (or the action)."""

    domain: str
    check: str  # mx, spf, dkim, dmarc, mta-sts, tls-rpt, forwarding, blocklist
    ok: bool
    severity: Severity
    found: str
    fix: str = ""

    def as_json(self) -> dict[str, object]:
        """The JSON shape of ``mailfleet dns check --json``."""
        return {
            "domain": self.domain,
            "check": self.check,
            "ok": self.ok,
            "severity": str(self.severity),
            "found": self.found,
            "fix": self.fix,
        }


def passed(domain: str, check: str, found: str) -> Finding:
    """A passing finding."""
    return Finding(domain, check, True, Severity.INFO, found)


def problem(domain: str, check: str, severity: Severity, found: str, fix: str) -> Finding:
    """A failing finding with its fix."""
    return Finding(domain, check, False, severity, found, fix)


@dataclass(frozen=True, slots=True)
class DomainReport:
    """Every finding for one domain; ``failing`` names the gate checks with an error."""

    domain: str
    provider: str
    findings: tuple[Finding, ...] = field(default=())

    @property
    def failing(self) -> frozenset[str]:
        """Which of mx, spf, dkim, dmarc have an error-severity finding."""
        return frozenset(
            f.check
            for f in self.findings
            if f.severity is Severity.ERROR and f.check in GATE_CHECKS
        )

    @property
    def has_errors(self) -> bool:
        """True when any finding (gate check or not) is an error."""
        return any(f.severity is Severity.ERROR for f in self.findings)

    def with_findings(self, extra: tuple[Finding, ...]) -> DomainReport:
        """This report with more findings appended (forwarding, blocklists)."""
        return DomainReport(self.domain, self.provider, self.findings + extra)
