"""Admission control for one mailbox.

A send is admitted only when every limit has room at the instant asked about:
the provider's rate per minute and rolling 24-hour counts, the mailbox's cold
cap for its local day (itself bounded by the ramp), the warmup ratio, the
minimum gap plus jitter since its last *cold* send (for a cold send), and a short
floor since its last send of any kind. When a send is refused,
:class:`Admission` says why and the earliest instant worth asking again, so the
engine can sleep instead of polling.

The warmup ratio (DESIGN.md, invariant 2) is on by default: a cold send is
admitted only when the mailbox's warmup sends of its local day are at least
``warmup_ratio`` times its cold sends *including the one asked about*, so the
day's ratio holds at every instant, not only at its end. It is switched off
only by an explicit ``warmup_ratio=0`` (the engine does that for a mailbox
whose warmup a person turned off). The warmup counted is what the store records
(``Send.kind == "warmup"``, accepted).

Why two gaps: the minimum gap spreads cold mail (9 minutes plus up to 4 of jitter by
default, about five cold sends an hour). Warmup is spread by its own plan and runs at
twice the cold volume or more; if every warmup send also reset the cold gap, the two
would share five sends an hour and warmup, which goes first, would leave cold a
fraction of its cap. So the cold gap is measured from the last cold send, and any
two sends of the mailbox are kept ``send_gap`` apart (2 minutes by default), which
is what stops bursts.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache

from mailfleet.providers import ProviderLimits

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
DEFAULT_WARMUP_RATIO = 2.0
"""Warmup sends per cold send, per mailbox and local day (PROVIDERS.md practice)."""
DEFAULT_RECIPIENT_DOMAIN_DAILY = 5
"""Cold sends one mailbox makes to one recipient domain in its local day."""


@dataclass(frozen=True, slots=True)
class RampPolicy:
    """Cold volume of a new mailbox: a slow ramp, then a steady band."""

    ramp_days: int = 14
    ramp_min: int = 5
    ramp_max: int = 10
    steady_min: int = 15
    steady_max: int = 25


@dataclass(frozen=True, slots=True)
class MailboxPolicy:
    """Everything that bounds one mailbox's sending, already resolved from presets."""

    mailbox_id: int
    limits: ProviderLimits
    ramp: RampPolicy = RampPolicy()
    ramp_start: date | None = None  # None: the mailbox is past its ramp
    daily_cap: int | None = None  # an operator's cap; never raises the ramp's
    min_gap: timedelta = timedelta(minutes=9)  # between two cold sends, plus the jitter
    max_jitter: timedelta = timedelta(minutes=4)
    send_gap: timedelta = timedelta(minutes=2)  # between any two sends (never above min_gap)
    warmup_ratio: float = DEFAULT_WARMUP_RATIO  # 0 switches the rule off, explicitly
    recipient_domain_daily: int | None = DEFAULT_RECIPIENT_DOMAIN_DAILY  # None: no cap
    pace: bool = True  # spread cold sends through the window (see limits.pacing)


@dataclass(frozen=True, slots=True)
class MailboxUsage:
    """What a mailbox has sent, counted by the store at the instant asked about.

    ``cold_today`` counts cold sends since the start of the mailbox's local day;
    the rolling counts include every kind of send (warmup too): the provider
    does not care why a message was sent. ``warmup_today`` counts the warmup
    sends of the local day that were accepted; ``cold_by_recipient_domain``
    the local day's cold sends per recipient domain (only the domains asked
    about need be present); ``last_cold_at`` paces cold sends through the window.
    """

    cold_today: int = 0
    messages_last_minute: int = 0
    oldest_in_last_minute: datetime | None = None
    messages_24h: int = 0
    recipients_24h: int = 0
    oldest_in_24h: datetime | None = None
    last_send_at: datetime | None = None
    last_send_id: int = 0
    warmup_today: int = 0
    last_cold_at: datetime | None = None
    cold_by_recipient_domain: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to "may this mailbox send now?"."""

    ok: bool
    reason: str = ""
    retry_at: datetime | None = None  # earliest instant the answer may change
    code: str = (
        ""  # what refused: recipients, daily_cap, warmup_ratio, rate, rolling_24h, floor, min_gap
    )


@lru_cache(maxsize=1 << 16, typed=True)
def stable_fraction(*parts: object) -> float:
    """A number in [0, 1) that depends only on ``parts``: jitter a retry reproduces.

    Memoised (the parts must be hashable): a tick asks it again for every mailbox's cap
    of the day and pace jitter, which only change with the day and the mailbox's sends.
    """
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def cold_cap_for_day(policy: MailboxPolicy, day: date) -> int:
    """The cold sends a mailbox may make on its local ``day``.

    During the ramp the cap climbs from ``ramp_min`` to ``ramp_max``; after it,
    each day gets a value in the steady band (stable per mailbox and day, so the
    volume does not look machine-made). An operator's ``daily_cap`` replaces the
    drawn value but stays bounded by the practice: never above ``ramp_max`` during
    the ramp nor above ``steady_max`` after it. A cap above the band is an explicit
    override only through the ramp policy itself (raise ``RampPolicy.steady_max``).
    """
    ramp = policy.ramp
    if policy.ramp_start is not None and day < policy.ramp_start:
        return 0
    age = (day - policy.ramp_start).days + 1 if policy.ramp_start is not None else None
    if age is not None and age <= ramp.ramp_days:
        span = ramp.ramp_max - ramp.ramp_min
        cap = ramp.ramp_min + round(span * (age - 1) / max(1, ramp.ramp_days - 1))
        return min(cap, policy.daily_cap) if policy.daily_cap is not None else cap
    if policy.daily_cap is not None:
        return max(0, min(policy.daily_cap, ramp.steady_max))
    band = ramp.steady_max - ramp.steady_min
    return ramp.steady_min + int(stable_fraction(policy.mailbox_id, day) * (band + 1))


def warmup_shortfall(policy: MailboxPolicy, usage: MailboxUsage) -> int:
    """Warmup sends still missing today before one more cold send keeps the ratio (0: none)."""
    if policy.warmup_ratio <= 0:
        return 0
    # A small epsilon keeps 2.0 * 3 from rounding up to 7 through float error.
    needed = math.ceil(policy.warmup_ratio * (usage.cold_today + 1) - 1e-9)
    return max(0, needed - usage.warmup_today)


def recipient_domain_room(policy: MailboxPolicy, usage: MailboxUsage, domain: str) -> bool:
    """Whether one more cold send to ``domain`` stays within the mailbox's daily cap for it."""
    cap = policy.recipient_domain_daily
    if cap is None or not domain:
        return True
    return usage.cold_by_recipient_domain.get(domain, 0) < cap


