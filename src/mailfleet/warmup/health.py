"""Placement and health from what peers saw, and the cold-cap factor that follows from them.

Each warmup message a peer found is an observation: INBOX or Junk, whether it
was answered, whether it bounced. Over a window (7 and 28 days) they give the
Junk share, the reply and bounce rates and a health score (0-100). The cold-cap
factor is the automation on top: when inbox placement over the last
``trigger_window`` drops below ``cut_below`` the mailbox's cold cap is cut (to
``cut_to``, or ``floor`` when placement is very bad); it is then restored by
``restore_step`` per ``restore_every`` while recent placement stays at or above
``restore_at``. Every change carries its reason, to be recorded as an event.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from mailfleet.limits import MailboxPolicy, cold_cap_for_day
from mailfleet.warmup.receiver import Placement


@dataclass(frozen=True, slots=True)
class Observation:
    """One warmup message as its peer found it (``placement`` None: bounced or never found)."""

    at: datetime
    placement: Placement | None
    replied: bool = False
    bounced: bool = False


@dataclass(frozen=True, slots=True)
class PlacementStats:
    """Placement of a mailbox's (or domain's) warmup over one window."""

    sent: int
    inbox: int
    junk: int
    replied: int
    bounced: int

    @property
    def seen(self) -> int:
        """Messages a peer found (INBOX or Junk)."""
        return self.inbox + self.junk

    @property
    def junk_share(self) -> float | None:
        """Share of found messages that landed in Junk (None: nothing found yet)."""
        return self.junk / self.seen if self.seen else None

    @property
    def inbox_share(self) -> float | None:
        """Share of found messages that landed in the INBOX (None: nothing found yet)."""
        return self.inbox / self.seen if self.seen else None

    @property
    def reply_rate(self) -> float | None:
        """Replies per found message."""
        return self.replied / self.seen if self.seen else None

    @property
    def bounce_rate(self) -> float | None:
        """Bounces per message sent."""
        return self.bounced / self.sent if self.sent else None


def placement_stats(
    observations: Iterable[Observation], now: datetime, window: timedelta
) -> PlacementStats:
    """Counts of the observations in ``(now - window, now]``."""
    since = now - window
    inside = [o for o in observations if since < o.at <= now]
    return PlacementStats(
        sent=len(inside),
        inbox=sum(o.placement is Placement.INBOX for o in inside),
        junk=sum(o.placement is Placement.JUNK for o in inside),
        replied=sum(o.replied for o in inside),
        bounced=sum(o.bounced for o in inside),
    )


def health_score(stats: PlacementStats) -> int | None:
    """0-100: inbox placement weighs most, bounces cost, replies help (None: no data)."""
    if stats.seen == 0:
        return None
    inbox = stats.inbox_share or 0.0
    bounce = stats.bounce_rate or 0.0
    reply = stats.reply_rate or 0.0
    score = 100 * inbox - 400 * bounce + 10 * min(reply / 0.3, 1.0) - 10
    return max(0, min(100, round(score)))


@dataclass(frozen=True, slots=True)
class CapPolicy:
    """When and how much the cold cap is cut and restored."""

    trigger_window: timedelta = timedelta(hours=24)
    min_observations: int = 3
    cut_below: float = 0.80  # inbox share under which the cap is cut
    cut_to: float = 0.5
    floor_below: float = 0.5  # inbox share under which the cap drops to ``floor``
    floor: float = 0.2
    restore_at: float = 0.90
    restore_step: float = 0.25
    restore_every: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if not 0 <= self.floor <= self.cut_to <= 1:
            raise ValueError("cold-cap factors must satisfy 0 <= floor <= cut_to <= 1")
        if self.restore_step <= 0:
            raise ValueError("restore_step must be positive")


@dataclass(frozen=True, slots=True)
class CapChange:
    """A new cold-cap factor and why (``changed`` False: keep the current one)."""

    factor: float
    changed: bool
    reason: str = ""


def next_cold_cap_factor(
    current: float,
    changed_at: datetime | None,
    observations: Iterable[Observation],
    now: datetime,
    policy: CapPolicy | None = None,
) -> CapChange:
    """Cut, restore or keep the cold-cap factor from recent placement.

    A cut happens as soon as the trigger window shows bad placement (so within a
    day of the problem); a restore step needs ``restore_every`` since the last
    change and good placement over the trigger window.
    """
    policy = policy or CapPolicy()
    recent = placement_stats(observations, now, policy.trigger_window)
    share = recent.inbox_share
    if share is None or recent.seen < policy.min_observations:
        return CapChange(current, False)
    percent = f"{share:.0%} inbox placement ({recent.junk} of {recent.seen} in Junk) over the last "
    percent += f"{policy.trigger_window.total_seconds() / 3600:g} h"
    if share < policy.cut_below:
        target = policy.floor if share < policy.floor_below else policy.cut_to
        if target < current - 1e-9:
            return CapChange(target, True, f"cold cap cut to {target:.0%}: {percent}")
        return CapChange(current, False)
    if share >= policy.restore_at and current < 1.0:
        if changed_at is not None and now - changed_at < policy.restore_every:
            return CapChange(current, False)
        restored = min(1.0, current + policy.restore_step)
        return CapChange(restored, True, f"cold cap restored to {restored:.0%}: {percent}")
    return CapChange(current, False)


def capped_policy(policy: MailboxPolicy, factor: float, day: date) -> MailboxPolicy:
    """``policy`` with its cold cap for ``day`` multiplied by ``factor`` (1: unchanged).

    The cut lands in ``daily_cap``, which only ever lowers the ramp's cap.
    """
    if factor >= 1.0:
        return policy
    cap = math.floor(cold_cap_for_day(policy, day) * max(0.0, factor))
    current = policy.daily_cap
    return replace(policy, daily_cap=cap if current is None else min(current, cap))
