"""The warmup ratio, pacing through the window, recipient-domain and shared caps."""

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from mailfleet.clock import utc
from mailfleet.limits import (
    DEFAULT_WARMUP_RATIO,
    MailboxPolicy,
    MailboxUsage,
    admit,
    allowance_grows_at,
    company_domain,
    paced_allowance,
    paced_at,
    recipient_domain,
    recipient_domain_room,
    tenant_recipient_limit,
    warmup_shortfall,
)
from mailfleet.providers import MICROSOFT_365

NOW = utc(2026, 3, 2, 10)
MIDNIGHT = utc(2026, 3, 3)
OPENS, CLOSES = utc(2026, 3, 2, 9), utc(2026, 3, 2, 17)


def policy(**kw: object) -> MailboxPolicy:
    kw.setdefault("daily_cap", 25)
    return MailboxPolicy(mailbox_id=1, limits=MICROSOFT_365.limits, **kw)  # type: ignore[arg-type]


def verdict(p: MailboxPolicy, usage: MailboxUsage):  # type: ignore[no-untyped-def]
    return admit(p, usage, NOW, local_day=NOW.date(), next_local_midnight=MIDNIGHT)


def test_warmup_ratio_is_on_by_default_and_holds_cold_back_with_the_reason() -> None:
    p = policy()
    assert p.warmup_ratio == DEFAULT_WARMUP_RATIO == 2
    refused = verdict(p, MailboxUsage(cold_today=0, warmup_today=1))
    assert not refused.ok and "warmup ratio 2:1" in refused.reason
    assert "1 more warmup" in refused.reason
    assert refused.retry_at is None  # it changes when warmup is recorded, not at an instant
    assert verdict(p, MailboxUsage(cold_today=0, warmup_today=2)).ok
    assert not verdict(p, MailboxUsage(cold_today=3, warmup_today=7)).ok  # 4th needs 8
    assert verdict(p, MailboxUsage(cold_today=3, warmup_today=8)).ok


def test_warmup_ratio_is_off_only_when_set_to_zero_and_is_configurable() -> None:
    assert verdict(policy(warmup_ratio=0), MailboxUsage()).ok
    assert warmup_shortfall(policy(warmup_ratio=3), MailboxUsage(cold_today=1, warmup_today=4)) == 2
    # Warmup itself is never held to the ratio.
    assert admit(
        policy(),
        MailboxUsage(),
        NOW,
        local_day=NOW.date(),
        next_local_midnight=MIDNIGHT,
        cold=False,
    ).ok


@given(
    cold=st.integers(0, 40), warmup=st.integers(0, 120), ratio=st.sampled_from([0, 1, 1.5, 2, 3])
)
def test_an_admitted_cold_send_keeps_the_days_ratio(cold: int, warmup: int, ratio: float) -> None:
    p = policy(warmup_ratio=ratio, daily_cap=100)
    if verdict(p, MailboxUsage(cold_today=cold, warmup_today=warmup)).ok and ratio:
        assert warmup >= ratio * (cold + 1)


def test_recipient_domain_cap_per_mailbox() -> None:
    usage = MailboxUsage(cold_by_recipient_domain={"acme.com": 5})
    assert not recipient_domain_room(policy(), usage, "acme.com")
    assert recipient_domain_room(policy(), usage, "other.com")
    assert recipient_domain_room(policy(recipient_domain_daily=None), usage, "acme.com")
    assert recipient_domain_room(policy(), usage, "")  # unknown domain: nothing to count


def test_domains_and_companies() -> None:
    assert recipient_domain("Ann@ACME.com") == "acme.com"
    assert company_domain("ann@acme.com") == "acme.com"
    assert company_domain("ann@gmail.com") is None  # free mail is no company
    assert recipient_domain("nobody") == ""


def test_tenant_limit_follows_microsofts_formula() -> None:
    assert tenant_recipient_limit(1) == 10_000
    assert tenant_recipient_limit(100) == int(500 * 100**0.7 + 9_500)
    assert tenant_recipient_limit(40, trial=True) == 5_000


def test_pace_spreads_the_days_sends_evenly_through_the_window() -> None:
    # 20 sends in 8 hours: about one every 8h/21, the first not at 09:00 sharp.
    first = paced_at(last_cold_at=None, remaining=20, opens=OPENS, closes=CLOSES, jitter=0.5)
    assert first == OPENS + (CLOSES - OPENS) / 21
    later = paced_at(last_cold_at=first, remaining=19, opens=OPENS, closes=CLOSES, jitter=0.5)
    assert later - first == first - OPENS  # on schedule, the spacing stays the same
    # Yesterday's last send does not delay today's first.
    assert (
        paced_at(last_cold_at=OPENS - timedelta(hours=14), remaining=5, opens=OPENS, closes=CLOSES)
        == OPENS + (CLOSES - OPENS) / 6
    )


@given(remaining=st.integers(1, 50), jitter=st.floats(0, 0.999), offset=st.integers(0, 479))
def test_the_next_paced_send_always_fits_before_the_window_closes(
    remaining: int, jitter: float, offset: int
) -> None:
    last = OPENS + timedelta(minutes=offset)
    at = paced_at(last_cold_at=last, remaining=remaining, opens=OPENS, closes=CLOSES, jitter=jitter)
    assert last < at < CLOSES


def test_campaign_allowance_grows_through_the_window() -> None:
    assert paced_allowance(cap=40, opens=OPENS, closes=CLOSES, now=OPENS) == 1
    assert paced_allowance(cap=40, opens=OPENS, closes=CLOSES, now=utc(2026, 3, 2, 13)) == 21
    assert paced_allowance(cap=40, opens=OPENS, closes=CLOSES, now=CLOSES) == 40
    grows = allowance_grows_at(cap=40, sent=21, opens=OPENS, closes=CLOSES)
    assert paced_allowance(cap=40, opens=OPENS, closes=CLOSES, now=grows) == 22
    assert (
        paced_allowance(cap=40, opens=OPENS, closes=CLOSES, now=grows - timedelta(seconds=1)) == 21
    )
