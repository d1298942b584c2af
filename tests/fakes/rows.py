"""Store rows the test worlds share: leads enrolled in a campaign, due now."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.store import Enrollment, Lead


async def enroll_leads(
    session: AsyncSession,
    workspace_id: int,
    campaign_id: int,
    leads: Iterable[tuple[str, Mapping[str, Any]]],
    now: datetime,
) -> None:
    """Add each ``(address, extra Lead columns)`` as a lead enrolled at step 1, due ``now``."""
    for address, extra in leads:
        lead = Lead(
            workspace_id=workspace_id,
            email=address,
            email_normalized=address.lower(),
            fields={},
            created_at=now,
            **extra,
        )
        session.add(lead)
        await session.flush()
        session.add(
            Enrollment(
                campaign_id=campaign_id,
                lead_id=lead.id,
                next_step=1,
                next_due_at=now,
                references=[],
                created_at=now,
                updated_at=now,
            )
        )
