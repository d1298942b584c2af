"""Pure warmup policy: pairing, ramp and ratio, spreading, content, marker, receiver, caps."""

from __future__ import annotations

import email
import email.policy
import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailfleet.content.mime import OutgoingMessage, build_message
from mailfleet.limits import MailboxPolicy, cold_cap_for_day
from mailfleet.providers import get_preset
from mailfleet.warmup import (
    CapPolicy,
    Observation,
    Peer,
    Placement,
    RampSettings,
    WarmupMarker,
    capped_policy,
    continuation,
    daily_target,
    decide_receipt,
    has_link,
    health_score,
    may_pair,
    next_cold_cap_factor,
    opening,
    peers_for_day,
    placement_stats,
    plan_day,
    ramp_target,
    spread,
    stamp_body,
)

DAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)

peers = st.lists(
    st.builds(
        Peer,
        mailbox_id=st.integers(1, 60),
        address=st.builds(
            lambda n, d: f"u{n}@{d}",
            st.integers(0, 9),
            st.sampled_from(["a.t", "b.t", "c.t", "d.t"]),
        ),
        workspace_id=st.integers(1, 2),
        provider=st.sampled_from(["microsoft365", "google", "generic"]),
        tenant=st.sampled_from([None, "t1", "t2", "T1"]),
        shared_pool=st.booleans(),
    ),
    min_size=1,
    max_size=25,
    unique_by=lambda p: p.mailbox_id,
)


@given(pool=peers, day_offset=st.integers(0, 60), count=st.integers(0, 50), seed=st.integers(0, 9))
def test_pairs_never_share_a_domain_or_tenant_and_stay_in_the_workspace(
    pool: list[Peer], day_offset: int, count: int, seed: int
) -> None:
    sender = pool[0]
    chosen = peers_for_day(sender, pool, DAY + timedelta(days=day_offset), count, seed=seed)
    assert len(chosen) in (0, count)
    for peer in chosen:
        assert peer.mailbox_id != sender.mailbox_id
        assert peer.domain != sender.domain
        if sender.tenant and peer.tenant:
            assert sender.tenant.lower() != peer.tenant.lower()
        if peer.workspace_id != sender.workspace_id:
            assert sender.shared_pool and peer.shared_pool


def test_pairs_rotate_over_days_and_alternate_providers() -> None:
    sender = Peer(1, "me@home.t", 1, "microsoft365", "t-home")
    pool = [sender] + [
        Peer(10 + i, f"p{i}@d{i}.t", 1, ("google", "microsoft365", "generic")[i % 3], f"t{i}")
        for i in range(12)
    ]
    seen: set[int] = set()
    for offset in range(7):
        day = DAY + timedelta(days=offset)
        today = peers_for_day(sender, pool, day, 4, seed=3)
        assert today == peers_for_day(sender, pool, day, 4, seed=3)  # deterministic
        assert today[0].provider != "microsoft365"  # another provider first
        assert len({p.provider for p in today[:3]}) == 3
        seen.update(p.mailbox_id for p in today)
    assert len(seen) >= 10  # many peers over a week
    assert peers_for_day(sender, pool, DAY, 4, seed=3) != peers_for_day(
        sender, pool, DAY, 4, seed=4
    )


def test_same_tenant_is_never_a_peer_whatever_the_case() -> None:
    a = Peer(1, "a@x.t", 1, "microsoft365", "Contoso.onmicrosoft.com")
    b = Peer(2, "b@y.t", 1, "microsoft365", "contoso.onmicrosoft.com")
    assert not may_pair(a, b)
    assert not may_pair(a, Peer(3, "c@X.T", 1, "google"))


@given(
    start=st.integers(0, 10),
    step=st.integers(0, 5),
    ceiling=st.integers(10, 60),
    age=st.integers(0, 90),
    cold=st.integers(0, 60),
    ratio=st.sampled_from([0.0, 1.0, 2.0, 2.5, 3.0]),
    weekdays=st.booleans(),
)
def test_daily_target_keeps_the_ratio_and_the_ramp_band(
    start: int, step: int, ceiling: int, age: int, cold: int, ratio: float, weekdays: bool
) -> None:
    ramp = RampSettings(start=start, step=step, ceiling=ceiling, weekdays_only=weekdays)
    day = DAY + timedelta(days=age)
    target = daily_target(ramp, DAY, day, cold=cold, ratio=ratio, seed=7)
    assert target >= ratio * cold - 1e-9
    plain = ramp_target(ramp, DAY, day, seed=7)
    assert plain <= round(ceiling * 1.1) + 1
    if weekdays and day.weekday() >= 5:
        assert plain == 0
    assert target >= plain
    assert target == plain or target < ratio * cold + 1  # raised no further than needed


