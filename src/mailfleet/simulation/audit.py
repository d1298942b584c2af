"""The violation auditor: the invariants of DESIGN.md checked against what the sandbox received.

Pure: it reads a :class:`~mailfleet.simulation.records.SubmissionLog` (what the
submission server accepted, with virtual timestamps), the stops the simulated
world caused and the rules the run was configured with, and counts every breach.
It never reads the engine's tables, so a bookkeeping bug in the engine cannot
hide a breach from it; and its checks are written here again from the rules,
not borrowed from the planner they judge.

Counts (``violations``):

======================  ==============================================================
over_provider_limits    messages past 30 in any rolling minute, recipients past 10,000
                        in any rolling 24 hours (per mailbox), plus every attempt the
                        sandbox's limit meter refused (rate, quota, >3 connections)
outside_window          cold messages accepted outside the campaign's sending window
under_minimum_gap       cold messages closer than the minimum gap to the mailbox's previous
                        cold one, or any message closer than its send gap to its previous one
over_ramp               cold messages past the cap of the mailbox's age on its local day
under_warmup_ratio      cold messages sent before the mailbox's warmup of the local day
                        reached ``ratio`` × its cold sends (this one included)
duplicate_message_id    messages whose Message-ID the sandbox had already accepted
duplicate_lead_step     a lead receiving the same step again (by thread position or text)
sent_after_stop         cold messages to a lead after its reply, bounce or unsubscribe
======================  ==============================================================
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from mailfleet.simulation.records import Received

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
EXAMPLES = 5

VIOLATION_KEYS = (
    "over_provider_limits",
    "outside_window",
    "under_minimum_gap",
    "over_ramp",
    "under_warmup_ratio",
    "duplicate_message_id",
    "duplicate_lead_step",
    "sent_after_stop",
)


@dataclass(frozen=True, slots=True)
class RampRule:
    """Cold mail a mailbox may send on day N of its life: the band's top, not its middle."""

    ramp_days: int = 14
    ramp_max: int = 10
    steady_max: int = 25

    def cap(self, age: int, daily_cap: int | None) -> int:
        """The most cold sends allowed on day ``age`` (1 = the ramp's first day)."""
        if age < 1:
            return 0
        cap = self.ramp_max if age <= self.ramp_days else self.steady_max
        return min(cap, daily_cap) if daily_cap is not None else cap


@dataclass(frozen=True, slots=True)
class SenderRule:
    """One mailbox's own knobs, as configured."""

    address: str
    timezone: str = "UTC"
    ramp_start: date | None = None  # None: past its ramp
    daily_cap: int | None = None
    min_gap: timedelta = timedelta(minutes=9)  # between two cold messages
    send_gap: timedelta = timedelta(minutes=2)  # between any two messages (warmup too)


@dataclass(frozen=True, slots=True)
class WindowRule:
    """The campaign's sending window: ISO weekdays and [start, end) minutes, in a zone."""

    timezone: str = "UTC"
    days: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    start_minute: int = 9 * 60
    end_minute: int = 17 * 60

    def contains(self, at: datetime, zone: str | None = None) -> bool:
        """Whether ``at`` falls inside the window, read in ``zone`` (default: the window's)."""
        local = at.astimezone(ZoneInfo(zone or self.timezone))
        minute = local.hour * 60 + local.minute
        return local.isoweekday() in self.days and self.start_minute <= minute < self.end_minute


@dataclass(frozen=True, slots=True)
class AuditRules:
    """Everything the run promised, as the auditor checks it."""

    senders: Mapping[str, SenderRule]
    window: WindowRule
    cold_domains: frozenset[str]  # recipients at these domains are prospects
    threaded_steps: Sequence[bool] = (True,)  # per position from 1: does it reply in thread?
    lead_timezones: Mapping[str, str] = field(default_factory=dict)
    use_lead_timezone: bool = False
    messages_per_minute: int | None = 30
    recipients_per_day: int | None = 10_000
    ramp: RampRule = RampRule()
    warmup_ratio: float | None = None
    stop_grace: timedelta = timedelta(0)


@dataclass(slots=True)
class Audit:
    """The auditor's findings."""

    violations: dict[str, int]
    details: dict[str, Any]
    messages: int = 0
    cold: int = 0
    warmup: int = 0
    recipients: int = 0
    by_step: dict[str, int] = field(default_factory=dict)
    by_sender: dict[str, int] = field(default_factory=dict)
    leads_reached: int = 0

    @property
    def total_violations(self) -> int:
        """Sum of every count."""
        return sum(self.violations.values())


