"""Why a mailbox is not sending now, and until when: the planner's rules, asked one by one.

"Why is nothing sending?" has one answer per mailbox, the first rule that holds it,
in the order the planner applies them (:mod:`mailfleet.planner.schedule`): it is paused
or disconnected (with the reason and its remedy), no running campaign selects it, every
campaign's window is shut, the limits refuse it (:func:`mailfleet.limits.admit`: cold
cap of its ramp day, the warmup ratio — with the warmup hours when they are what it
waits for —, the provider's rate and rolling 24 hours, the gaps), or it is pacing its
sends through the window. Pure: the caller gathers the facts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from mailfleet.limits import admit, cold_cap_for_day, paced_at, stable_fraction
from mailfleet.planner.schedule import MailboxState
from mailfleet.planner.window import SendingWindow, local_day


@dataclass(frozen=True, slots=True)
class Hold:
    """What holds one mailbox at ``at``; ``code`` ``ready`` means nothing does."""

    code: str  # ready, paused, disconnected, no_campaign, outside_window, daily_cap,
    # warmup_ratio, warmup_hours, rate, rolling_24h, floor, min_gap, paced
    reason: str
    until: datetime | None = None  # when it may change by itself (None: on a change)


@dataclass(frozen=True, slots=True)
class MailboxFacts:
    """A mailbox's status beside its limits and usage."""

    state: MailboxState
    status: str  # active, paused, disconnected
    status_reason: str | None
    paused_until: datetime | None
    warmup_on: bool
    warmup_hours: tuple[int, int]  # [start, end) minutes of the warmup day, local


def _warmup_wait(facts: MailboxFacts, at: datetime) -> datetime | None:
    """When warmup may next go out, if its hours are what the mailbox waits for now."""
    zone = ZoneInfo(facts.state.timezone)
    local = at.astimezone(zone)
    start, end = facts.warmup_hours
    minute = local.hour * 60 + local.minute
    if start <= minute < end:
        return None
    day = local.date() + timedelta(days=1 if minute >= end else 0)
    opens = datetime.combine(day, time(start // 60, start % 60), zone)
    return opens.astimezone(at.tzinfo)


def mailbox_hold(facts: MailboxFacts, windows: Sequence[SendingWindow], at: datetime) -> Hold:
    """The first rule that keeps ``facts``'s mailbox from a cold send at ``at``."""
    state = facts.state
    if not state.active:
        why = facts.status_reason or "by a person"
        code = "disconnected" if facts.status == "disconnected" else "paused"
        until = facts.paused_until if facts.paused_until and facts.paused_until > at else None
        return Hold(code, f"{code}: {why}", until)
    if not windows:
        return Hold("no_campaign", "no running campaign selects it")
    spans = [s for w in windows if (s := w.open_span(at)) is not None]
    if not spans:
        opens = min(w.next_open(at) for w in windows)
        return Hold(
            "outside_window", f"outside the sending window until {opens:%a %H:%M} UTC", opens
        )
    day, midnight = local_day(at, state.timezone)
    verdict = admit(state.policy, state.usage, at, local_day=day, next_local_midnight=midnight)
    if not verdict.ok:
        if verdict.code == "warmup_ratio" and facts.warmup_on:
            resumes = _warmup_wait(facts, at)
            if resumes is not None:
                return Hold(
                    "warmup_hours",
                    f"{verdict.reason}; warmup goes out again at {resumes:%a %H:%M} UTC "
                    "(its warmup hours, in the mailbox's timezone)",
                    resumes,
                )
        return Hold(verdict.code or "limits", verdict.reason, verdict.retry_at)
    if state.policy.pace:
        opens, closes = min(spans)
        opens = max(opens, midnight - timedelta(days=1))
        closes = min(closes, midnight)

        remaining = cold_cap_for_day(state.policy, day) - state.usage.cold_today
        ready = paced_at(
            last_cold_at=state.usage.last_cold_at,
            remaining=remaining,
            opens=opens,
            closes=closes,
            jitter=stable_fraction(state.mailbox_id, "pace", state.usage.last_send_id),
        )
        if ready > at:
            return Hold(
                "paced",
                f"pacing {remaining} more cold send(s) through the window: next at "
                f"{ready:%H:%M} UTC",
                ready,
            )
    return Hold("ready", "may send now: it sends when a lead's step is due")