def test_ramp_defaults_start_at_five_grow_by_two_and_stop_at_forty() -> None:
    ramp = RampSettings(jitter=0)
    assert [ramp_target(ramp, DAY, DAY + timedelta(days=d)) for d in range(4)] == [5, 7, 9, 11]
    assert ramp_target(ramp, DAY, DAY + timedelta(days=200)) == 40
    assert ramp_target(ramp, DAY, DAY - timedelta(days=1)) == 0
    jittered = {
        ramp_target(RampSettings(), DAY, DAY + timedelta(days=d), seed=1) for d in range(30, 60)
    }
    assert min(jittered) >= 36 and max(jittered) <= 44 and len(jittered) > 1


@given(
    count=st.integers(1, 80),
    seed=st.integers(0, 99),
    tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
)
def test_plan_spreads_sends_over_the_local_day_with_gaps(count: int, seed: int, tz: str) -> None:
    ramp = RampSettings()
    times = spread(count, DAY, tz, ramp, seed=seed)
    assert len(times) == count and times == sorted(times)
    minimum = timedelta(minutes=(ramp.day_end_minute - ramp.day_start_minute) / count * 0.2)
    assert all(b - a >= minimum - timedelta(seconds=1) for a, b in itertools.pairwise(times))
    from zoneinfo import ZoneInfo

    for t in times:
        local = t.astimezone(ZoneInfo(tz))
        assert local.date() == DAY and 7 <= local.hour < 21


def test_plan_day_pairs_every_slot_and_is_empty_without_peers() -> None:
    me = Peer(1, "me@a.t", 1, "microsoft365", "t1")
    pool = [me, Peer(2, "x@b.t", 1, "google", "t2"), Peer(3, "y@c.t", 1, "generic")]
    plan = plan_day(me, pool, DAY, "UTC", 12, RampSettings(), seed=1)
    assert [p.slot for p in plan] == list(range(12))
    assert {p.peer_id for p in plan} == {2, 3}
    assert plan_day(me, [me, Peer(4, "z@a.t", 1, "google")], DAY, "UTC", 5, RampSettings()) == []


@given(seed=st.text(min_size=1, max_size=20), topic=st.integers(0, 100))
def test_content_is_deterministic_natural_and_free_of_links(seed: str, topic: int) -> None:
    names = {"sender_name": "Ann Lee", "sender": "ann@a.t", "peer_name": "", "peer": "bob.k@b.t"}
    first = opening(seed, topic, **names)
    assert first == opening(seed, topic, **names)
    later = continuation(seed, topic, reply=True, **names)
    for text in (first.subject, first.body, later):
        assert not has_link(text)
        assert "{" not in text and "$" not in text and "|" not in text
    assert "Ann" in first.body and "Bob" in first.body
    assert 2 <= len(first.subject.split()) <= 10


def test_content_varies_with_the_seed() -> None:
    names = {"sender_name": "A", "sender": "a@a.t", "peer_name": "B", "peer": "b@b.t"}
    bodies = {opening(str(i), i, **names).body for i in range(40)}
    subjects = {opening(str(i), i, **names).subject for i in range(40)}
    assert len(bodies) > 30 and len(subjects) > 20


def test_marker_is_in_a_header_and_the_body_and_peers_recognise_it() -> None:
    marker = WarmupMarker(prefix="acme-", header="X-Entity-Ref-ID")
    token = marker.token("<abc@a.t>")
    assert token.startswith("acme-") and len(token) == 13 and token == marker.token("<abc@a.t>")
    raw = build_message(
        OutgoingMessage(
            from_address="a@a.t",
            from_name=None,
            to_address="b@b.t",
            to_name=None,
            subject="Hello",
            text=stamp_body("Hi Bob", token),
            message_id="<abc@a.t>",
            date=NOW,
            extra_headers={marker.header: token},
        )
    ).as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert marker.find(parsed) == token
    del parsed[marker.header]
    assert marker.find(parsed) == token  # the body token alone is enough
    assert WarmupMarker().find(parsed) is None  # another installation's marker is not ours