class _Findings:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter({key: 0 for key in VIOLATION_KEYS})
        self.examples: dict[str, list[str]] = defaultdict(list)

    def add(self, key: str, example: str, count: int = 1) -> None:
        self.counts[key] += count
        if len(self.examples[key]) < EXAMPLES:
            self.examples[key].append(example)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def audit(
    received: Iterable[Received],
    rules: AuditRules,
    *,
    stops: Mapping[str, datetime] | None = None,
    limit_refusals: Mapping[str, int] | None = None,
) -> Audit:
    """Count every breach of ``rules`` in ``received`` (oldest first, as accepted).

    ``stops`` maps a lead's address to the first instant no message may reach it;
    ``limit_refusals`` counts, by reply, the attempts the sandbox refused for
    exceeding a provider limit.
    """
    items = sorted(received, key=lambda r: r.at)  # stable: equal instants keep their order
    found = _Findings()
    stops = stops or {}
    refusals = dict(limit_refusals or {})

    per_minute = _check_rates(items, rules, found)
    _check_gaps(items, rules, found)
    cold_by_day, warm_by_day = _check_volume(items, rules, found)
    by_step, leads = _check_sequence(items, rules, stops, found)
    refused = sum(refusals.values())
    if refused:
        found.add(
            "over_provider_limits",
            f"{refused} attempt(s) refused by the provider's limits: {refusals}",
            refused,
        )
    checked_warmup = rules.warmup_ratio is not None
    cold = sum(1 for r in items for to in r.recipients if _domain(to) in rules.cold_domains)
    return Audit(
        violations={key: found.counts[key] for key in VIOLATION_KEYS},
        details={
            "over_provider_limits": {
                "per_minute": per_minute[0],
                "recipients_24h": per_minute[1],
                "refused_by_limits": refusals,
            },
            "warmup_ratio_checked": checked_warmup,
            "mailbox_days_with_cold": len(cold_by_day),
            "mailbox_days_with_warmup": len(warm_by_day),
            "examples": {k: v for k, v in found.examples.items() if v},
        },
        messages=len(items),
        cold=cold,
        warmup=sum(warm_by_day.values()),
        recipients=sum(len(r.recipients) for r in items),
        by_step={str(k): v for k, v in sorted(by_step.items())},
        by_sender=dict(sorted(Counter(r.sender for r in items).items())),
        leads_reached=leads,
    )


def _check_rates(items: Sequence[Received], rules: AuditRules, found: _Findings) -> tuple[int, int]:
    """Messages per rolling minute and recipients per rolling 24 hours, per mailbox."""
    minute: dict[str, deque[datetime]] = defaultdict(deque)
    day: dict[str, deque[tuple[datetime, int]]] = defaultdict(deque)
    day_total: Counter[str] = Counter()
    over_minute = over_day = 0
    for item in items:
        recent = minute[item.sender]
        while recent and recent[0] <= item.at - MINUTE:
            recent.popleft()
        recent.append(item.at)
        limit = rules.messages_per_minute
        if limit is not None and len(recent) > limit:
            over_minute += 1
            found.add(
                "over_provider_limits",
                f"{item.sender}: {len(recent)} messages in the minute ending {item.at:%F %T}",
            )
        window = day[item.sender]
        while window and window[0][0] <= item.at - DAY:
            day_total[item.sender] -= window.popleft()[1]
        count = len(item.recipients)
        window.append((item.at, count))
        day_total[item.sender] += count
        cap = rules.recipients_per_day
        if cap is not None and day_total[item.sender] > cap:
            over_day += 1
            found.add(
                "over_provider_limits",
                f"{item.sender}: {day_total[item.sender]} recipients in the 24 hours "
                f"ending {item.at:%F %T}",
            )
    return over_minute, over_day


def _check_gaps(items: Sequence[Received], rules: AuditRules, found: _Findings) -> None:
    """A mailbox's cold messages at least its minimum gap apart, and any two of its
    messages (warmup too) at least its send gap apart."""
    last: dict[str, datetime] = {}
    last_cold: dict[str, datetime] = {}
    for item in items:
        rule = rules.senders.get(item.sender)
        cold = any(_domain(to) in rules.cold_domains for to in item.recipients)
        previous, previous_cold = last.get(item.sender), last_cold.get(item.sender)
        last[item.sender] = item.at
        if cold:
            last_cold[item.sender] = item.at
        if rule is None:
            continue
        if previous is not None and item.at - previous < rule.send_gap:
            gap = item.at - previous
            found.add(
                "under_minimum_gap",
                f"{item.sender}: {gap.total_seconds():.0f}s after its previous message "
                f"at {item.at:%F %T} (minimum {rule.send_gap.total_seconds():.0f}s)",
            )
        elif cold and previous_cold is not None and item.at - previous_cold < rule.min_gap:
            gap = item.at - previous_cold
            found.add(
                "under_minimum_gap",
                f"{item.sender}: cold message {gap.total_seconds():.0f}s after its previous "
                f"cold message at {item.at:%F %T} (minimum {rule.min_gap.total_seconds():.0f}s)",
            )


