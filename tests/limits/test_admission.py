from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from mailfleet.clock import utc
from mailfleet.limits import (
    MailboxPolicy,
    MailboxUsage,
    RampPolicy,
    admit,
    cold_cap_for_day,
    floor_gap,
    gap_after,
)
from mailfleet.providers import MICROSOFT_365

NOW = utc(2026, 3, 2, 10)
MIDNIGHT = utc(2026, 3, 3)


def policy(**kw: object) -> MailboxPolicy:
    kw.setdefault("warmup_ratio", 0)  # the warmup ratio has its own tests
    return MailboxPolicy(mailbox_id=1, limits=MICROSOFT_365.limits, **kw)  # type: ignore[arg-type]


def test_ramp_climbs_from_five_to_ten_then_steady_band() -> None:
    p = policy(ramp_start=date(2026, 3, 1))
    caps = [cold_cap_for_day(p, date(2026, 3, 1) + timedelta(days=i)) for i in range(14)]
    assert caps[0] == 5 and caps[-1] == 10
    assert caps == sorted(caps)
    steady = {cold_cap_for_day(p, date(2026, 3, 15) + timedelta(days=i)) for i in range(60)}
    assert min(steady) >= 15 and max(steady) <= 25 and len(steady) > 3


def test_operator_cap_only_lowers_the_ramp() -> None:
    assert (
        cold_cap_for_day(policy(ramp_start=date(2026, 3, 1), daily_cap=30), date(2026, 3, 1)) == 5
    )
    assert cold_cap_for_day(policy(ramp_start=date(2026, 3, 1), daily_cap=3), date(2026, 3, 5)) == 3
    assert cold_cap_for_day(policy(daily_cap=20), date(2026, 3, 5)) == 20


def test_operator_cap_above_the_band_is_bounded_unless_the_ramp_is_overridden() -> None:
    # 40 a day is above the 15-25 practice band: the band's top wins...
    assert cold_cap_for_day(policy(daily_cap=40), date(2026, 3, 5)) == 25
    # ...unless the operator raises the band itself, explicitly.
    wide = RampPolicy(steady_max=50)
    assert cold_cap_for_day(policy(daily_cap=40, ramp=wide), date(2026, 3, 5)) == 40
    assert cold_cap_for_day(policy(daily_cap=-3), date(2026, 3, 5)) == 0


def test_daily_cap_refuses_until_local_midnight() -> None:
    verdict = admit(
        policy(daily_cap=20),
        MailboxUsage(cold_today=20),
        NOW,
        local_day=NOW.date(),
        next_local_midnight=MIDNIGHT,
    )
    assert not verdict.ok and verdict.retry_at == MIDNIGHT and "daily cold cap" in verdict.reason
    # Warmup does not count against the cold cap.
    assert admit(
        policy(daily_cap=20),
        MailboxUsage(cold_today=20),
        NOW,
        local_day=NOW.date(),
        next_local_midnight=MIDNIGHT,
        cold=False,
    ).ok


def test_gap_and_jitter_are_stable_per_send() -> None:
    p = policy(min_gap=timedelta(minutes=10), max_jitter=timedelta(minutes=5))
    last = NOW - timedelta(minutes=9)
    gap = gap_after(p, last)
    assert timedelta(minutes=10) <= gap <= timedelta(minutes=15)
    assert gap == gap_after(p, last)
    usage = MailboxUsage(last_send_at=last, last_send_id=42, last_cold_at=last)
    verdict = admit(p, usage, NOW, local_day=NOW.date(), next_local_midnight=MIDNIGHT)
    assert not verdict.ok and verdict.retry_at == last + gap
    assert "last cold send" in verdict.reason