@pytest.mark.parametrize(
    ("prefix", "header"),
    [("ab", "X-Ref"), ("mf wu", "X-Ref"), ("mfwu-", "Subject"), ("mfwu-", "X Ref")],
)
def test_a_bad_marker_configuration_is_refused_with_the_reason(prefix: str, header: str) -> None:
    with pytest.raises(ValueError, match="warmup marker"):
        WarmupMarker(prefix=prefix, header=header)


def test_receiver_replies_to_about_thirty_percent_after_a_delay_and_rescues_junk() -> None:
    actions = [decide_receipt(f"<m{i}@a.t>", Placement.JUNK, NOW) for i in range(2000)]
    replies = [a for a in actions if a.reply_at is not None]
    assert 0.26 < len(replies) / len(actions) < 0.34
    assert all(
        timedelta(minutes=20) <= a.reply_at - NOW <= timedelta(hours=5)
        for a in replies
        if a.reply_at
    )
    assert all(a.rescue and a.mark_read for a in actions)
    assert 0.2 < sum(a.flag for a in actions) / len(actions) < 0.3
    inbox = decide_receipt("<m1@a.t>", Placement.INBOX, NOW)
    assert not inbox.rescue
    long_thread = decide_receipt("<m1@a.t>", Placement.INBOX, NOW, thread_messages=6)
    assert long_thread.reply_at is None


def _obs(
    hours_ago: float, placement: Placement | None, replied: bool = False, bounced: bool = False
) -> Observation:
    return Observation(NOW - timedelta(hours=hours_ago), placement, replied, bounced)


def test_placement_windows_health_and_rates() -> None:
    seen = [_obs(h, Placement.INBOX, replied=h % 3 == 0) for h in range(0, 24 * 28, 12)]
    seen += [_obs(h, Placement.JUNK) for h in range(1, 24 * 7, 24)]
    seen.append(_obs(5, None, bounced=True))
    week = placement_stats(seen, NOW, timedelta(days=7))
    month = placement_stats(seen, NOW, timedelta(days=28))
    assert week.junk == 7 and month.junk == 7
    assert week.junk_share is not None and month.junk_share is not None
    assert week.junk_share > month.junk_share
    assert week.bounce_rate and week.bounce_rate > 0
    good = health_score(
        placement_stats([_obs(1, Placement.INBOX, True)] * 10, NOW, timedelta(days=7))
    )
    bad = health_score(week)
    assert good is not None and bad is not None and good > bad
    assert health_score(placement_stats([], NOW, timedelta(days=7))) is None


def test_cold_cap_is_cut_on_bad_placement_and_restored_step_by_step() -> None:
    policy = CapPolicy()
    junk = [_obs(h, Placement.JUNK) for h in range(1, 10)]
    cut = next_cold_cap_factor(1.0, None, junk, NOW, policy)
    assert cut.changed and cut.factor == policy.floor and "Junk" in cut.reason
    half = [_obs(h, Placement.JUNK if h % 3 == 0 else Placement.INBOX) for h in range(1, 10)]
    assert next_cold_cap_factor(1.0, None, half, NOW, policy).factor == policy.cut_to
    assert not next_cold_cap_factor(0.2, None, junk, NOW, policy).changed  # already cut
    clean = [_obs(h, Placement.INBOX) for h in range(1, 10)]
    too_soon = next_cold_cap_factor(0.2, NOW - timedelta(hours=3), clean, NOW, policy)
    assert not too_soon.changed
    step = next_cold_cap_factor(0.2, NOW - timedelta(days=1), clean, NOW, policy)
    assert step.changed and step.factor == pytest.approx(0.45) and "restored" in step.reason
    assert not next_cold_cap_factor(1.0, None, clean, NOW, policy).changed
    assert not next_cold_cap_factor(1.0, None, junk[:2], NOW, policy).changed  # too few to judge


def test_capped_policy_lowers_the_cold_cap_of_the_day_only() -> None:
    policy = MailboxPolicy(mailbox_id=1, limits=get_preset("microsoft365").limits)
    full = cold_cap_for_day(policy, DAY)
    assert cold_cap_for_day(capped_policy(policy, 0.5, DAY), DAY) == full // 2
    assert capped_policy(policy, 1.0, DAY) is policy
    ramping = MailboxPolicy(mailbox_id=1, limits=policy.limits, ramp_start=DAY, daily_cap=3)
    assert cold_cap_for_day(capped_policy(ramping, 0.5, DAY), DAY) == 1  # floor(3 x 0.5)