def gap_after(policy: MailboxPolicy, last_cold_at: datetime) -> timedelta:
    """The pause after a cold send: the minimum gap plus a jitter fixed by that send."""
    jitter = policy.max_jitter * stable_fraction(policy.mailbox_id, "gap", last_cold_at.isoformat())
    return policy.min_gap + jitter


def floor_gap(policy: MailboxPolicy) -> timedelta:
    """The least time between any two sends of the mailbox (warmup or cold)."""
    return min(policy.send_gap, policy.min_gap)


def admit(
    policy: MailboxPolicy,
    usage: MailboxUsage,
    now: datetime,
    *,
    local_day: date,
    next_local_midnight: datetime,
    recipients: int = 1,
    cold: bool = True,
) -> Admission:
    """Decide whether ``policy``'s mailbox may send one message to ``recipients`` now.

    ``local_day`` and ``next_local_midnight`` place ``now`` in the mailbox's
    sending day (the caller knows the timezone).
    """
    limits = policy.limits
    if recipients > limits.recipients_per_message:
        return Admission(
            False,
            f"{recipients} recipients exceed {limits.recipients_per_message} per message",
            code="recipients",
        )
    if cold:
        cap = cold_cap_for_day(policy, local_day)
        if usage.cold_today >= cap:
            return Admission(
                False,
                f"daily cold cap reached ({usage.cold_today}/{cap})",
                next_local_midnight,
                code="daily_cap",
            )
        short = warmup_shortfall(policy, usage)
        if short:
            # No instant to wake at: the answer changes when warmup is recorded.
            return Admission(
                False,
                f"warmup ratio {policy.warmup_ratio:g}:1 not met ({usage.warmup_today} warmup, "
                f"{usage.cold_today} cold today; {short} more warmup before the next cold send)",
                code="warmup_ratio",
            )
    per_minute = limits.messages_per_minute
    if per_minute is not None and usage.messages_last_minute >= per_minute:
        retry = (usage.oldest_in_last_minute or now) + MINUTE
        return Admission(
            False, f"{per_minute} messages a minute reached", max(retry, now), code="rate"
        )
    day_retry = max((usage.oldest_in_24h or now) + DAY, now)
    per_day = limits.recipients_per_day
    if per_day is not None and usage.recipients_24h + recipients > per_day:
        return Admission(
            False,
            f"{per_day} recipients in a rolling 24 hours reached",
            day_retry,
            code="rolling_24h",
        )
    msg_day = limits.messages_per_day
    if msg_day is not None and usage.messages_24h >= msg_day:
        return Admission(
            False,
            f"{msg_day} messages in a rolling 24 hours reached",
            day_retry,
            code="rolling_24h",
        )
    if usage.last_send_at is not None:
        ready = usage.last_send_at + floor_gap(policy)
        if ready > now:
            return Admission(False, "minimum gap since the last send", ready, code="floor")
    if cold and usage.last_cold_at is not None:
        ready = usage.last_cold_at + gap_after(policy, usage.last_cold_at)
        if ready > now:
            return Admission(False, "minimum gap since the last cold send", ready, code="min_gap")
    return Admission(True)
