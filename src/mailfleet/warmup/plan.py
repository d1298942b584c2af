"""A mailbox's warmup day: how many messages, when, to whom, in which thread.

The ramp starts at ``start`` a day, grows by ``step`` a day up to ``ceiling``
(defaults 5, +2, 40), optionally on weekdays only, and each day's number moves
±``jitter`` (10 %) deterministically so the volume does not look machine-made.
When the mailbox also sends cold mail, the day's warmup is raised until it is at
least ``ratio`` times the cold planned or sent that day — the ratio rule of
:func:`mailfleet.limits.warmup_shortfall`, planned for instead of waited on.

The sends are spread over the mailbox's local day (``day_start_minute`` to
``day_end_minute``) with irregular gaps: the day is cut in equal slices and each
send lands at a seeded point of its slice. Everything is a pure function of the
arguments.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from mailfleet.warmup.pool import Peer, peers_for_day


@dataclass(frozen=True, slots=True)
class RampSettings:
    """The warmup ramp of one mailbox; every field can be overridden per mailbox."""

    start: int = 5
    step: int = 2
    ceiling: int = 40
    weekdays_only: bool = False
    jitter: float = 0.10
    day_start_minute: int = 7 * 60
    day_end_minute: int = 21 * 60

    def __post_init__(self) -> None:
        if self.start < 0 or self.step < 0 or self.ceiling < 0:
            raise ValueError("warmup ramp start, step and ceiling cannot be negative")
        if self.start > self.ceiling:
            raise ValueError(f"warmup ramp start {self.start} is above its ceiling {self.ceiling}")
        if not 0 <= self.jitter < 1:
            raise ValueError("warmup jitter must be in [0, 1)")
        if not 0 <= self.day_start_minute < self.day_end_minute <= 24 * 60:
            raise ValueError("warmup day must start before it ends, within 0..1440 minutes")


@dataclass(frozen=True, slots=True)
class PlannedWarmup:
    """One warmup message of the plan: who sends it to whom, when, in which thread slot."""

    at: datetime
    sender_id: int
    peer_id: int
    slot: int  # its place in the day's plan (0-based); a thread key for continuing threads


def unit(*parts: object) -> float:
    """A number in [0, 1) fixed by ``parts``."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def ramp_day(started_on: date, day: date, *, weekdays_only: bool = False) -> int:
    """The 1-based day of the ramp ``day`` is (0 before it started); weekends skipped if asked."""
    if day < started_on:
        return 0
    if not weekdays_only:
        return (day - started_on).days + 1
    count = 0
    current = started_on
    while current <= day:
        if current.weekday() < 5:
            count += 1
        current += timedelta(days=1)
    return count


def ramp_target(settings: RampSettings, started_on: date, day: date, *, seed: object = 0) -> int:
    """Warmup sends the ramp asks for on ``day`` (before the cold ratio raises it)."""
    if settings.weekdays_only and day.weekday() >= 5:
        return 0
    age = ramp_day(started_on, day, weekdays_only=settings.weekdays_only)
    if age == 0:
        return 0
    base = min(settings.ceiling, settings.start + settings.step * (age - 1))
    swing = (unit("ramp", seed, day.isoformat()) * 2 - 1) * settings.jitter
    return max(0, round(base * (1 + swing)))


def daily_target(
    settings: RampSettings,
    started_on: date,
    day: date,
    *,
    cold: int = 0,
    ratio: float = 2.0,
    seed: object = 0,
) -> int:
    """The day's warmup sends: the ramp's, raised to ``ceil(ratio × cold)`` when cold needs it.

    ``cold`` is the larger of the cold sends planned and already sent that day.
    The raise applies on every day, weekends included: the ratio is kept forever.
    """
    if cold < 0:
        raise ValueError("cold sends cannot be negative")
    needed = math.ceil(ratio * cold - 1e-9) if ratio > 0 else 0
    return max(ramp_target(settings, started_on, day, seed=seed), needed)


def spread(
    count: int,
    day: date,
    timezone: str,
    settings: RampSettings,
    *,
    seed: object = 0,
) -> list[datetime]:
    """``count`` UTC instants across the local ``day``, one per equal slice at a seeded point."""
    if count <= 0:
        return []
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), zone) + timedelta(minutes=settings.day_start_minute)
    length = timedelta(minutes=settings.day_end_minute - settings.day_start_minute)
    width = length / count
    instants = []
    for index in range(count):
        # Between 10 % and 90 % of its slice: never two sends back to back.
        offset = width * (index + 0.1 + 0.8 * unit("at", seed, day.isoformat(), index))
        instants.append((start + offset).astimezone(UTC).replace(microsecond=0))
    return instants


def plan_day(
    sender: Peer,
    pool: Sequence[Peer],
    day: date,
    timezone: str,
    target: int,
    settings: RampSettings,
    *,
    seed: int = 0,
) -> list[PlannedWarmup]:
    """The day's warmup sends of ``sender``: ``target`` of them, spread and paired.

    Empty when the pool has no peer ``sender`` may warm against.
    """
    peers = peers_for_day(sender, pool, day, target, seed=seed)
    if not peers:
        return []
    times = spread(len(peers), day, timezone, settings, seed=(seed, sender.mailbox_id))
    return [
        PlannedWarmup(at, sender.mailbox_id, peer.mailbox_id, slot)
        for slot, (at, peer) in enumerate(zip(times, peers, strict=True))
    ]
