"""Whether a campaign may start: checks over facts gathered from the store.

Pure: the CLI (or API) gathers a :class:`LaunchFacts` and calls :func:`assess`
with a list of checks; any ``error`` finding refuses the start, ``warning``
findings are shown. :data:`BASIC_CHECKS` is what exists today — mailboxes
selected and able to send, leads enrolled. The full pre-launch gate (DNS, SPF,
DKIM and DMARC of every sending domain, mailbox age and warmup days, bounce
health) is a later issue: it adds its facts to :class:`LaunchFacts` (or reads
them through its own gatherer) and its checks to :data:`LAUNCH_CHECKS`; nothing
else has to change.

The pre-launch gate (issue 8) is that: :class:`GateFacts` (gathered by
``mailfleet.services.gate.gather`` with a :class:`DomainChecker` for DNS) and
four checks — every selected mailbox connected and not paused, past its warmup
period, its domain passing MX/SPF/DKIM/DMARC, and the lead list validated.
``campaign start --force`` starts despite their errors and records them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from mailfleet.content.unsubscribe import public_url_problem

#: DNS checks the gate requires of every sending domain.
DNS_CHECKS = ("mx", "spf", "dkim", "dmarc")
DEFAULT_WARMUP_DAYS = 14


class DomainChecker(Protocol):
    """Looks a sending domain's DNS up; the names of the checks it fails (see DNS_CHECKS)."""

    async def failing(self, domain: str, provider: str) -> tuple[str, ...]:
        """Names among ``mx``, ``spf``, ``dkim``, ``dmarc`` that ``domain`` fails."""
        ...


@dataclass(frozen=True, slots=True)
class MailboxFacts:
    """One mailbox the campaign selects."""

    address: str
    status: str  # active, paused, disconnected
    active: bool  # may send now (active and not held)
    warmup_enabled: bool
    warmup_ratio: float  # 0: the ratio rule is off
    warmup_24h: int  # accepted warmup sends in the last 24 hours


@dataclass(frozen=True, slots=True)
class GateMailbox:
    """What the pre-launch gate knows of one selected mailbox."""

    address: str
    status: str  # active, paused, disconnected
    reason: str | None  # why it is paused or disconnected
    domain: str
    warmup_started: datetime  # its first warmup send, else when it was added
    rehearsal: bool = False  # the sandbox or a server on this machine: no real recipient


@dataclass(frozen=True, slots=True)
class GateDomain:
    """One sending domain of the selected mailboxes and what its DNS check found."""

    name: str
    provider: str
    failing: tuple[str, ...] = ()  # among DNS_CHECKS
    error: str | None = None  # the lookup itself failed (timeout, SERVFAIL, …)


@dataclass(frozen=True, slots=True)
class LeadCheck:
    """The latest validation of the campaign's lead list (``leads import``)."""

    validated_at: datetime
    source: str
    rows: int
    accepted: int
    rejected: int


@dataclass(frozen=True, slots=True)
class GateFacts:
    """The pre-launch gate's facts, at ``at``."""

    at: datetime
    mailboxes: tuple[GateMailbox, ...]
    domains: tuple[GateDomain, ...]
    dns_checked: bool  # False: no DomainChecker was available
    validation: LeadCheck | None
    unvalidated: int  # active enrollments made after the latest validation (or ever, if none)
    warmup_days: int = DEFAULT_WARMUP_DAYS
    public_url: str | None = None  # MAILFLEET_PUBLIC_URL; None: links not checked


