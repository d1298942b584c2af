"""Why a mailbox is not sending: the first of the planner's rules that holds it, and until when."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from mailfleet.clock import utc
from mailfleet.limits import MailboxPolicy, MailboxUsage
from mailfleet.planner import MailboxState, SendingWindow
from mailfleet.planner.holds import MailboxFacts, mailbox_hold
from mailfleet.providers.presets import MICROSOFT_365

TUESDAY_10 = utc(2026, 3, 3, 10)
ALL_DAY = SendingWindow(days=frozenset(range(1, 8)), start_minute=0, end_minute=24 * 60)
OFFICE = SendingWindow()  # Monday to Friday 09:00–17:00 UTC


def facts(
    *,
    usage: MailboxUsage | None = None,
    active: bool = True,
    status: str = "active",
    reason: str | None = None,
    ratio: float = 0.0,
    pace: bool = False,
    ramp_start: date | None = None,
) -> MailboxFacts:
    policy = MailboxPolicy(
        mailbox_id=1,
        limits=MICROSOFT_365.limits,
        warmup_ratio=ratio,
        pace=pace,
        ramp_start=ramp_start,
    )
    state = MailboxState(1, policy, usage or MailboxUsage(), "UTC", active)
    return MailboxFacts(state, status, reason, None, ratio > 0, (7 * 60, 21 * 60))


def test_a_free_mailbox_is_ready() -> None:
    assert mailbox_hold(facts(), [ALL_DAY], TUESDAY_10).code == "ready"


def test_paused_with_its_remedy() -> None:
    why = "5.7.139 SMTP AUTH disabled: enable it for the mailbox, then `mailfleet mailbox resume`"
    hold = mailbox_hold(facts(active=False, status="paused", reason=why), [ALL_DAY], TUESDAY_10)
    assert hold.code == "paused" and "mailbox resume" in hold.reason


def test_no_running_campaign() -> None:
    assert mailbox_hold(facts(), [], TUESDAY_10).code == "no_campaign"


def test_outside_the_window_until_it_opens() -> None:
    saturday = utc(2026, 3, 7, 12)
    hold = mailbox_hold(facts(), [OFFICE], saturday)
    assert hold.code == "outside_window" and hold.until == utc(2026, 3, 9, 9)


def test_waiting_for_the_warmup_ratio_and_for_warmup_hours() -> None:
    waiting = facts(ratio=2.0, usage=MailboxUsage(cold_today=1, warmup_today=1))
    assert mailbox_hold(waiting, [ALL_DAY], TUESDAY_10).code == "warmup_ratio"
    at_night = utc(2026, 3, 3, 22)
    hold = mailbox_hold(waiting, [ALL_DAY], at_night)
    assert hold.code == "warmup_hours" and hold.until == utc(2026, 3, 4, 7)


def test_ramp_cap_reached_until_midnight() -> None:
    new = facts(ramp_start=date(2026, 3, 3), usage=MailboxUsage(cold_today=5))
    hold = mailbox_hold(new, [ALL_DAY], TUESDAY_10)
    assert hold.code == "daily_cap" and hold.until == utc(2026, 3, 4)


@pytest.mark.parametrize(
    ("usage", "code"),
    [
        (MailboxUsage(last_send_at=TUESDAY_10 - timedelta(minutes=1)), "floor"),
        (
            MailboxUsage(
                last_send_at=TUESDAY_10 - timedelta(minutes=5),
                last_cold_at=TUESDAY_10 - timedelta(minutes=5),
                cold_today=1,
            ),
            "min_gap",
        ),
        (
            MailboxUsage(messages_last_minute=30, oldest_in_last_minute=TUESDAY_10),
            "rate",
        ),
    ],
)
def test_gaps_and_provider_rate(usage: MailboxUsage, code: str) -> None:
    hold = mailbox_hold(facts(usage=usage), [ALL_DAY], TUESDAY_10)
    assert hold.code == code and hold.until is not None and hold.until > TUESDAY_10


def test_pacing_through_the_window() -> None:
    just_sent = MailboxUsage(
        cold_today=1,
        last_cold_at=TUESDAY_10 - timedelta(minutes=15),
        last_send_at=TUESDAY_10 - timedelta(minutes=15),
    )
    hold = mailbox_hold(replace(facts(pace=True, usage=just_sent)), [OFFICE], TUESDAY_10)
    assert hold.code == "paced" and hold.until is not None and hold.until > TUESDAY_10
