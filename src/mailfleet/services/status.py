"""What ``mailfleet status`` shows: campaigns and mailboxes with their counts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, func, select

from mailfleet.config import Settings
from mailfleet.services.holds import mailbox_holds
from mailfleet.store import (
    Campaign,
    Database,
    Enrollment,
    EnrollmentStatus,
    Mailbox,
    Send,
    SendKind,
    SendStatus,
    Workspace,
)


async def collect_status(
    settings: Settings, *, today: date, at: datetime | None = None
) -> dict[str, Any]:
    """Every workspace with its campaigns' and mailboxes' counts, and what holds each
    mailbox at ``at`` (default: now), as plain data."""
    at = at or datetime.now(UTC)
    db = Database(settings.resolved_database_url)
    try:
        await db.migrate()
        async with db.session() as session:
            workspaces = (await session.scalars(select(Workspace).order_by(Workspace.id))).all()
            out: list[dict[str, Any]] = []
            for ws in workspaces:
                # "sent 24h" counts from the newest send: demo data lives on a virtual clock.
                newest = await session.scalar(
                    select(func.max(Send.claimed_at)).where(Send.workspace_id == ws.id)
                )
                if isinstance(newest, str):
                    newest = datetime.fromisoformat(newest)
                if newest is not None and newest.tzinfo is None:
                    newest = newest.replace(tzinfo=UTC)
                horizon = (newest or datetime.combine(today, time(0), UTC)) - timedelta(days=1)
                campaigns = []
                for c in (
                    await session.scalars(
                        select(Campaign).where(Campaign.workspace_id == ws.id).order_by(Campaign.id)
                    )
                ).all():
                    counts = dict(
                        (
                            await session.execute(
                                select(Enrollment.status, func.count())
                                .where(Enrollment.campaign_id == c.id)
                                .group_by(Enrollment.status)
                            )
                        ).all()
                    )
                    sent = await session.scalar(
                        select(func.count()).where(
                            Send.campaign_id == c.id, Send.status == SendStatus.SENT
                        )
                    )
                    active = counts.get(EnrollmentStatus.ACTIVE, 0)
                    completed = counts.get(EnrollmentStatus.COMPLETED, 0)
                    campaigns.append(
                        {
                            "name": c.name,
                            "status": c.status,
                            "enrolled": sum(counts.values()),
                            "active": active,
                            "completed": completed,
                            "stopped": sum(counts.values()) - active - completed,
                            "sent": int(sent or 0),
                        }
                    )
                mailboxes = []
                is_sent = Send.status == SendStatus.SENT
                rows = await session.execute(
                    select(
                        Mailbox.address,
                        Mailbox.status,
                        func.count(Send.id).filter(is_sent, Send.kind == SendKind.COLD),
                        func.count(Send.id).filter(
                            is_sent, Send.kind == SendKind.COLD, Send.claimed_at >= horizon
                        ),
                        func.count(Send.id).filter(is_sent, Send.kind == SendKind.WARMUP),
                        func.count(Send.id).filter(
                            is_sent, Send.kind == SendKind.WARMUP, Send.claimed_at >= horizon
                        ),
                        func.count(Send.id).filter(Send.status == SendStatus.FAILED),
                        func.max(case((is_sent, Send.claimed_at))),
                    )
                    .outerjoin(Send, Send.mailbox_id == Mailbox.id)
                    .where(Mailbox.workspace_id == ws.id)
                    .group_by(Mailbox.id)
                    .order_by(Mailbox.address)
                )
                holds = {h.address: h for h in await mailbox_holds(session, at, workspace_id=ws.id)}
                for address, state, total, day, warm, warm_day, failed, last in rows.all():
                    held = holds[address].hold
                    mailboxes.append(
                        {
                            "address": address,
                            "status": state,
                            "sent_total": int(total),
                            "sent_24h": int(day),
                            "warmup_total": int(warm),
                            "warmup_24h": int(warm_day),
                            "failed": int(failed),
                            "last_send_at": str(last)[:16] if last else None,
                            "hold": {
                                "code": held.code,
                                "reason": held.reason,
                                "until": held.until.isoformat(timespec="minutes")
                                if held.until
                                else None,
                            },
                        }
                    )
                out.append(
                    {
                        "slug": ws.slug,
                        "name": ws.name,
                        "campaigns": campaigns,
                        "mailboxes": mailboxes,
                    }
                )
            return {"database": settings.resolved_database_url, "workspaces": out}
    finally:
        await db.close()
