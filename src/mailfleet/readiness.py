"""Whether a campaign may start: checks over facts gathered from the store.

Pure: the CLI (or API) gathers a :class:`LaunchFacts` and calls :func:`assess`
with a list of checks; any ``error`` finding refuses the start, ``warning``
findings are shown. :data:`BASIC_CHECKS` is what exists today — mailboxes
selected and able to send, leads enrolled. The full pre-launch gate (DNS, SPF,
DKIM and DMARC of every sending domain, mailbox age and warmup days, bounce
health) is a later issue: it adds its facts to :class:`LaunchFacts` (or reads
them through its own gatherer) and its checks to :data:`LAUNCH_CHECKS`; nothing
else has to change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal


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
class LaunchFacts:
    """What the checks look at."""

    campaign: str
    status: str
    steps: int
    mailboxes: tuple[MailboxFacts, ...]
    enrolled_active: int
    listed_missing: tuple[str, ...] = ()  # addresses the campaign lists that are not mailboxes
    tags_unmatched: tuple[str, ...] = ()  # tags no mailbox of the workspace carries


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
        if not m.active and active:
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
        "warmup is on for them but no warmup send was recorded in 24 hours, so the "
        "warmup ratio (2 warmup sends per cold send by default) holds every cold send back. "
        "mailfleet's warmup engine is not built yet; if a mailbox is warmed by another "
        "tool, turn its rule off explicitly: `mailfleet warmup off ADDRESS`"
    )
    if len(held) == len(active):
        yield Finding(
            "error", "warmup_not_running", f"no mailbox can send cold mail: {names}: {why}"
        )
    else:
        yield Finding("warning", "warmup_not_running", f"{names} will send no cold mail: {why}")


BASIC_CHECKS: tuple[Check, ...] = (mailboxes_selected, leads_enrolled, warmup_running)
LAUNCH_CHECKS: list[Check] = list(BASIC_CHECKS)
"""The checks ``campaign start`` runs; the pre-launch gate appends its own here."""


def assess(facts: LaunchFacts, checks: Sequence[Check] | None = None) -> list[Finding]:
    """Run ``checks`` (default :data:`LAUNCH_CHECKS`); errors first."""
    findings = [f for check in (LAUNCH_CHECKS if checks is None else checks) for f in check(facts)]
    return sorted(findings, key=lambda f: f.level != "error")
