"""The planner: which enrollment gets which step from which mailbox, now.

Pure: the engine hands in the campaigns, the due enrollments, the mailboxes with
their usage, the caps they share, and the time; the planner answers with the
sends to make and the earliest instant worth asking again. Every send it plans
was admitted at that instant by every rule below, so a queue can never
overshoot a limit; the transport re-checks at the wire.

A send is admitted when all of these have room (the first that has not is the
reason it waits):

1. the campaign's sending window is open (in the lead's timezone if it says so);
2. the campaign's daily cap, paced through its window (a capped campaign may have
   made ``1 + cap × elapsed/length`` sends by now, so it never bursts at 09:00);
3. the workspace's cold sends to the recipient's domain in 24 hours
   (:class:`~mailfleet.limits.FleetPolicy`; free-mail domains exempt);
4. the mailbox: active, provider rate and rolling 24 h counts, cold cap of its
   ramp for its local day, warmup ratio, minimum gap plus jitter
   (:func:`~mailfleet.limits.admit`);
5. the mailbox's own daily cap per recipient domain;
6. the caps the mailbox shares: its sending domain's and its tenant's
   (:class:`~mailfleet.limits.SharedCap`);
7. the mailbox's pace: remaining capacity spread over the remaining window
   (:func:`~mailfleet.limits.paced_at`).

Follow-ups go first and only from their thread's mailbox; first steps go to the
campaign's mailbox with the most capacity left today. A mailbox makes at most
one send a tick.

Besides the sends, the plan tells the engine, for each mailbox refused on its own
account, the earliest instant it may send anything again (:attr:`Plan.ready_at`):
the engine leaves it out of the ticks before then, which is what keeps a tick cheap
in a large fleet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from mailfleet.limits import (
    Admission,
    FleetState,
    MailboxPolicy,
    MailboxUsage,
    admit,
    allowance_grows_at,
    cold_cap_for_day,
    paced_allowance,
    paced_at,
    recipient_domain_room,
    stable_fraction,
)
from mailfleet.planner.window import SendingWindow, local_day

MAX_REASONS = 3  # per waiting enrollment: enough to explain, cheap with 10,000 mailboxes
HELD = datetime.max.replace(tzinfo=UTC)
"""A mailbox's ready instant when no time frees it (inactive, or waiting for warmup): it
stays out until its configuration or its usage changes."""


@dataclass(frozen=True, slots=True)
class CampaignState:
    """A running campaign as the planner sees it."""

    campaign_id: int
    window: SendingWindow
    step_count: int
    use_lead_timezone: bool = False
    daily_cap: int | None = None
    sent_today: int = 0  # cold sends of this campaign in its local day
    mailbox_ids: frozenset[int] = frozenset()  # mailboxes it may use
    workspace_id: int = 0


@dataclass(frozen=True, slots=True)
class MailboxState:
    """A mailbox, its limits and what it has used."""

    mailbox_id: int
    policy: MailboxPolicy
    usage: MailboxUsage
    timezone: str = "UTC"  # the zone its sending day is counted in
    active: bool = True
    shared: tuple[str, ...] = ()  # keys of the shared caps it draws on (domain, tenant)


@dataclass(frozen=True, slots=True)
class DueEnrollment:
    """An enrollment whose next step is due."""

    enrollment_id: int
    campaign_id: int
    step: int
    due_at: datetime
    mailbox_id: int | None  # the thread's mailbox once step 1 went out
    lead_timezone: str | None = None
    recipient_domain: str = ""  # the lead's address domain, for recipient-domain caps


@dataclass(frozen=True, slots=True)
class PlannedSend:
    """One admitted send."""

    enrollment_id: int
    campaign_id: int
    step: int
    mailbox_id: int


@dataclass(slots=True)
class Plan:
    """The planner's answer."""

    sends: list[PlannedSend] = field(default_factory=list)
    wake_at: datetime | None = None  # earliest instant a refused send may be admitted
    waiting: dict[int, str] = field(default_factory=dict)  # enrollment id -> why not now
    # mailbox id -> earliest instant it may send anything (:data:`HELD`: not before a change)
    ready_at: dict[int, datetime] = field(default_factory=dict)

    def _wake(self, when: datetime | None) -> None:
        if when is not None and (self.wake_at is None or when < self.wake_at):
            self.wake_at = when


