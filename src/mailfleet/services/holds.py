"""Why is nothing sending? What holds each mailbox now, and until when.

Gathers what the engine's planner looks at — each mailbox's status, limits and usage
from the store (SQL is the reference), the warmup cap factor placement has set, and the
sending windows of the running campaigns that select it — and asks
:func:`mailfleet.planner.holds.mailbox_hold` the planner's own rules in its order.
``mailfleet status``, ``campaign show`` (and the API and dashboard) show the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.campaigns import selects_mailbox
from mailfleet.engine.snapshot import mailbox_states, warmed_policy
from mailfleet.limits import FleetPolicy
from mailfleet.planner import SendingWindow
from mailfleet.planner.holds import Hold, MailboxFacts, mailbox_hold
from mailfleet.store import Campaign, Mailbox
from mailfleet.store import repository as repo
from mailfleet.store import warmup as warmup_store
from mailfleet.warmup.plan import RampSettings

__all__ = ["Hold", "MailboxHold", "mailbox_holds"]


@dataclass(frozen=True, slots=True)
class MailboxHold:
    """One mailbox, the running campaigns that send from it, and what holds it."""

    mailbox_id: int
    address: str
    campaigns: tuple[str, ...]
    hold: Hold


def _window(campaign: Campaign) -> SendingWindow:
    return SendingWindow(
        timezone=campaign.timezone,
        days=frozenset(campaign.window_days),
        start_minute=campaign.window_start_minute,
        end_minute=campaign.window_end_minute,
    )


async def mailbox_holds(
    session: AsyncSession,
    at: datetime,
    *,
    workspace_id: int | None = None,
    mailbox_ids: Sequence[int] | None = None,
    warmup: RampSettings | None = None,
) -> list[MailboxHold]:
    """What holds each mailbox (of one workspace, or the given ones) at ``at``, by address."""
    query = select(Mailbox).order_by(Mailbox.address)
    if workspace_id is not None:
        query = query.where(Mailbox.workspace_id == workspace_id)
    if mailbox_ids is not None:
        query = query.where(Mailbox.id.in_(list(mailbox_ids)))
    boxes = list((await session.scalars(query)).all())
    if not boxes:
        return []
    running = await repo.active_campaigns(session)
    states, _ = await mailbox_states(session, boxes, [], at, FleetPolicy())
    factors = await warmup_store.cold_cap_factors(session, [b.id for b in boxes])
    hours = warmup or RampSettings()
    out = []
    for box, state in zip(boxes, states, strict=True):
        mine = [
            c
            for c in running
            if c.workspace_id == box.workspace_id
            and selects_mailbox(
                c.mailbox_tags or [],
                list((c.settings or {}).get("mailboxes") or []),
                box.address,
                box.tags or [],
            )
        ]
        policy = warmed_policy(box, at, factor=factors.get(box.id, 1.0))
        facts = MailboxFacts(
            state=replace(state, policy=policy),
            status=str(box.status),
            status_reason=box.status_reason,
            paused_until=box.paused_until,
            warmup_on=policy.warmup_ratio > 0,
            warmup_hours=(hours.day_start_minute, hours.day_end_minute),
        )
        hold = mailbox_hold(facts, [_window(c) for c in mine], at)
        out.append(MailboxHold(box.id, box.address, tuple(c.name for c in mine), hold))
    return out
