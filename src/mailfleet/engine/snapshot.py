"""What a tick sees: each mailbox's policy and usage, the caps they share, each campaign's state.

Loaded from the store in a few grouped queries (per timezone and chunk of
mailboxes, not per mailbox) and turned into the planner's value objects; the
planner decides with nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.campaigns import selects_mailbox
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
        )
    return policy


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
