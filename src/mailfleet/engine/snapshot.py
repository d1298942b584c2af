"""What a tick sees: each mailbox's policy and usage, the caps they share, each campaign's state.

Two ways to build it. :class:`FleetCache` (what the engine uses) keeps the mailboxes,
their policies, the groups they share caps with and each campaign's mailbox selection
in memory, re-loaded only when the mailboxes' fingerprint changes, and reads usage
from the engine's :class:`~mailfleet.engine.ledger.UsageLedger`; :func:`mailbox_states`
and :func:`campaign_state` load everything from the store in a few grouped queries
(per timezone and chunk of mailboxes, not per mailbox). Either way the result is the
planner's value objects; the planner decides with nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.campaigns import selects_mailbox
from mailfleet.engine.ledger import UsageLedger
from mailfleet.limits import (
    DEFAULT_WARMUP_RATIO,
    FleetPolicy,
    FleetState,
    MailboxPolicy,
    MailboxUsage,
    SharedCap,
    tenant_recipient_limit,
)
from mailfleet.planner import (
    CampaignState,
    DueEnrollment,
    MailboxState,
    SendingWindow,
    local_day,
)
from mailfleet.providers import get_preset
from mailfleet.store import Campaign, Domain, Mailbox, MailboxStatus
from mailfleet.store import repository as repo
from mailfleet.warmup import capped_policy

Fingerprint = tuple[frozenset[int], tuple[int, int, int]]


def mailbox_policy(
    mailbox: Mailbox, now: datetime | None = None, fleet: FleetPolicy | None = None
) -> MailboxPolicy:
    """The admission policy of a stored mailbox: provider limits plus its own knobs.

    While the mailbox is slowed (``rate_factor`` until ``slowed_until``, compared with
    ``now``), its per-minute limit is multiplied by the factor and its gap divided by it.
    The warmup ratio is the mailbox's own (default 2) while its warmup is enabled, and
    off only when a person turned its warmup off.
    """
    fleet = fleet or FleetPolicy()
    preset = get_preset(mailbox.provider)
    limits = preset.limits
    if mailbox.max_per_minute is not None and limits.messages_per_minute is not None:
        limits = replace(
            limits, messages_per_minute=min(limits.messages_per_minute, mailbox.max_per_minute)
        )
    warmup = mailbox.warmup_enabled is not False  # unset (a new row) means the default: on
    ratio = mailbox.warmup_ratio if mailbox.warmup_ratio is not None else DEFAULT_WARMUP_RATIO
    policy = MailboxPolicy(
        mailbox_id=mailbox.id,
        limits=limits,
        ramp=fleet.ramp,
        ramp_start=mailbox.ramp_start,
        daily_cap=mailbox.daily_cap,
        warmup_ratio=ratio if warmup else 0.0,
        recipient_domain_daily=fleet.recipient_domain_per_mailbox,
        pace=fleet.pace,
    )
    if mailbox.min_gap_seconds is not None:
        gap = timedelta(seconds=mailbox.min_gap_seconds)
        policy = replace(policy, min_gap=gap, max_jitter=gap * 0.5)
    factor = mailbox.rate_factor
    slowed = mailbox.slowed_until is not None and (now is None or mailbox.slowed_until > now)
    if factor is not None and 0 < factor < 1 and slowed:
        per_minute = limits.messages_per_minute
        if per_minute is not None:
            limits = replace(limits, messages_per_minute=max(1, int(per_minute * factor)))
        policy = replace(
            policy,
            limits=limits,
            min_gap=policy.min_gap / factor,
            max_jitter=policy.max_jitter / factor,
            send_gap=policy.send_gap / factor,
        )
    return policy


def warmed_policy(
    mailbox: Mailbox, now: datetime, fleet: FleetPolicy | None = None, factor: float = 1.0
) -> MailboxPolicy:
    """:func:`mailbox_policy` with warmup's cold-cap ``factor`` applied on its local day.

    A factor below 1 means the warmup peers saw bad inbox placement (see
    :func:`mailfleet.warmup.capped_policy`).
    """
    policy = mailbox_policy(mailbox, now, fleet)
    if factor >= 1.0:
        return policy
    return capped_policy(policy, factor, local_day(now, mailbox.timezone)[0])


async def mailbox_states(
    session: AsyncSession,
    mailboxes: Sequence[Mailbox],
    due: Sequence[DueEnrollment],
    now: datetime,
    fleet: FleetPolicy,
) -> tuple[list[MailboxState], FleetState]:
    """Each mailbox's policy and usage, and the caps they share, in a few grouped queries."""
    usage = await repo.usage_by_mailbox(session, mailboxes, now)
    domains = {d.recipient_domain for d in due}
    by_domain = await repo.cold_by_recipient_domain(session, mailboxes, domains, now)
    workspace_ids = {m.workspace_id for m in mailboxes}
    sent_to_domains = await repo.recipient_domains_24h(session, workspace_ids, domains, now)
    sending_domains = {
        d.id: d
        for d in (
            await session.scalars(select(Domain).where(Domain.workspace_id.in_(workspace_ids)))
        ).all()
    }
    members: dict[str, list[Mailbox]] = defaultdict(list)
    states: list[MailboxState] = []
    for box in mailboxes:
        counts = usage[box.id]
        shared: list[str] = []
        domain = sending_domains.get(box.domain_id)
        if domain is not None and domain.daily_cap is not None:
            shared.append(f"domain:{domain.id}")
            members[f"domain:{domain.id}"].append(box)
        if box.provider == "microsoft365" and box.tenant:
            shared.append(f"tenant:{box.tenant.lower()}")
            members[f"tenant:{box.tenant.lower()}"].append(box)
        states.append(
            MailboxState(
                mailbox_id=box.id,
                policy=mailbox_policy(box, now, fleet),
                usage=MailboxUsage(
                    cold_today=counts.cold_today,
                    messages_last_minute=counts.messages_last_minute,
                    oldest_in_last_minute=counts.oldest_in_last_minute,
                    messages_24h=counts.messages_24h,
                    recipients_24h=counts.recipients_24h,
                    oldest_in_24h=counts.oldest_in_24h,
                    last_send_at=counts.last_send_at,
                    last_send_id=counts.last_send_id,
                    warmup_today=counts.warmup_today,
                    last_cold_at=counts.last_cold_at,
                    cold_by_recipient_domain=by_domain.get(box.id, {}),
                ),
                timezone=box.timezone,
                active=box.status == MailboxStatus.ACTIVE
                and (box.paused_until is None or box.paused_until <= now),
                shared=tuple(shared),
            )
        )
    caps: dict[str, SharedCap] = {}
    for key, group in members.items():
        if key.startswith("domain:"):
            domain = sending_domains[int(key.partition(":")[2])]
            assert domain.daily_cap is not None
            oldest = [t for b in group if (t := usage[b.id].oldest_cold_24h) is not None]
            caps[key] = SharedCap(
                key,
                f"sending domain {domain.name}",
                domain.daily_cap,
                sum(usage[b.id].cold_24h for b in group),
                min(oldest) + timedelta(days=1) if oldest else None,
            )
        else:
            tenant = key.partition(":")[2]
            limit = fleet.tenant_recipients_per_day or tenant_recipient_limit(len(group))
            oldest = [t for b in group if (t := usage[b.id].oldest_in_24h) is not None]
            caps[key] = SharedCap(
                key,
                f"tenant {tenant} external recipients",
                limit,
                sum(usage[b.id].recipients_24h for b in group),
                min(oldest) + timedelta(days=1) if oldest else None,
            )
    return states, FleetState(fleet, caps, sent_to_domains)


