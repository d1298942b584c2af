"""The demo's prospects answer, and what the inbox sync reads from them changes what is sent."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from mailfleet.config import Settings
from mailfleet.demo import run_demo
from mailfleet.store import Database, Enrollment, InboundMessage, Send, SendStatus, Suppression


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MAILFLEET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MAILFLEET_DATABASE_URL", raising=False)
    monkeypatch.delenv("MAILFLEET_SECRET_KEY", raising=False)
    return Settings()


async def test_answers_reach_the_sending_mailboxes_and_stop_or_pause_sequences(
    settings: Settings,
) -> None:
    summary = await run_demo(settings, days=2, today=date(2026, 3, 2), lead_count=40)
    assert summary.errors == []
    assert summary.leads_with_step1_once == 40 and summary.duplicate_sends == 0
    assert summary.replies > 0 and summary.auto_replies > 0
    db = Database(settings.resolved_database_url)
    try:
        async with db.session() as session:
            inbound = (await session.scalars(select(InboundMessage))).all()
            sends = (
                await session.scalars(select(Send).where(Send.status == SendStatus.SENT))
            ).all()
            enrollments = {e.id: e for e in (await session.scalars(select(Enrollment))).all()}
            suppressed = {s.value for s in (await session.scalars(select(Suppression))).all()}
    finally:
        await db.close()
    assert {m.kind for m in inbound} >= {"reply", "auto_reply", "warmup"}
    assert all(m.enrollment_id is not None for m in inbound if m.kind not in ("other", "warmup"))
    # Warmup between the demo's mailboxes is read as warmup, never as a prospect's answer.
    warm = [m for m in inbound if m.kind == "warmup"]
    assert warm and all(m.enrollment_id is None for m in warm)
    assert summary.warmup_sent > 0 and summary.warmup_found_in_inbox > 0
    for message in inbound:
        later = [
            s
            for s in sends
            if s.enrollment_id == message.enrollment_id and s.claimed_at > message.synced_at
        ]
        if message.kind in ("reply", "unsubscribe") or message.hard:
            # Stop means stop: nothing more went to that lead once the answer was read.
            assert later == [], message.from_address
            assert enrollments[message.enrollment_id or 0].status != "active"
        if message.kind == "auto_reply" and message.data.get("paused_until"):
            assert all(s.claimed_at.isoformat() >= message.data["paused_until"] for s in later)
        if message.hard:
            assert message.from_address.startswith("postmaster@")
            assert enrollments[message.enrollment_id or 0].status == "bounced"
    hard = [m for m in inbound if m.hard]
    assert len(suppressed) >= len(hard)
