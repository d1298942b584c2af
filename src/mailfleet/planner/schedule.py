"""The planner: which enrollment gets which step from which mailbox, now.

Pure: the engine hands in the campaigns, the due enrollments, the mailboxes with
their usage, and the time; the planner answers with the sends to make and the
earliest instant worth asking again. Every send it plans was admitted by
:func:`mailfleet.limits.admit` at that instant, so a queue can never overshoot
a limit; the transport re-checks at the wire.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from mailfleet.limits import Admission, MailboxPolicy, MailboxUsage, admit
from mailfleet.planner.window import SendingWindow, local_day


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


@dataclass(frozen=True, slots=True)
class MailboxState:
    """A mailbox, its limits and what it has used."""

    mailbox_id: int
    policy: MailboxPolicy
    usage: MailboxUsage
    timezone: str = "UTC"  # the zone its sending day is counted in
    active: bool = True


@dataclass(frozen=True, slots=True)
class DueEnrollment:
    """An enrollment whose next step is due."""

    enrollment_id: int
    campaign_id: int
    step: int
    due_at: datetime
    mailbox_id: int | None  # the thread's mailbox once step 1 went out
    lead_timezone: str | None = None


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

    def _wake(self, when: datetime | None) -> None:
        if when is not None and (self.wake_at is None or when < self.wake_at):
            self.wake_at = when


def plan_sends(
    now: datetime,
    campaigns: Sequence[CampaignState],
    mailboxes: Sequence[MailboxState],
    due: Sequence[DueEnrollment],
) -> Plan:
    """Choose the sends to make at ``now``: at most one per mailbox, each admitted.

    Follow-ups go first (finishing a thread beats opening a new one) and only
    from their thread's mailbox; a first step goes to the eligible mailbox with
    the fewest cold sends today, so volume rotates evenly across the fleet.
    """
    plan = Plan()
    by_campaign = {c.campaign_id: c for c in campaigns}
    boxes = {m.mailbox_id: m for m in mailboxes}
    used: set[int] = set()
    cold_today = {m.mailbox_id: m.usage.cold_today for m in mailboxes}
    campaign_sent = {c.campaign_id: c.sent_today for c in campaigns}
    admissions: dict[int, Admission] = {}

    def admission(box: MailboxState) -> Admission:
        if box.mailbox_id not in admissions:
            day, midnight = local_day(now, box.timezone)
            admissions[box.mailbox_id] = admit(
                box.policy, box.usage, now, local_day=day, next_local_midnight=midnight
            )
        return admissions[box.mailbox_id]

    ordered = sorted(due, key=lambda d: (d.step == 1, d.due_at, d.enrollment_id))
    for item in ordered:
        if len(used) + sum(not a.ok for a in admissions.values()) >= len(boxes):
            break  # every mailbox is busy or refused: nothing else can go out this tick
        campaign = by_campaign.get(item.campaign_id)
        if campaign is None:
            continue
        tz = item.lead_timezone if campaign.use_lead_timezone else None
        if not campaign.window.is_open(now, tz):
            plan.waiting[item.enrollment_id] = "outside the sending window"
            plan._wake(campaign.window.next_open(now, tz))
            continue
        if campaign.daily_cap is not None and campaign_sent[item.campaign_id] >= campaign.daily_cap:
            plan.waiting[item.enrollment_id] = "campaign daily cap reached"
            plan._wake(local_day(now, campaign.window.timezone)[1])
            continue
        if item.mailbox_id is not None and item.step > 1:
            candidates = [boxes[item.mailbox_id]] if item.mailbox_id in boxes else []
        else:
            candidates = [
                boxes[i]
                for i in sorted(campaign.mailbox_ids)
                if i in boxes and (item.mailbox_id is None or i == item.mailbox_id)
            ]
        chosen: MailboxState | None = None
        reasons: list[str] = []
        for box in sorted(candidates, key=lambda b: (cold_today[b.mailbox_id], b.mailbox_id)):
            if not box.active:
                reasons.append(f"mailbox {box.mailbox_id} is not active")
                continue
            if box.mailbox_id in used:
                reasons.append(f"mailbox {box.mailbox_id} already sends this tick")
                continue
            verdict = admission(box)
            if not verdict.ok:
                reasons.append(f"mailbox {box.mailbox_id}: {verdict.reason}")
                plan._wake(verdict.retry_at)
                continue
            chosen = box
            break
        if chosen is None:
            plan.waiting[item.enrollment_id] = "; ".join(reasons) or "no mailbox can send it"
            continue
        used.add(chosen.mailbox_id)
        cold_today[chosen.mailbox_id] += 1
        campaign_sent[item.campaign_id] += 1
        plan.sends.append(
            PlannedSend(item.enrollment_id, item.campaign_id, item.step, chosen.mailbox_id)
        )
    if plan.sends:
        # A mailbox that sent this tick is next free after its gap; ask again then.
        plan._wake(now)
    return plan
