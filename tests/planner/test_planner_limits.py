"""The planner never breaks a limit: property tests over simulated days, and the new rules alone.

``Fleet`` keeps a history of sends the way the store would and builds the planner's
input from it at every instant, like the engine's tick; the checks then read that
history, not the planner's own reasoning.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailfleet.clock import utc
from mailfleet.limits import (
    FleetPolicy,
    FleetState,
    MailboxPolicy,
    MailboxUsage,
    SharedCap,
    cold_cap_for_day,
)
from mailfleet.planner import (
    CampaignState,
    DueEnrollment,
    MailboxState,
    SendingWindow,
    local_day,
    plan_sends,
)
from mailfleet.providers import MICROSOFT_365

START = utc(2026, 3, 2, 6)  # a Monday
DAY = timedelta(days=1)
IDLE = timedelta(minutes=15)
ZONES = ("UTC", "America/New_York", "Asia/Tokyo")


@dataclass
class Box:
    id: int
    cap: int
    gap: int  # minutes
    tz: str
    warmup_ratio: float
    warmup_per_hour: float  # warmup sends the (absent) warmup engine makes, from local midnight
    domain: int
    per_domain: int | None

    def policy(self) -> MailboxPolicy:
        return MailboxPolicy(
            mailbox_id=self.id,
            limits=MICROSOFT_365.limits,
            daily_cap=self.cap,
            min_gap=timedelta(minutes=self.gap),
            max_jitter=timedelta(minutes=self.gap / 2),
            warmup_ratio=self.warmup_ratio,
            recipient_domain_daily=self.per_domain,
        )

    def warmup_today(self, now: datetime) -> int:
        day_start = local_day(now, self.tz)[1] - DAY
        return int((now - day_start).total_seconds() / 3600 * self.warmup_per_hour)


@dataclass(frozen=True)
class Sent:
    at: datetime
    mailbox: int
    enrollment: int
    step: int
    domain: str
    send_id: int


@dataclass
class Lead:
    id: int
    domain: str
    tz: str | None
    step: int = 1
    due: datetime = START
    mailbox: int | None = None
    done: bool = False


@dataclass
class Fleet:
    boxes: list[Box]
    window: SendingWindow
    lead_tz: bool
    campaign_cap: int | None
    steps: int
    delay: timedelta
    domain_caps: dict[int, int]
    tenant_cap: int | None
    workspace_per_domain: int | None
    leads: list[Lead]
    sent: list[Sent] = field(default_factory=list)

    def usage(self, box: Box, now: datetime, domains: set[str]) -> MailboxUsage:
        day_start = local_day(now, box.tz)[1] - DAY
        mine = [s for s in self.sent if s.mailbox == box.id]
        today = [s for s in mine if s.at >= day_start]
        last_day = [s for s in mine if s.at > now - DAY]
        minute = [s for s in mine if s.at > now - timedelta(minutes=1)]
        last = mine[-1] if mine else None
        return MailboxUsage(
            cold_today=len(today),
            messages_last_minute=len(minute),
            oldest_in_last_minute=minute[0].at if minute else None,
            messages_24h=len(last_day),
            recipients_24h=len(last_day),
            oldest_in_24h=last_day[0].at if last_day else None,
            last_send_at=last.at if last else None,
            last_send_id=last.send_id if last else 0,
            warmup_today=box.warmup_today(now),
            last_cold_at=last.at if last else None,
            cold_by_recipient_domain=dict(Counter(s.domain for s in today if s.domain in domains)),
        )

    def fleet_state(self, now: datetime) -> FleetState:
        recent = [s for s in self.sent if s.at > now - DAY]
        caps: dict[str, SharedCap] = {}
        for domain, limit in self.domain_caps.items():
            used = [s for s in recent if self.box(s.mailbox).domain == domain]
            caps[f"d{domain}"] = SharedCap(
                f"d{domain}",
                f"domain {domain}",
                limit,
                len(used),
                used[0].at + DAY if used else None,
            )
        if self.tenant_cap is not None:
            caps["t"] = SharedCap(
                "t", "tenant", self.tenant_cap, len(recent), recent[0].at + DAY if recent else None
            )
        return FleetState(
            FleetPolicy(recipient_domain_per_workspace=self.workspace_per_domain),
            caps,
            {(1, d): n for d, n in Counter(s.domain for s in recent).items()},
        )

    def box(self, mailbox_id: int) -> Box:
        return self.boxes[mailbox_id]

    def run(self, days: int) -> None:
        now, end, counter = START, START + days * DAY, 0
        campaign_tz = self.window.timezone
        while now < end:
            due_leads = [lead for lead in self.leads if not lead.done and lead.due <= now]
            domains = {lead.domain for lead in due_leads}
            states = [
                MailboxState(
                    b.id,
                    b.policy(),
                    self.usage(b, now, domains),
                    b.tz,
                    shared=tuple(
                        [f"d{b.domain}"] * (b.domain in self.domain_caps)
                        + ["t"] * (self.tenant_cap is not None)
                    ),
                )
                for b in self.boxes
            ]
            day_start = local_day(now, campaign_tz)[1] - DAY
            campaign = CampaignState(
                1,
                self.window,
                self.steps,
                use_lead_timezone=self.lead_tz,
                daily_cap=self.campaign_cap,
                sent_today=sum(1 for s in self.sent if s.at >= day_start),
                mailbox_ids=frozenset(b.id for b in self.boxes),
                workspace_id=1,
            )
            due = [
                DueEnrollment(
                    lead.id,
                    1,
                    lead.step,
                    lead.due,
                    lead.mailbox,
                    lead.tz,
                    recipient_domain=lead.domain,
                )
                for lead in due_leads
            ]
            plan = plan_sends(now, [campaign], states, due, self.fleet_state(now))
            assert len({s.mailbox_id for s in plan.sends}) == len(plan.sends)
            for planned in plan.sends:
                counter += 1
                lead = self.leads[planned.enrollment_id]
                self.sent.append(
                    Sent(now, planned.mailbox_id, lead.id, lead.step, lead.domain, counter)
                )
                lead.mailbox = planned.mailbox_id
                if lead.step == self.steps:
                    lead.done = True
                else:
                    lead.step += 1
                    lead.due = now + self.delay
            if not plan.sends:
                wake = plan.wake_at or now + IDLE
                now = max(min(wake, now + IDLE), now + timedelta(seconds=1))


@st.composite
def fleets(draw: st.DrawFn) -> Fleet:
    n = draw(st.integers(1, 4))
    domains = draw(st.integers(1, 3))
    boxes = [
        Box(
            id=i,
            cap=draw(st.integers(1, 12)),
            gap=draw(st.integers(1, 40)),
            tz=draw(st.sampled_from(ZONES)),
            warmup_ratio=draw(st.sampled_from([0.0, 2.0])),
            warmup_per_hour=draw(st.sampled_from([0.5, 1.0, 3.0])),
            domain=draw(st.integers(0, domains - 1)),
            per_domain=draw(st.one_of(st.none(), st.integers(1, 5))),
        )
        for i in range(n)
    ]
    start = draw(st.integers(0, 20)) * 60
    window = SendingWindow(
        timezone=draw(st.sampled_from(ZONES)),
        days=frozenset(draw(st.sets(st.integers(1, 7), min_size=1))),
        start_minute=start,
        end_minute=draw(st.integers(start + 60, 24 * 60)),
    )
    lead_tz = draw(st.booleans())
    recipient_domains = [f"r{i}.example" for i in range(draw(st.integers(1, 4)))]
    leads = [
        Lead(
            id=i,
            domain=draw(st.sampled_from(recipient_domains)),
            tz=draw(st.sampled_from(ZONES)) if lead_tz else None,
        )
        for i in range(draw(st.integers(1, 60)))
    ]
    return Fleet(
        boxes=boxes,
        window=window,
        lead_tz=lead_tz,
        campaign_cap=draw(st.one_of(st.none(), st.integers(1, 30))),
        steps=draw(st.integers(1, 2)),
        delay=timedelta(hours=draw(st.sampled_from([1, 24]))),
        domain_caps={d: draw(st.integers(1, 20)) for d in range(domains) if draw(st.booleans())},
        tenant_cap=draw(st.one_of(st.none(), st.integers(3, 40))),
        workspace_per_domain=draw(st.one_of(st.none(), st.integers(1, 10))),
        leads=leads,
    )


def rolling_max(times: list[datetime], span: timedelta) -> int:
    """The most sends in any window of ``span`` ending at a send."""
    return max((sum(t - span < u <= t for u in times) for t in times), default=0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets())
def test_the_planner_never_breaks_any_limit(fleet: Fleet) -> None:
    fleet.run(days=3)
    sent = fleet.sent
    by_box: dict[int, list[Sent]] = defaultdict(list)
    for s in sent:
        by_box[s.mailbox].append(s)
    for box_id, mine in by_box.items():
        box = fleet.box(box_id)
        policy = box.policy()
        per_day: Counter[date] = Counter(local_day(s.at, box.tz)[0] for s in mine)
        for day, count in per_day.items():
            assert count <= cold_cap_for_day(policy, day), "daily cold cap / ramp"
        for a, b in itertools.pairwise(mine):
            assert b.at - a.at >= timedelta(minutes=box.gap), "minimum gap"
        times = [s.at for s in mine]
        assert rolling_max(times, timedelta(minutes=1)) <= 30, "30 a minute"
        assert rolling_max(times, DAY) <= 10_000, "recipients in 24 hours"
        seen: Counter[date] = Counter()
        for s in mine:
            day = local_day(s.at, box.tz)[0]
            seen[day] += 1
            if box.warmup_ratio:
                assert box.warmup_today(s.at) >= box.warmup_ratio * seen[day], "warmup ratio"
        if box.per_domain is not None:
            per = Counter((local_day(s.at, box.tz)[0], s.domain) for s in mine)
            assert max(per.values()) <= box.per_domain, "recipient domain per mailbox"
    for domain in {s.domain for s in sent}:
        times = [s.at for s in sent if s.domain == domain]
        if fleet.workspace_per_domain is not None:
            assert rolling_max(times, DAY) <= fleet.workspace_per_domain, "recipient domain"
    for d, limit in fleet.domain_caps.items():
        times = [s.at for s in sent if fleet.box(s.mailbox).domain == d]
        assert rolling_max(times, DAY) <= limit, "sending domain cap"
    if fleet.tenant_cap is not None:
        assert rolling_max([s.at for s in sent], DAY) <= fleet.tenant_cap, "tenant cap"
    if fleet.campaign_cap is not None:
        days = Counter(local_day(s.at, fleet.window.timezone)[0] for s in sent)
        assert max(days.values(), default=0) <= fleet.campaign_cap, "campaign cap"
    leads = {lead.id: lead for lead in fleet.leads}
    assert len({(s.enrollment, s.step) for s in sent}) == len(sent), "a step twice"
    thread: dict[int, Sent] = {}
    for s in sent:
        lead = leads[s.enrollment]
        assert fleet.window.is_open(s.at, lead.tz), "outside the window"
        if s.step > 1:
            first = thread[s.enrollment]
            assert s.mailbox == first.mailbox, "a follow-up left its thread's mailbox"
            assert s.at - first.at >= fleet.delay, "a follow-up came early"
        else:
            thread[s.enrollment] = s


def box_state(i: int, *, cap: int = 20, cold: int = 0, **kw: object) -> MailboxState:
    policy = MailboxPolicy(
        mailbox_id=i,
        limits=MICROSOFT_365.limits,
        daily_cap=cap,
        min_gap=timedelta(minutes=5),
        max_jitter=timedelta(0),
        warmup_ratio=0,
    )
    return MailboxState(i, policy, MailboxUsage(cold_today=cold, **kw))  # type: ignore[arg-type]


OFFICE = SendingWindow(
    timezone="UTC", days=frozenset(range(1, 8)), start_minute=540, end_minute=1020
)
NINE = utc(2026, 3, 2, 9)


def test_first_steps_go_to_the_mailbox_with_the_most_capacity_left() -> None:
    campaign = CampaignState(1, OFFICE, 1, mailbox_ids=frozenset({1, 2, 3}))
    boxes = [box_state(1, cap=10, cold=2), box_state(2, cap=25, cold=10), box_state(3, cap=5)]
    due = [DueEnrollment(i, 1, 1, NINE, None) for i in range(3)]
    plan = plan_sends(NINE + timedelta(hours=4), [campaign], boxes, due)
    # Left: 8, 15 and 5: the fullest capacity goes first, whatever was sent.
    assert [s.mailbox_id for s in plan.sends] == [2, 1, 3]


def test_a_day_of_sends_is_spread_through_the_window_not_burst_at_nine() -> None:
    campaign = CampaignState(1, OFFICE, 1, mailbox_ids=frozenset({1}))
    fleet = Fleet(
        boxes=[
            Box(
                0,
                cap=16,
                gap=2,
                tz="UTC",
                warmup_ratio=0,
                warmup_per_hour=0,
                domain=0,
                per_domain=None,
            )
        ],
        window=OFFICE,
        lead_tz=False,
        campaign_cap=None,
        steps=1,
        delay=DAY,
        domain_caps={},
        tenant_cap=None,
        workspace_per_domain=None,
        leads=[Lead(i, "r.example", None) for i in range(100)],
    )
    assert campaign  # the same window as the fleet's campaign
    fleet.run(days=1)
    times = [s.at for s in fleet.sent]
    assert len(times) == 16  # the whole cap, all inside 09:00–17:00
    assert sum(t < NINE + timedelta(hours=1) for t in times) <= 3
    assert sum(t >= NINE + timedelta(hours=7) for t in times) >= 1
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= timedelta(minutes=15)  # not back to back at the 2-minute gap


def test_a_capped_campaign_is_paced_through_its_window() -> None:
    campaign = CampaignState(1, OFFICE, 1, daily_cap=8, sent_today=1, mailbox_ids=frozenset({1, 2}))
    boxes = [box_state(1), box_state(2)]
    due = [DueEnrollment(i, 1, 1, NINE, None) for i in range(5)]
    early = plan_sends(NINE + timedelta(minutes=5), [campaign], boxes, due)
    assert early.sends == [] and "campaign paced" in early.waiting[0]
    assert early.wake_at == NINE + timedelta(hours=1)  # 8 a day in 8 hours: one an hour
    later = plan_sends(NINE + timedelta(hours=1), [campaign], boxes, due)
    assert len(later.sends) == 1


def test_recipient_domain_caps_per_mailbox_and_per_workspace() -> None:
    campaign = CampaignState(1, OFFICE, 1, mailbox_ids=frozenset({1, 2}), workspace_id=7)
    policy = box_state(1).policy
    capped = MailboxState(
        1,
        MailboxPolicy(**{**_fields(policy), "recipient_domain_daily": 2}),
        MailboxUsage(cold_by_recipient_domain={"acme.com": 2}),
    )
    due = [DueEnrollment(1, 1, 1, NINE, None, recipient_domain="acme.com")]
    now = NINE + timedelta(hours=4)
    plan = plan_sends(now, [campaign], [capped, box_state(2)], due)
    assert [s.mailbox_id for s in plan.sends] == [2]  # mailbox 1 sent acme.com its 2 today
    fleet = FleetState(FleetPolicy(recipient_domain_per_workspace=3), {}, {(7, "acme.com"): 3})
    plan = plan_sends(now, [campaign], [box_state(1), box_state(2)], due, fleet)
    assert plan.sends == [] and "workspace cap" in plan.waiting[1]
    # Free-mail domains are exempt from the workspace cap.
    gmail = [DueEnrollment(2, 1, 1, NINE, None, recipient_domain="gmail.com")]
    fleet = FleetState(FleetPolicy(recipient_domain_per_workspace=3), {}, {(7, "gmail.com"): 9})
    assert len(plan_sends(now, [campaign], [box_state(1)], gmail, fleet).sends) == 1


def test_a_full_shared_cap_closes_every_mailbox_drawing_on_it() -> None:
    campaign = CampaignState(1, OFFICE, 1, mailbox_ids=frozenset({1, 2, 3}))
    frees = NINE + timedelta(hours=20)
    boxes = [
        MailboxState(1, box_state(1).policy, MailboxUsage(), shared=("domain:a",)),
        MailboxState(2, box_state(2).policy, MailboxUsage(), shared=("domain:a",)),
        MailboxState(3, box_state(3).policy, MailboxUsage(), shared=("domain:b",)),
    ]
    caps = {
        "domain:a": SharedCap("domain:a", "sending domain a.example", 10, 10, frees),
        "domain:b": SharedCap("domain:b", "sending domain b.example", 10, 9),
    }
    due = [DueEnrollment(i, 1, 1, NINE, None) for i in range(3)]
    plan = plan_sends(NINE + timedelta(hours=4), [campaign], boxes, due, FleetState(caps=caps))
    assert [s.mailbox_id for s in plan.sends] == [3]  # b had one left; a is full
    alone = plan_sends(NINE + timedelta(hours=4), [campaign], boxes[:2], due, FleetState(caps=caps))
    assert alone.sends == [] and alone.wake_at == frees
    assert alone.waiting[0].count("sending domain a.example reached 10") == 2


def test_the_warmup_ratio_holds_a_mailbox_back_with_its_reason() -> None:
    campaign = CampaignState(1, OFFICE, 1, mailbox_ids=frozenset({1}))
    warm = MailboxState(
        1,
        MailboxPolicy(mailbox_id=1, limits=MICROSOFT_365.limits, daily_cap=20),
        MailboxUsage(cold_today=3, warmup_today=7),
    )
    plan = plan_sends(
        NINE + timedelta(hours=4), [campaign], [warm], [DueEnrollment(1, 1, 1, NINE, None)]
    )
    assert plan.sends == [] and "warmup ratio 2:1 not met" in plan.waiting[1]


def _fields(policy: MailboxPolicy) -> dict[str, object]:
    return {name: getattr(policy, name) for name in MailboxPolicy.__slots__}  # type: ignore[attr-defined]