@dataclass(slots=True)
class _Box:
    """A mailbox's figures for this tick, computed once."""

    state: MailboxState
    day: date
    day_start: datetime
    midnight: datetime
    cap: int
    admission: Admission | None = None

    @property
    def remaining(self) -> int:
        return self.cap - self.state.usage.cold_today


# What a check says about one candidate mailbox for one enrollment.
_OK, _SKIP, _DROP, _CLOSE = range(4)
# _SKIP: not for this enrollment; _DROP: not for this campaign this tick;
# _CLOSE: not for anything this tick.


class _Planner:
    """One call of :func:`plan_sends`: the tick's counters and the checks that read them."""

    def __init__(
        self,
        now: datetime,
        campaigns: Sequence[CampaignState],
        mailboxes: Sequence[MailboxState],
        fleet: FleetState,
    ) -> None:
        self.now = now
        self.plan = Plan()
        self.fleet = fleet
        self.campaigns = {c.campaign_id: c for c in campaigns}
        self.boxes: dict[int, _Box] = {}
        days: dict[str, tuple[date, datetime]] = {}
        for m in mailboxes:
            if m.timezone not in days:
                days[m.timezone] = local_day(now, m.timezone)
            day, midnight = days[m.timezone]
            self.boxes[m.mailbox_id] = _Box(
                m, day, midnight - timedelta(days=1), midnight, cold_cap_for_day(m.policy, day)
            )
        self.closed: set[int] = set()  # used this tick, or refused for any send
        self.campaign_sent = {c.campaign_id: c.sent_today for c in campaigns}
        self.shared_used = {key: cap.used for key, cap in fleet.caps.items()}
        self.domain_sent = dict(fleet.recipient_domains)
        self.order: dict[int, list[_Box]] = {}
        self.spans: dict[tuple[int, str | None], tuple[datetime, datetime] | None] = {}
        # How many campaigns may use each mailbox: a pace is a mailbox's own only with one.
        self.uses: dict[int, int] = {}
        for c in campaigns:
            for i in c.mailbox_ids:
                self.uses[i] = self.uses.get(i, 0) + 1

    # -- candidates ------------------------------------------------------------------------

    def candidates(self, campaign: CampaignState) -> list[_Box]:
        """The campaign's mailboxes, most capacity left first (built once a tick)."""
        order = self.order.get(campaign.campaign_id)
        if order is None:
            order = sorted(
                (self.boxes[i] for i in campaign.mailbox_ids if i in self.boxes),
                key=lambda b: (-b.remaining, b.state.usage.cold_today, b.state.mailbox_id),
            )
            self.order[campaign.campaign_id] = order
        return order

    def admission(self, box: _Box) -> Admission:
        if box.admission is None:
            box.admission = admit(
                box.state.policy,
                box.state.usage,
                self.now,
                local_day=box.day,
                next_local_midnight=box.midnight,
            )
        return box.admission

    def check(
        self, box: _Box, item: DueEnrollment, span: tuple[datetime, datetime], reasons: list[str]
    ) -> int:
        """Whether ``box`` may send ``item`` now; on refusal, the reason goes to ``reasons``."""
        state = box.state
        if state.mailbox_id in self.closed:
            # Only the first reasons are shown: skip formatting the rest (a hot path).
            shown = len(reasons) < MAX_REASONS
            reasons.append(
                f"mailbox {state.mailbox_id} is busy or refused this tick" if shown else ""
            )
            return _CLOSE
        name = f"mailbox {state.mailbox_id}"
        if not state.active:
            reasons.append(f"{name} is not active")
            self.closed.add(state.mailbox_id)
            self.plan.ready_at[state.mailbox_id] = HELD
            return _CLOSE
        verdict = self.admission(box)
        if not verdict.ok:
            reasons.append(f"{name}: {verdict.reason}")
            self.plan._wake(verdict.retry_at)
            self.plan.ready_at[state.mailbox_id] = verdict.retry_at or HELD
            self.closed.add(state.mailbox_id)
            return _CLOSE
        domain = item.recipient_domain
        if not recipient_domain_room(state.policy, state.usage, domain):
            reasons.append(
                f"{name}: {state.policy.recipient_domain_daily} cold sends to {domain} today"
            )
            self.plan._wake(box.midnight)
            return _SKIP
        for key in state.shared:
            cap = self.fleet.caps.get(key)
            if cap is not None and self.shared_used[key] >= cap.limit:
                reasons.append(f"{name}: {cap.label} reached {cap.limit} in 24 hours")
                self.plan._wake(cap.retry_at)
                self.closed.add(state.mailbox_id)
                return _CLOSE
        if not state.policy.pace:
            return _OK
        opens, closes = max(span[0], box.day_start), min(span[1], box.midnight)
        ready = paced_at(
            last_cold_at=state.usage.last_cold_at,
            remaining=box.remaining,
            opens=opens,
            closes=closes,
            jitter=stable_fraction(state.mailbox_id, "pace", state.usage.last_send_id),
        )
        if ready > self.now:
            # Only the first reasons are shown: skip formatting the rest (a hot path).
            shown = len(reasons) < MAX_REASONS
            reasons.append(f"{name} is paced: next cold send at {ready:%H:%M} UTC" if shown else "")
            self.plan._wake(ready)
            if self.uses.get(state.mailbox_id, 0) == 1 and not self.lead_zoned(item):
                # Its only campaign's window set this pace: nothing sends from it before.
                self.plan.ready_at[state.mailbox_id] = ready
            return _DROP
        return _OK

    def lead_zoned(self, item: DueEnrollment) -> bool:
        campaign = self.campaigns.get(item.campaign_id)
        return campaign is None or campaign.use_lead_timezone

    def ready_after_send(
        self, box: _Box, item: DueEnrollment, span: tuple[datetime, datetime]
    ) -> datetime:
        """The earliest instant the mailbox may send again once this send is made.

        A lower bound: its minimum gap (the jitter only adds to it), the next local
        midnight once this send fills its cap, and, when its one campaign set its pace,
        the pace with the least jitter.
        """
        state = box.state
        ready = self.now + state.policy.min_gap
        left = box.remaining - 1
        if left <= 0:
            return max(ready, box.midnight)
        if (
            state.policy.pace
            and self.uses.get(state.mailbox_id, 0) == 1
            and not self.lead_zoned(item)
        ):
            opens, closes = max(span[0], box.day_start), min(span[1], box.midnight)
            paced = paced_at(
                last_cold_at=self.now, remaining=left, opens=opens, closes=closes, jitter=0.0
            )
            ready = max(ready, min(paced, closes))
        return ready

    # -- one enrollment ---------------------------------------------------------------------

    def campaign_refusal(
        self, campaign: CampaignState, item: DueEnrollment
    ) -> tuple[str, tuple[datetime, datetime] | None]:
        """Why the campaign itself cannot send ``item`` now ("" if it can), and its open span."""
        tz = item.lead_timezone if campaign.use_lead_timezone else None
        key = (campaign.campaign_id, tz)
        if key in self.spans:
            span = self.spans[key]
        else:
            span = self.spans[key] = campaign.window.open_span(self.now, tz)
            if span is None:
                self.plan._wake(campaign.window.next_open(self.now, tz))
        if span is None:
            return "outside the sending window", None
        cap = campaign.daily_cap
        if cap is not None:
            sent = self.campaign_sent[campaign.campaign_id]
            if sent >= cap:
                self.plan._wake(local_day(self.now, campaign.window.timezone)[1])
                return "campaign daily cap reached", None
            if not campaign.use_lead_timezone:
                opens, closes = span
                if sent >= paced_allowance(cap=cap, opens=opens, closes=closes, now=self.now):
                    grows = allowance_grows_at(cap=cap, sent=sent, opens=opens, closes=closes)
                    self.plan._wake(max(grows, self.now + timedelta(seconds=1)))
                    return f"campaign paced: {sent} of {cap} sent so far today", None
        limit = self.fleet.policy.recipient_domain_per_workspace
        domain = item.recipient_domain
        if (
            limit is not None
            and domain
            and domain not in self.fleet.policy.exempt_domains
            and self.domain_sent.get((campaign.workspace_id, domain), 0) >= limit
        ):
            return f"{limit} cold sends to {domain} in 24 hours (workspace cap)", None
        return "", span

    def place(self, item: DueEnrollment) -> None:
        campaign = self.campaigns.get(item.campaign_id)
        if campaign is None:
            return
        if item.mailbox_id is None and self.order.get(campaign.campaign_id) == []:
            # Every mailbox of the campaign was refused this tick: no need to look again.
            self.plan.waiting[item.enrollment_id] = "no mailbox of the campaign can send now"
            return
        refusal, span = self.campaign_refusal(campaign, item)
        if span is None:
            self.plan.waiting[item.enrollment_id] = refusal
            return
        reasons: list[str] = []
        chosen: _Box | None = None
        if item.mailbox_id is not None:
            # A follow-up stays in its thread; a first step queued for one mailbox (a
            # recipient-side retry: greylisting expects the same sender back) waits for it.
            box = self.boxes.get(item.mailbox_id)
            if box is None or (item.step == 1 and item.mailbox_id not in campaign.mailbox_ids):
                reasons.append(f"its mailbox {item.mailbox_id} is not available")
            elif self.check(box, item, span, reasons) == _OK:
                chosen = box
        else:
            chosen = self.first_step_mailbox(campaign, item, span, reasons)
        if chosen is None:
            shown = reasons[:MAX_REASONS]
            if len(reasons) > MAX_REASONS:
                shown.append(f"{len(reasons) - MAX_REASONS} more mailboxes refused")
            self.plan.waiting[item.enrollment_id] = "; ".join(shown) or "no mailbox can send it"
            return
        self.take(chosen, campaign, item, span)

    def first_step_mailbox(
        self,
        campaign: CampaignState,
        item: DueEnrollment,
        span: tuple[datetime, datetime],
        reasons: list[str],
    ) -> _Box | None:
        """The campaign mailbox with the most capacity left that may send ``item`` now.

        Mailboxes refused for the whole campaign are dropped from its list as they are
        met, so a tick costs about one pass over the fleet however many are due.
        """
        order = self.candidates(campaign)
        kept: list[_Box] = []
        chosen: _Box | None = None
        index = 0
        while index < len(order):
            box = order[index]
            index += 1
            verdict = self.check(box, item, span, reasons)
            if verdict == _OK:
                chosen = box
                break
            if verdict == _SKIP or (verdict == _DROP and campaign.use_lead_timezone):
                kept.append(box)  # a pace depends on the lead's window, not the campaign's
        self.order[campaign.campaign_id] = kept + order[index:]
        return chosen

    def take(
        self,
        box: _Box,
        campaign: CampaignState,
        item: DueEnrollment,
        span: tuple[datetime, datetime],
    ) -> None:
        mailbox_id = box.state.mailbox_id
        self.closed.add(mailbox_id)
        self.plan.ready_at[mailbox_id] = self.ready_after_send(box, item, span)
        self.campaign_sent[campaign.campaign_id] += 1
        for key in box.state.shared:
            if key in self.shared_used:
                self.shared_used[key] += 1
        if item.recipient_domain:
            key2 = (campaign.workspace_id, item.recipient_domain)
            self.domain_sent[key2] = self.domain_sent.get(key2, 0) + 1
        self.plan.sends.append(
            PlannedSend(item.enrollment_id, item.campaign_id, item.step, mailbox_id)
        )


def plan_sends(
    now: datetime,
    campaigns: Sequence[CampaignState],
    mailboxes: Sequence[MailboxState],
    due: Sequence[DueEnrollment],
    fleet: FleetState | None = None,
) -> Plan:
    """Choose the sends to make at ``now``: at most one per mailbox, each admitted by every rule.

    Follow-ups go first (finishing a thread beats opening a new one) and only from
    their thread's mailbox; a first step goes to the eligible mailbox with the most
    cold capacity left today, so volume rotates across the fleet by what is left.
    A mailbox that sends is next free after its gap: the caller knows when (the gap
    depends on the send), so the plan does not ask to be woken for it.
    """
    planner = _Planner(now, campaigns, mailboxes, fleet or FleetState())
    ordered = sorted(due, key=lambda d: (d.step == 1, d.due_at, d.enrollment_id))
    for item in ordered:
        if len(planner.closed) >= len(planner.boxes):
            break  # every mailbox is busy or refused: nothing else can go out this tick
        planner.place(item)
    return planner.plan
