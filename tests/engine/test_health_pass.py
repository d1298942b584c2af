"""The health pass on a real store: pauses on the right evidence, once, and respects a resume."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from health_rows import fleet, inbound, sends
from mailfleet.clock import utc
from mailfleet.engine.health import apply_health
from mailfleet.store import Database, Event, Mailbox
from mailfleet.store import credentials as store_credentials

NOW = utc(2026, 3, 30, 12)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'health.db'}")
    await database.migrate()
    yield database
    await database.close()


async def status_of(db: Database, mailbox_id: int) -> tuple[str, str | None]:
    async with db.session() as session:
        box = await session.get(Mailbox, mailbox_id)
        assert box is not None
        return box.status, box.status_reason


async def health_events(db: Database) -> list[Event]:
    async with db.session() as session:
        rows = await session.scalars(select(Event).where(Event.kind == "mailbox.paused"))
        return list(rows.all())


async def test_bouncing_mailbox_is_paused_once_with_reason_event_and_resume_command(
    db: Database,
) -> None:
    ids = await fleet(db, ["a@s.example", "b@s.example", "c@t.example"])
    a, b, c = ids["a@s.example"], ids["b@s.example"], ids["c@t.example"]
    await sends(db, a, 97, NOW - timedelta(days=3))
    await sends(db, a, 3, NOW - timedelta(days=3), status="failed", outcome="drop_recipient")
    await inbound(db, a, 2, NOW - timedelta(days=2))  # 5 hard of 100: 5 %
    await inbound(db, a, 4, NOW - timedelta(days=2), hard=False, status="4.2.2")
    await sends(db, b, 100, NOW - timedelta(days=3))
    await inbound(db, b, 2, NOW - timedelta(days=1))  # 2 %: not past it
    await sends(db, c, 10, NOW - timedelta(days=1))
    await inbound(db, c, 5, NOW - timedelta(hours=1))  # 50 %, but only 10 sends
    await sends(db, c, 500, NOW - timedelta(days=40))  # outside the window
    await sends(db, b, 50, NOW - timedelta(days=1), kind="warmup")  # not counted

    report = await apply_health(db, NOW)
    assert [(p.address, p.rule) for p in report.paused] == [("a@s.example", "hard_bounce_rate")]
    assert report.paused[0].resume == "mailfleet mailbox resume a@s.example"
    by = {m.evidence.address: m for m in report.mailboxes}
    assert by["a@s.example"].evidence.month.hard_bounces == 5
    assert by["a@s.example"].evidence.month.soft_bounces == 4
    assert by["a@s.example"].evidence.month.sends == 100
    assert by["b@s.example"].evidence.month.sends == 100 and by["b@s.example"].pause is None
    assert by["c@t.example"].evidence.month.sends == 10
    status, reason = await status_of(db, a)
    assert status == "paused" and reason is not None
    assert "5.0%" in reason and "mailfleet mailbox resume a@s.example" in reason
    events = await health_events(db)
    assert len(events) == 1 and events[0].data["source"] == "health"
    assert events[0].data["rule"] == "hard_bounce_rate" and events[0].data["events"] == 5

    again = await apply_health(db, NOW + timedelta(minutes=10))
    assert again.paused == [] and len(await health_events(db)) == 1


async def test_a_resume_is_respected_until_new_evidence_passes_the_threshold(
    db: Database,
) -> None:
    ids = await fleet(db, ["a@s.example"])
    a = ids["a@s.example"]
    await sends(db, a, 40, NOW - timedelta(days=5))
    await inbound(db, a, 4, NOW - timedelta(days=4))
    assert len((await apply_health(db, NOW - timedelta(days=3))).paused) == 1
    async with db.session() as session:
        box = await session.get(Mailbox, a)
        assert box is not None
        store_credentials.resume(session, box, NOW - timedelta(days=2))
    # The old evidence is still in the window, but a person acknowledged it.
    calm = await apply_health(db, NOW - timedelta(days=1))
    assert calm.paused == [] and (await status_of(db, a))[0] == "active"
    # New sends, still clean: nothing happens.
    await sends(db, a, 30, NOW - timedelta(hours=20))
    assert (await apply_health(db, NOW - timedelta(hours=12))).paused == []
    # New bounces after the resume pass the threshold on their own: paused again.
    await inbound(db, a, 2, NOW - timedelta(hours=6))
    report = await apply_health(db, NOW)
    assert [p.address for p in report.paused] == ["a@s.example"]
    assert "since it was resumed" in report.paused[0].reason
    assert len(await health_events(db)) == 2


async def test_complaints_and_domain_flag(db: Database) -> None:
    ids = await fleet(db, ["a@s.example", "b@s.example"])
    await sends(db, ids["a@s.example"], 500, NOW - timedelta(days=10))
    await inbound(db, ids["a@s.example"], 1, NOW - timedelta(days=9), kind="complaint", hard=None)
    await sends(db, ids["b@s.example"], 500, NOW - timedelta(days=10))
    await inbound(db, ids["b@s.example"], 1, NOW - timedelta(days=9), kind="complaint", hard=None)
    await inbound(db, ids["b@s.example"], 1, NOW - timedelta(days=9), status="5.7.26")
    report = await apply_health(db, NOW)
    assert sorted(p.rule for p in report.paused) == ["complaint_rate", "complaint_rate"]
    assert [d.name for d in report.flagged_domains] == ["s.example"]
    by = {m.evidence.address: m for m in report.mailboxes}
    assert by["b@s.example"].evidence.month.auth_failures == 1
    assert by["a@s.example"].score < 100