def test_warmup_keeps_only_the_send_gap_and_does_not_reset_the_cold_gap() -> None:
    p = policy(min_gap=timedelta(minutes=10), max_jitter=timedelta(0))
    cold_at = NOW - timedelta(minutes=11)
    # A warmup send one minute ago: another send of any kind waits for the 2-minute floor.
    usage = MailboxUsage(last_send_at=NOW - timedelta(minutes=1), last_cold_at=cold_at)
    for cold in (True, False):
        verdict = admit(
            p, usage, NOW, local_day=NOW.date(), next_local_midnight=MIDNIGHT, cold=cold
        )
        assert not verdict.ok and verdict.retry_at == NOW + timedelta(minutes=1), cold
        assert verdict.reason == "minimum gap since the last send"
    # Three minutes after that warmup send, cold may go: its gap runs from the last cold.
    later = MailboxUsage(last_send_at=NOW - timedelta(minutes=3), last_cold_at=cold_at)
    assert admit(p, later, NOW, local_day=NOW.date(), next_local_midnight=MIDNIGHT).ok
    # Cold is still held by its own gap when the last cold send is recent, warmup is not.
    recent = MailboxUsage(
        last_send_at=NOW - timedelta(minutes=3), last_cold_at=NOW - timedelta(minutes=4)
    )
    verdict = admit(p, recent, NOW, local_day=NOW.date(), next_local_midnight=MIDNIGHT)
    assert not verdict.ok and verdict.retry_at == NOW + timedelta(minutes=6)
    assert admit(p, recent, NOW, local_day=NOW.date(), next_local_midnight=MIDNIGHT, cold=False).ok
    # An operator's minimum gap below the floor lowers the floor too.
    tight = policy(min_gap=timedelta(seconds=30), max_jitter=timedelta(0))
    assert floor_gap(tight) == timedelta(seconds=30)
    just = MailboxUsage(last_send_at=NOW - timedelta(seconds=31))
    assert admit(
        tight, just, NOW, local_day=NOW.date(), next_local_midnight=MIDNIGHT, cold=False
    ).ok


def test_provider_limits_hold() -> None:
    p = policy(min_gap=timedelta(0), max_jitter=timedelta(0))
    minute = MailboxUsage(
        messages_last_minute=30, oldest_in_last_minute=NOW - timedelta(seconds=20)
    )
    verdict = admit(p, minute, NOW, local_day=NOW.date(), next_local_midnight=MIDNIGHT, cold=False)
    assert not verdict.ok and verdict.retry_at == NOW + timedelta(seconds=40)
    day = MailboxUsage(recipients_24h=9_990, oldest_in_24h=NOW - timedelta(hours=20))
    assert admit(
        p, day, NOW, local_day=NOW.date(), next_local_midnight=MIDNIGHT, cold=False, recipients=10
    ).ok
    verdict = admit(
        p, day, NOW, local_day=NOW.date(), next_local_midnight=MIDNIGHT, cold=False, recipients=11
    )
    assert not verdict.ok and verdict.retry_at == NOW + timedelta(hours=4)
    assert not admit(
        p, MailboxUsage(), NOW, local_day=NOW.date(), next_local_midnight=MIDNIGHT, recipients=501
    ).ok


@given(
    cold=st.integers(0, 60),
    minute=st.integers(0, 40),
    recipients=st.integers(0, 12_000),
    cap=st.integers(1, 50),
)
def test_admitted_send_never_exceeds_any_limit(
    cold: int, minute: int, recipients: int, cap: int
) -> None:
    usage = MailboxUsage(
        cold_today=cold,
        messages_last_minute=minute,
        recipients_24h=recipients,
        oldest_in_last_minute=NOW,
        oldest_in_24h=NOW,
    )
    verdict = admit(
        policy(daily_cap=cap, ramp=RampPolicy()),
        usage,
        NOW,
        local_day=NOW.date(),
        next_local_midnight=MIDNIGHT,
    )
    if verdict.ok:
        assert cold + 1 <= min(cap, RampPolicy().steady_max)
        assert minute + 1 <= 30 and recipients + 1 <= 10_000
    else:
        assert verdict.reason