def _check_volume(
    items: Sequence[Received], rules: AuditRules, found: _Findings
) -> tuple[Counter[tuple[str, date]], Counter[tuple[str, date]]]:
    """Cold messages inside the window and within the ramp; warmup beside cold."""
    cold: Counter[tuple[str, date]] = Counter()
    warm: Counter[tuple[str, date]] = Counter()
    zones: dict[str, ZoneInfo] = {}
    for item in items:
        rule = rules.senders.get(item.sender)
        zone_name = rule.timezone if rule is not None else "UTC"
        zone = zones.setdefault(zone_name, ZoneInfo(zone_name))
        local_day = item.at.astimezone(zone).date()
        for to in item.recipients:
            if _domain(to) in rules.cold_domains:
                lead_zone = rules.lead_timezones.get(to) if rules.use_lead_timezone else None
                if not rules.window.contains(item.at, lead_zone):
                    found.add("outside_window", f"{item.sender} -> {to} at {item.at:%F %T %Z}")
                key = (item.sender, local_day)
                cold[key] += 1
                if rule is None:
                    continue
                age = (
                    (local_day - rule.ramp_start).days + 1
                    if rule.ramp_start is not None
                    else rules.ramp.ramp_days + 1
                )
                cap = rules.ramp.cap(age, rule.daily_cap)
                if cold[key] > cap:
                    found.add(
                        "over_ramp",
                        f"{item.sender}: cold message {cold[key]} on {local_day} "
                        f"(day {age} of its life, cap {cap})",
                    )
                # The ratio holds at every instant of the day, as the planner applies it:
                # the warmup already sent covers this cold send too.
                ratio = rules.warmup_ratio
                if ratio is not None and warm[key] < ratio * cold[key] - 1e-9:
                    found.add(
                        "under_warmup_ratio",
                        f"{item.sender}: cold message {cold[key]} on {local_day} after "
                        f"{warm[key]} warmup (needs {ratio:g} per cold)",
                    )
            elif to in rules.senders:
                warm[(item.sender, local_day)] += 1
    return cold, warm


def _check_sequence(
    items: Sequence[Received],
    rules: AuditRules,
    stops: Mapping[str, datetime],
    found: _Findings,
) -> tuple[Counter[int], int]:
    """Message-IDs once, each (lead, step) once, nothing after a stop; label each step."""
    threaded = list(rules.threaded_steps) or [True]
    roots = [p for p in range(1, len(threaded) + 1) if p == 1 or not threaded[p - 1]]
    seen_ids: set[str] = set()
    step_of: dict[tuple[str, str], int] = {}  # (lead, Message-ID) -> step
    got: set[tuple[str, int]] = set()
    texts: set[tuple[str, str]] = set()
    highest: dict[str, int] = {}
    by_step: Counter[int] = Counter()
    for item in items:
        if item.message_id is not None:
            key = item.message_id.strip().strip("<>")
            if key in seen_ids:
                found.add(
                    "duplicate_message_id",
                    f"{item.message_id} accepted again at {item.at:%F %T} from {item.sender}",
                )
            seen_ids.add(key)
        for to in item.recipients:
            if _domain(to) not in rules.cold_domains:
                continue
            stop = stops.get(to)
            if stop is not None and item.at >= stop + rules.stop_grace:
                found.add(
                    "sent_after_stop",
                    f"{item.sender} -> {to} at {item.at:%F %T}, stopped at {stop:%F %T}",
                )
            parent = item.in_reply_to.strip().strip("<>") if item.in_reply_to else None
            step = step_of.get((to, parent)) if parent else None
            if step is not None:
                step += 1
            else:
                above = [p for p in roots if p > highest.get(to, 0)]
                step = above[0] if above else roots[0]
            if item.message_id is not None:
                step_of[(to, item.message_id.strip().strip("<>"))] = step
            text = (to, item.fingerprint)
            if (to, step) in got or (item.fingerprint and text in texts):
                found.add(
                    "duplicate_lead_step",
                    f"{to} received step {step} again at {item.at:%F %T} from {item.sender}",
                )
            got.add((to, step))
            if item.fingerprint:
                texts.add(text)
            highest[to] = max(highest.get(to, 0), step)
            by_step[step] += 1
    return by_step, len(highest)
