"""Sending windows: days of the week and hours of the day, in an IANA timezone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class SendingWindow:
    """When a campaign may send: ISO weekdays (1 = Monday) and [start, end) minutes."""

    timezone: str = "UTC"
    days: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    start_minute: int = 9 * 60
    end_minute: int = 17 * 60

    def __post_init__(self) -> None:
        if not self.days or not self.days <= set(range(1, 8)):
            raise ValueError("window days must be ISO weekdays 1 (Monday) to 7 (Sunday)")
        if not 0 <= self.start_minute < self.end_minute <= 24 * 60:
            raise ValueError("window start must come before its end, within one day")
        ZoneInfo(self.timezone)  # raises for an unknown zone

    def zone(self, override: str | None = None) -> ZoneInfo:
        """The zone to read the window in: the lead's own when given, else the campaign's."""
        return ZoneInfo(override or self.timezone)

    def is_open(self, now: datetime, tz: str | None = None) -> bool:
        """Whether ``now`` falls inside the window."""
        local = now.astimezone(self.zone(tz))
        minute = local.hour * 60 + local.minute
        return local.isoweekday() in self.days and self.start_minute <= minute < self.end_minute

    def open_span(self, now: datetime, tz: str | None = None) -> tuple[datetime, datetime] | None:
        """The [opens, closes) interval of today's window containing ``now``, or None if shut."""
        zone = self.zone(tz)
        local = now.astimezone(zone)
        minute = local.hour * 60 + local.minute
        if local.isoweekday() not in self.days or not (
            self.start_minute <= minute < self.end_minute
        ):
            return None
        day = local.date()
        opens = _at_minute(day, self.start_minute, zone).astimezone(UTC)
        closes = _at_minute(day, self.end_minute, zone).astimezone(UTC)
        return opens, closes

    def next_open(self, now: datetime, tz: str | None = None) -> datetime:
        """The first instant at or after ``now`` when the window is open."""
        zone = self.zone(tz)
        local = now.astimezone(zone)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            if day.isoweekday() not in self.days:
                continue
            opens = _at_minute(day, self.start_minute, zone)
            closes = _at_minute(day, self.end_minute, zone)
            if now < opens:
                return opens.astimezone(UTC)
            if now < closes:
                return now
        raise AssertionError("a window with at least one day opens within a week")


def _at_minute(day: date, minute: int, zone: ZoneInfo) -> datetime:
    if minute >= 24 * 60:
        return datetime.combine(day + timedelta(days=1), time(0), zone)
    return datetime.combine(day, time(minute // 60, minute % 60), zone)


def local_day(now: datetime, tz: str) -> tuple[date, datetime]:
    """The local date of ``now`` in ``tz`` and the instant that day ends."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), zone)
    return local.date(), midnight.astimezone(UTC)


def add_delay(
    start: datetime, days: int, *, business_days: bool, tz: str, minutes: int = 0
) -> datetime:
    """``start`` plus ``days`` calendar days, or business days (Monday to Friday) in ``tz``,
    then ``minutes`` more."""
    if not business_days:
        return start + timedelta(days=days, minutes=minutes)
    return _business_days(start, days, tz) + timedelta(minutes=minutes)


def _business_days(start: datetime, days: int, tz: str) -> datetime:
    zone = ZoneInfo(tz)
    local = start.astimezone(zone)
    remaining = days
    while remaining > 0:
        local = local + timedelta(days=1)
        if local.isoweekday() <= 5:
            remaining -= 1
    return local.astimezone(UTC)