@dataclass(frozen=True, slots=True)
class LaunchFacts:
    """What the checks look at."""

    campaign: str
    status: str
    steps: int
    mailboxes: tuple[MailboxFacts, ...]
    enrolled_active: int
    listed_missing: tuple[str, ...] = ()  # addresses the campaign lists that are not mailboxes
    tags_unmatched: tuple[str, ...] = ()  # tags no mailbox of the workspace carries
    gate: GateFacts | None = None  # None: the pre-launch gate's facts were not gathered


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of a check: an ``error`` refuses the start, a ``warning`` is shown."""

    level: Literal["error", "warning"]
    code: str
    message: str


Check = Callable[[LaunchFacts], Iterable[Finding]]


def mailboxes_selected(facts: LaunchFacts) -> Iterable[Finding]:
    """At least one selected mailbox is active; listed addresses and tags exist."""
    for address in facts.listed_missing:
        yield Finding("error", "mailbox_missing", f"{address} is listed but is no mailbox here")
    for tag in facts.tags_unmatched:
        yield Finding("warning", "tag_unmatched", f"no mailbox carries the tag {tag!r}")
    if not facts.mailboxes:
        yield Finding(
            "error",
            "no_mailbox",
            "the campaign selects no mailbox (add one with `mailfleet mailbox add`, "
            "or fix mailbox_tags / mailboxes in the campaign file)",
        )
        return
    active = [m for m in facts.mailboxes if m.active]
    if not active:
        states = ", ".join(f"{m.address} ({m.status})" for m in facts.mailboxes)
        yield Finding("error", "no_active_mailbox", f"no selected mailbox is active: {states}")
    for m in facts.mailboxes:
        # With the gate's facts, a paused or disconnected mailbox is the gate's error.
        stopped = facts.gate is not None and m.status in ("paused", "disconnected")
        if not m.active and active and not stopped:
            yield Finding("warning", "mailbox_inactive", f"{m.address} is {m.status}")


def leads_enrolled(facts: LaunchFacts) -> Iterable[Finding]:
    """Leads wait in the sequence."""
    if facts.enrolled_active == 0:
        yield Finding(
            "error",
            "no_leads",
            "no lead is enrolled (import some with "
            f"`mailfleet leads import FILE.csv --campaign {facts.campaign!r}`)",
        )


def warmup_running(facts: LaunchFacts) -> Iterable[Finding]:
    """Mailboxes held to the warmup ratio have warmup running, or they send no cold mail."""
    held = [
        m
        for m in facts.mailboxes
        if m.active and m.warmup_enabled and m.warmup_ratio > 0 and m.warmup_24h == 0
    ]
    if not held:
        return
    active = [m for m in facts.mailboxes if m.active]
    names = ", ".join(m.address for m in held)
    why = (
        "warmup is on for them but no warmup send was recorded in 24 hours; each cold send "
        "waits for its warmup sends (2 per cold send by default), so cold mail starts once "
        "`mailfleet run` has sent the day's first warmup, inside the mailbox's warmup hours"
    )
    scope = "no mailbox" if len(held) == len(active) else names
    yield Finding(
        "warning",
        "warmup_not_running",
        f"{scope} will send cold mail before its warmup runs ({names}): {why}",
    )


def links_reachable(facts: LaunchFacts) -> Iterable[Finding]:
    """Unsubscribe links work for real recipients: https, unless only rehearsal mailboxes send."""
    gate = facts.gate
    if gate is None or gate.public_url is None:
        return
    problem = public_url_problem(gate.public_url)
    real = [m.address for m in gate.mailboxes if not m.rehearsal]
    if problem is None or not real:
        return
    yield Finding(
        "error",
        "public_url_not_https",
        f"every message carries a one-click unsubscribe link, and {problem}; "
        f"it would go out from {', '.join(real[:5])}{' …' if len(real) > 5 else ''}",
    )


def mailboxes_connected(facts: LaunchFacts) -> Iterable[Finding]:
    """No selected mailbox is paused or disconnected."""
    if facts.gate is None:
        return
    for m in facts.gate.mailboxes:
        why = f" ({m.reason})" if m.reason else ""
        if m.status == "disconnected":
            yield Finding(
                "error",
                "mailbox_disconnected",
                f"{m.address} is disconnected{why}: reconnect it with "
                f"`mailfleet mailbox connect {m.address}`, or drop it from the campaign",
            )
        elif m.status == "paused":
            yield Finding(
                "error",
                "mailbox_paused",
                f"{m.address} is paused{why}: once the cause is fixed, "
                f"`mailfleet mailbox resume {m.address}`, or drop it from the campaign",
            )


def warmup_period(facts: LaunchFacts) -> Iterable[Finding]:
    """Every selected mailbox has warmed up for the warmup period (14 days by default)."""
    gate = facts.gate
    if gate is None:
        return
    period = timedelta(days=gate.warmup_days)
    for m in gate.mailboxes:
        ready = m.warmup_started + period
        if ready > gate.at:
            days = max(0, (gate.at - m.warmup_started).days)
            yield Finding(
                "error",
                "warmup_period",
                f"{m.address} has warmed up for {days} of {gate.warmup_days} days "
                f"(since {m.warmup_started:%Y-%m-%d}); it is ready on {ready:%Y-%m-%d %H:%M} UTC",
            )


def domains_authenticated(facts: LaunchFacts) -> Iterable[Finding]:
    """Every sending domain of the selected mailboxes passes MX, SPF, DKIM and DMARC."""
    gate = facts.gate
    if gate is None:
        return
    if not gate.dns_checked:
        if gate.domains:
            names = ", ".join(d.name for d in gate.domains)
            yield Finding(
                "warning",
                "dns_unchecked",
                f"the DNS of {names} was not checked (no DNS checker is configured)",
            )
        return
    for d in gate.domains:
        if d.error is not None:
            yield Finding(
                "error",
                "dns_lookup_failed",
                f"{d.name}: its DNS could not be checked: {d.error} "
                f"(`mailfleet dns check {d.name}` to retry)",
            )
        elif d.failing:
            names = ", ".join(c.upper() for c in d.failing)
            yield Finding(
                "error",
                "dns_failing",
                f"{d.name} fails {names}: `mailfleet dns check {d.name}` shows the records "
                "to publish",
            )


def leads_validated(facts: LaunchFacts) -> Iterable[Finding]:
    """The campaign's lead list went through ``leads import`` (parsed, de-duplicated,
    checked against suppressions) and no lead was enrolled around it since."""
    gate = facts.gate
    if gate is None or facts.enrolled_active == 0:
        return  # no leads at all is leads_enrolled's error
    how = f"`mailfleet leads import FILE.csv --campaign {facts.campaign!r}`"
    if gate.validation is None:
        yield Finding(
            "error",
            "leads_unvalidated",
            f"the lead list was never validated: import it with {how}",
        )
    elif gate.unvalidated:
        yield Finding(
            "error",
            "leads_unvalidated",
            f"{gate.unvalidated} enrolled lead(s) were added after the last validation "
            f"({gate.validation.source}, {gate.validation.validated_at:%Y-%m-%d %H:%M} UTC) "
            f"without one: import them with {how}",
        )


GATE_CHECKS: tuple[Check, ...] = (
    mailboxes_connected,
    links_reachable,
    warmup_period,
    domains_authenticated,
    leads_validated,
)
BASIC_CHECKS: tuple[Check, ...] = (mailboxes_selected, leads_enrolled, warmup_running)
LAUNCH_CHECKS: list[Check] = [*BASIC_CHECKS, *GATE_CHECKS]
"""The checks ``campaign start`` runs; the pre-launch gate appends its own here."""


def assess(facts: LaunchFacts, checks: Sequence[Check] | None = None) -> list[Finding]:
    """Run ``checks`` (default :data:`LAUNCH_CHECKS`); errors first."""
    findings = [f for check in (LAUNCH_CHECKS if checks is None else checks) for f in check(facts)]
    return sorted(findings, key=lambda f: f.level != "error")