async def campaign_state(
    session: AsyncSession, campaign: Campaign, mailboxes: Sequence[Mailbox], now: datetime
) -> CampaignState:
    window = SendingWindow(
        timezone=campaign.timezone,
        days=frozenset(campaign.window_days),
        start_minute=campaign.window_start_minute,
        end_minute=campaign.window_end_minute,
    )
    day_start = local_day(now, campaign.timezone)[1] - timedelta(days=1)
    settings = campaign.settings or {}
    listed = list(settings.get("mailboxes") or [])
    return CampaignState(
        campaign_id=campaign.id,
        window=window,
        step_count=len(campaign.steps),
        use_lead_timezone=campaign.use_lead_timezone,
        daily_cap=campaign.daily_cap,
        sent_today=await repo.campaign_cold_today(session, campaign.id, day_start)
        if campaign.daily_cap
        else 0,
        mailbox_ids=frozenset(
            b.id
            for b in mailboxes
            if b.workspace_id == campaign.workspace_id
            and selects_mailbox(campaign.mailbox_tags or [], listed, b.address, b.tags or [])
        ),
        workspace_id=campaign.workspace_id,
    )


class FleetCache:
    """The mailboxes a tick plans with, kept between ticks and re-loaded when they change.

    A change is any insert, delete or update of a mailbox row of the workspaces
    (:func:`~mailfleet.store.repository.mailbox_fingerprint`, one aggregate). Usage is
    never cached here: it comes from the ledger at each tick.
    """

    def __init__(self, fleet: FleetPolicy) -> None:
        self.fleet = fleet
        self.fingerprint: Fingerprint | None = None
        self.mailboxes: list[Mailbox] = []
        self.by_id: dict[int, Mailbox] = {}
        self.members: dict[str, list[int]] = {}  # shared-cap key -> mailbox ids
        self.shared: dict[int, tuple[str, ...]] = {}
        self.labels: dict[str, tuple[str, int | None]] = {}  # key -> (label, domain cap)
        self.ids: list[int] = []
        self.holds: list[datetime] = []  # pauses and slowdowns that end at an instant
        self.expiring: list[tuple[int, datetime]] = []  # (mailbox id, when its hold ends)
        self._policies: dict[int, MailboxPolicy] = {}
        self.cap_factors: dict[int, float] = {}  # warmup's cold-cap cuts (absent: 1.0)
        self._selections: dict[tuple[object, ...], frozenset[int]] = {}
        self._by_tag: dict[tuple[int, str], set[int]] = {}  # (workspace, tag) -> mailbox ids
        self._by_address: dict[tuple[int, str], int] = {}
        self._of_workspace: dict[int, list[int]] = {}

    async def refresh(self, session: AsyncSession, workspace_ids: set[int]) -> set[int]:
        """Re-load the mailboxes if anything about them changed; return the ids that did."""
        fingerprint = (
            frozenset(workspace_ids),
            await repo.mailbox_fingerprint(session, workspace_ids),
        )
        if fingerprint == self.fingerprint:
            return set()
        before = {b.id: b.revision for b in self.mailboxes}
        boxes = (
            await session.scalars(
                select(Mailbox).where(Mailbox.workspace_id.in_(workspace_ids)).order_by(Mailbox.id)
            )
        ).all()
        domains = {
            d.id: d
            for d in (
                await session.scalars(select(Domain).where(Domain.workspace_id.in_(workspace_ids)))
            ).all()
        }
        self.mailboxes = list(boxes)
        self.by_id = {b.id: b for b in boxes}
        self.members = defaultdict(list)
        self.shared = {}
        self.labels = {}
        for box in boxes:
            keys: list[str] = []
            domain = domains.get(box.domain_id)
            if domain is not None and domain.daily_cap is not None:
                key = f"domain:{domain.id}"
                keys.append(key)
                self.labels[key] = (f"sending domain {domain.name}", domain.daily_cap)
            if box.provider == "microsoft365" and box.tenant:
                key = f"tenant:{box.tenant.lower()}"
                keys.append(key)
                self.labels[key] = (f"tenant {box.tenant.lower()} external recipients", None)
            for key in keys:
                self.members[key].append(box.id)
            self.shared[box.id] = tuple(keys)
        self.members = dict(self.members)
        self.ids = [b.id for b in boxes]
        self.expiring = [
            (b.id, until) for b in boxes for until in (b.paused_until, b.slowed_until) if until
        ]
        self.holds = [until for _, until in self.expiring]
        self._by_tag = defaultdict(set)
        self._by_address = {}
        self._of_workspace = defaultdict(list)
        for box in boxes:
            for tag in box.tags or []:
                self._by_tag[(box.workspace_id, tag)].add(box.id)
            self._by_address[(box.workspace_id, box.address.lower())] = box.id
            self._of_workspace[box.workspace_id].append(box.id)
        self._policies.clear()
        self._selections.clear()
        self.fingerprint = fingerprint
        changed = {b.id for b in boxes if before.get(b.id) != b.revision}
        return changed | (set(before) - set(self.by_id))

    def forget(self) -> None:
        """Re-load at the next :meth:`refresh` whatever the fingerprint says."""
        self.fingerprint = None

    def policy(self, box: Mailbox, now: datetime) -> MailboxPolicy:
        """The mailbox's policy (cached: a slowdown's end re-loads the mailboxes)."""
        policy = self._policies.get(box.id)
        if policy is None:
            factor = self.cap_factors.get(box.id, 1.0)
            policy = self._policies[box.id] = warmed_policy(box, now, self.fleet, factor)
        return policy

    def set_cap_factors(self, factors: dict[int, float]) -> set[int]:
        """Adopt warmup's cold-cap factors; return the mailboxes whose factor changed."""
        changed = {
            i
            for i in set(factors) | set(self.cap_factors)
            if factors.get(i, 1.0) != self.cap_factors.get(i, 1.0)
        }
        if changed:
            self.cap_factors = dict(factors)
            for mailbox_id in changed:
                self._policies.pop(mailbox_id, None)
        return changed

    def states(
        self,
        ids: Sequence[int],
        ledger: UsageLedger,
        domains: set[str],
        now: datetime,
    ) -> tuple[list[MailboxState], FleetState]:
        """The planner's view of mailboxes ``ids``, with usage from ``ledger``."""
        days: dict[str, datetime] = {}
        states: list[MailboxState] = []
        keys: set[str] = set()
        workspaces: set[int] = set()
        for mailbox_id in ids:
            box = self.by_id[mailbox_id]
            day_start = days.get(box.timezone)
            if day_start is None:
                day_start = days[box.timezone] = local_day(now, box.timezone)[1] - timedelta(days=1)
            counts = ledger.usage(box.id, now, day_start)
            keys.update(self.shared[box.id])
            workspaces.add(box.workspace_id)
            states.append(
                MailboxState(
                    mailbox_id=box.id,
                    policy=self.policy(box, now),
                    usage=usage_of(counts, ledger.cold_by_recipient_domain(box.id, day_start)),
                    timezone=box.timezone,
                    active=box.status == MailboxStatus.ACTIVE
                    and (box.paused_until is None or box.paused_until <= now),
                    shared=self.shared[box.id],
                )
            )
        caps: dict[str, SharedCap] = {}
        for key in keys:
            label, limit = self.labels[key]
            group = self.members[key]
            if key.startswith("domain:"):
                assert limit is not None
                used, oldest = ledger.group_cold_24h(group, now)
            else:
                limit = self.fleet.tenant_recipients_per_day or tenant_recipient_limit(len(group))
                used, oldest = ledger.group_recipients_24h(group, now)
            caps[key] = SharedCap(
                key, label, limit, used, oldest + timedelta(days=1) if oldest else None
            )
        sent_to = ledger.recipient_domains_24h(workspaces, domains, now)
        return states, FleetState(self.fleet, caps, sent_to)

    def campaign_state(
        self, campaign: Campaign, ledger: UsageLedger, now: datetime
    ) -> CampaignState:
        """A campaign as the planner sees it, its mailbox selection cached."""
        settings = campaign.settings or {}
        listed = tuple(settings.get("mailboxes") or [])
        tags = tuple(campaign.mailbox_tags or [])
        key = (campaign.id, campaign.workspace_id, tags, listed)
        selected = self._selections.get(key)
        if selected is None:
            selected = self._selections[key] = self._select(campaign.workspace_id, tags, listed)
        window = SendingWindow(
            timezone=campaign.timezone,
            days=frozenset(campaign.window_days),
            start_minute=campaign.window_start_minute,
            end_minute=campaign.window_end_minute,
        )
        day_start = local_day(now, campaign.timezone)[1] - timedelta(days=1)
        return CampaignState(
            campaign_id=campaign.id,
            window=window,
            step_count=len(campaign.steps),
            use_lead_timezone=campaign.use_lead_timezone,
            daily_cap=campaign.daily_cap,
            sent_today=ledger.campaign_since(campaign.id, day_start) if campaign.daily_cap else 0,
            mailbox_ids=selected,
            workspace_id=campaign.workspace_id,
        )

    def _select(
        self, workspace_id: int, tags: tuple[str, ...], listed: tuple[str, ...]
    ) -> frozenset[int]:
        """:func:`~mailfleet.campaigns.selects_mailbox` over the fleet, through indexes."""
        if not tags and not listed:
            return frozenset(self._of_workspace.get(workspace_id, ()))
        chosen: set[int] = set()
        for tag in tags:
            chosen |= self._by_tag.get((workspace_id, tag), set())
        for address in listed:
            found = self._by_address.get((workspace_id, address.lower()))
            if found is not None:
                chosen.add(found)
        return frozenset(chosen)


def usage_of(counts: repo.UsageCounts, by_domain: dict[str, int]) -> MailboxUsage:
    """The planner's usage value from the store's (or the ledger's) raw counts."""
    return MailboxUsage(
        cold_today=counts.cold_today,
        messages_last_minute=counts.messages_last_minute,
        oldest_in_last_minute=counts.oldest_in_last_minute,
        messages_24h=counts.messages_24h,
        recipients_24h=counts.recipients_24h,
        oldest_in_24h=counts.oldest_in_24h,
        last_send_at=counts.last_send_at,
        last_send_id=counts.last_send_id,
        warmup_today=counts.warmup_today,
        last_cold_at=counts.last_cold_at,
        cold_by_recipient_domain=by_domain,
    )
