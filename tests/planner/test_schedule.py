"""The planner, alone and driven over simulated days by a virtual clock."""

import itertools
from collections import defaultdict
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from mailfleet.clock import VirtualClock, utc
from mailfleet.limits import MailboxPolicy, MailboxUsage
from mailfleet.planner import (
    CampaignState,
    DueEnrollment,
    MailboxState,
    SendingWindow,
    local_day,
    plan_sends,
)
from mailfleet.providers import MICROSOFT_365

ALL_DAY = SendingWindow(days=frozenset(range(1, 8)), start_minute=0, end_minute=24 * 60)
NOW = utc(2026, 3, 2, 10)


def box(i: int, cap: int = 20, gap: int = 10, **usage: object) -> MailboxState:
    policy = MailboxPolicy(
        mailbox_id=i,
        limits=MICROSOFT_365.limits,
        daily_cap=cap,
        min_gap=timedelta(minutes=gap),
        max_jitter=timedelta(minutes=gap / 2),
        warmup_ratio=0,  # these tests are about other limits
    )
    return MailboxState(i, policy, MailboxUsage(**usage))  # type: ignore[arg-type]


def test_first_steps_rotate_to_least_used_mailbox_one_per_tick() -> None:
    campaign = CampaignState(1, ALL_DAY, 2, mailbox_ids=frozenset({1, 2, 3}))
    boxes = [box(1, cold_today=5), box(2, cold_today=1), box(3, cold_today=3)]
    due = [DueEnrollment(i, 1, 1, NOW, None) for i in range(10)]
    plan = plan_sends(NOW, [campaign], boxes, due)
    assert [s.mailbox_id for s in plan.sends] == [2, 3, 1]
    assert len({s.enrollment_id for s in plan.sends}) == 3


def test_follow_up_waits_for_its_thread_mailbox() -> None:
    campaign = CampaignState(1, ALL_DAY, 2, mailbox_ids=frozenset({1, 2}))
    just = NOW - timedelta(minutes=2)
    busy = box(1, last_send_at=just, last_send_id=9, last_cold_at=just)
    plan = plan_sends(NOW, [campaign], [busy, box(2)], [DueEnrollment(7, 1, 2, NOW, 1)])
    assert plan.sends == []
    assert plan.wake_at is not None and plan.wake_at > NOW
    assert "minimum gap" in plan.waiting[7]


def test_follow_ups_go_before_new_threads() -> None:
    campaign = CampaignState(1, ALL_DAY, 2, mailbox_ids=frozenset({1}))
    due = [
        DueEnrollment(1, 1, 1, NOW - timedelta(hours=5), None),
        DueEnrollment(2, 1, 2, NOW - timedelta(hours=1), 1),
    ]
    plan = plan_sends(NOW, [campaign], [box(1)], due)
    assert [s.enrollment_id for s in plan.sends] == [2]


def test_closed_window_and_campaign_cap_wait_with_a_wake_time() -> None:
    office = SendingWindow(timezone="UTC", start_minute=9 * 60, end_minute=17 * 60)
    campaign = CampaignState(1, office, 1, mailbox_ids=frozenset({1}))
    evening = utc(2026, 3, 2, 18)
    plan = plan_sends(evening, [campaign], [box(1)], [DueEnrollment(1, 1, 1, evening, None)])
    assert plan.sends == [] and plan.wake_at == utc(2026, 3, 3, 9)
    capped = CampaignState(1, ALL_DAY, 1, daily_cap=5, sent_today=5, mailbox_ids=frozenset({1}))
    plan = plan_sends(NOW, [capped], [box(1)], [DueEnrollment(1, 1, 1, NOW, None)])
    assert plan.sends == [] and plan.wake_at == utc(2026, 3, 3)


def test_inactive_mailbox_is_never_chosen() -> None:
    campaign = CampaignState(1, ALL_DAY, 1, mailbox_ids=frozenset({1, 2}))
    paused = MailboxState(1, box(1).policy, MailboxUsage(), active=False)
    plan = plan_sends(NOW, [campaign], [paused, box(2)], [DueEnrollment(1, 1, 1, NOW, None)])
    assert [s.mailbox_id for s in plan.sends] == [2]


def simulate(
    days: int, leads: int, caps: list[int], gap: int, start: datetime
) -> dict[int, list[datetime]]:
    """Drive the planner with a virtual clock, recording sends like the store would."""
    clock = VirtualClock(start)
    sent: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    campaign = CampaignState(
        1,
        SendingWindow(
            timezone="UTC", days=frozenset(range(1, 8)), start_minute=8 * 60, end_minute=18 * 60
        ),
        1,
        mailbox_ids=frozenset(range(len(caps))),
    )
    pending = list(range(leads))
    end = start + timedelta(days=days)
    counter = 0
    while clock.now() < end and pending:
        now = clock.now()
        day, _ = local_day(now, "UTC")
        states = []
        for i, cap in enumerate(caps):
            history = sent[i]
            today = [t for t, _ in history if t.date() == day]
            last = history[-1] if history else None
            states.append(
                box(
                    i,
                    cap=cap,
                    gap=gap,
                    cold_today=len(today),
                    last_send_at=last[0] if last else None,
                    last_cold_at=last[0] if last else None,
                    last_send_id=last[1] if last else 0,
                )
            )
        due = [DueEnrollment(e, 1, 1, start, None) for e in pending[:50]]
        plan = plan_sends(now, [campaign], states, due)
        for s in plan.sends:
            counter += 1
            sent[s.mailbox_id].append((now, counter))
            pending.remove(s.enrollment_id)
        if not plan.sends:
            clock.advance_to(plan.wake_at or end)
    return {i: [t for t, _ in v] for i, v in sent.items()}


def test_virtual_days_respect_daily_cap_gap_and_window() -> None:
    sends = simulate(days=3, leads=200, caps=[20, 20, 20], gap=10, start=utc(2026, 3, 2, 7))
    for times in sends.values():
        per_day: dict[object, int] = defaultdict(int)
        for t in times:
            per_day[t.date()] += 1
            assert 8 <= t.hour < 18
        assert max(per_day.values()) <= 20
        assert all(b - a >= timedelta(minutes=10) for a, b in itertools.pairwise(times))
    assert sum(len(v) for v in sends.values()) == 180  # 3 days x 3 mailboxes x 20


@settings(max_examples=25, deadline=None)
@given(
    caps=st.lists(st.integers(1, 15), min_size=1, max_size=4),
    gap=st.integers(1, 30),
    leads=st.integers(1, 80),
)
def test_planner_never_breaks_cap_or_gap(caps: list[int], gap: int, leads: int) -> None:
    sends = simulate(days=2, leads=leads, caps=caps, gap=gap, start=utc(2026, 3, 2, 7))
    assert sum(len(v) for v in sends.values()) <= leads
    for i, times in sends.items():
        per_day: dict[object, int] = defaultdict(int)
        for t in times:
            per_day[t.date()] += 1
        assert max(per_day.values(), default=0) <= caps[i]
        assert all(b - a >= timedelta(minutes=gap) for a, b in itertools.pairwise(times))
