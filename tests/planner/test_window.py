from datetime import timedelta
from zoneinfo import ZoneInfoNotFoundError

import pytest

from mailfleet.clock import utc
from mailfleet.planner import SendingWindow, add_delay, local_day


def test_window_opens_on_weekdays_in_its_timezone() -> None:
    window = SendingWindow(timezone="America/New_York", start_minute=9 * 60, end_minute=17 * 60)
    monday_8am_ny = utc(2026, 3, 2, 13)  # EST is UTC-5 on 2 March
    assert not window.is_open(monday_8am_ny)
    assert window.next_open(monday_8am_ny) == utc(2026, 3, 2, 14)
    assert window.is_open(utc(2026, 3, 2, 14))
    friday_evening = utc(2026, 3, 6, 23)
    # US daylight saving starts on 8 March 2026: Monday 09:00 is 13:00 UTC.
    assert window.next_open(friday_evening) == utc(2026, 3, 9, 13)


def test_lead_timezone_overrides_campaign_zone() -> None:
    window = SendingWindow(timezone="UTC")
    assert window.is_open(utc(2026, 3, 2, 10))
    assert not window.is_open(utc(2026, 3, 2, 10), "Asia/Tokyo")  # 19:00 in Tokyo


def test_bad_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="start must come before"):
        SendingWindow(start_minute=600, end_minute=600)
    with pytest.raises(ValueError, match="ISO weekdays"):
        SendingWindow(days=frozenset({0}))
    with pytest.raises(ZoneInfoNotFoundError):
        SendingWindow(timezone="Mars/Olympus")


def test_business_day_delay_skips_weekends() -> None:
    friday = utc(2026, 3, 6, 10)
    assert add_delay(friday, 1, business_days=True, tz="UTC") == utc(2026, 3, 9, 10)
    assert add_delay(friday, 1, business_days=False, tz="UTC") == friday + timedelta(days=1)
    day, midnight = local_day(utc(2026, 3, 6, 23, 30), "Europe/Berlin")
    assert day.isoformat() == "2026-03-07" and midnight == utc(2026, 3, 7, 23)
