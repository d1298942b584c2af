"""The due batch: follow-ups before a backlog of first steps, a bounded share per mailbox."""

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from mailfleet.clock import utc
from mailfleet.store import (
    Campaign,
    CampaignStatus,
    Database,
    Domain,
    Enrollment,
    EnrollmentStatus,
    Lead,
    Mailbox,
    Workspace,
)
from mailfleet.store import repository as repo

NOW = utc(2026, 3, 5, 10)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'due.db'}")
    await database.migrate()
    yield database
    await database.close()


async def populate(db: Database) -> tuple[int, list[int]]:
    """300 first steps due since Monday, and 12 + 3 follow-ups of two mailboxes due today."""
    async with db.session() as session:
        ws = Workspace(slug="w", name="W", created_at=NOW)
        session.add(ws)
        await session.flush()
        domain = Domain(workspace_id=ws.id, name="s.example", provider="generic", created_at=NOW)
        session.add(domain)
        await session.flush()
        boxes = []
        for i in range(2):
            box = Mailbox(
                workspace_id=ws.id,
                domain_id=domain.id,
                address=f"m{i}@s.example",
                provider="generic",
                smtp_host="h",
                smtp_port=587,
                smtp_security="starttls",
                auth_kind="password",
                tags=[],
                created_at=NOW,
            )
            session.add(box)
            await session.flush()
            boxes.append(box.id)
        campaign = Campaign(
            workspace_id=ws.id,
            name="C",
            status=CampaignStatus.ACTIVE,
            window_days=[1, 2, 3, 4, 5],
            mailbox_tags=[],
            settings={},
            created_at=NOW,
        )
        session.add(campaign)
        await session.flush()
        count = 315
        await session.execute(
            insert(Lead),
            [
                {
                    "workspace_id": ws.id,
                    "email": f"l{i}@p.example",
                    "email_normalized": f"l{i}@p.example",
                    "email_domain": "p.example",
                    "timezone": "Europe/Paris" if i == 0 else None,
                    "fields": {},
                    "created_at": NOW,
                }
                for i in range(count)
            ],
        )
        monday = NOW - timedelta(days=3)
        rows = []
        for i in range(count):
            follow_up = i >= 300
            rows.append(
                {
                    "campaign_id": campaign.id,
                    "lead_id": i + 1,
                    "status": EnrollmentStatus.ACTIVE,
                    "next_step": 2 if follow_up else 1,
                    "next_due_at": NOW - timedelta(minutes=count - i)
                    if follow_up
                    else monday + timedelta(seconds=i),
                    "mailbox_id": (boxes[0] if i < 312 else boxes[1]) if follow_up else None,
                    "references": [],
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            )
        # Not due, or not active: never in the batch.
        rows[5]["next_due_at"] = NOW + timedelta(hours=1)
        rows[6]["status"] = EnrollmentStatus.REPLIED
        await session.execute(insert(Enrollment), rows)
        return campaign.id, boxes


async def test_follow_ups_come_first_a_few_per_mailbox_then_first_steps(db: Database) -> None:
    campaign_id, boxes = await populate(db)
    async with db.session() as session:
        rows = (await session.execute(repo.due_enrollments_query([campaign_id], NOW, 50))).all()
    steps = [e.next_step for e, _ in rows]
    assert len(rows) == 50
    follow_ups = [e for e, _ in rows if e.next_step == 2]
    # Mailbox 0 has 12 due follow-ups but sends 10 at most per batch; mailbox 1 all 3.
    assert [e.mailbox_id for e in follow_ups].count(boxes[0]) == 10
    assert [e.mailbox_id for e in follow_ups].count(boxes[1]) == 3
    assert steps == [2] * 13 + [1] * 37
    dues = [e.next_due_at for e in follow_ups]
    assert dues == sorted(dues)
    first = [e for e, _ in rows if e.next_step == 1]
    assert [e.id for e in first] == [i for i in range(1, 40) if i not in (6, 7)][:37]
    lead = rows[13][1]
    assert lead.timezone == "Europe/Paris" and lead.email_domain == "p.example"


async def test_the_per_mailbox_bound_and_the_limit_are_parameters(db: Database) -> None:
    campaign_id, boxes = await populate(db)
    async with db.session() as session:
        few = (
            await session.execute(repo.due_enrollments_query([campaign_id], NOW, 5, per_mailbox=2))
        ).all()
        none_yet = (
            await session.execute(
                repo.due_enrollments_query([campaign_id], NOW - timedelta(days=4), 50)
            )
        ).all()
    assert [(e.next_step, e.mailbox_id) for e, _ in few] == [
        (2, boxes[0]),
        (2, boxes[0]),
        (2, boxes[1]),
        (2, boxes[1]),
        (1, None),
    ]
    assert none_yet == []
