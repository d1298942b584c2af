"""The Prometheus endpoint reads the store on each scrape: queue, usage, caps, lag, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from health_rows import fleet, inbound, sends
from mailfleet.api import create_app
from mailfleet.api.metrics import gather_metrics, render
from mailfleet.clock import VirtualClock, utc
from mailfleet.store import Database, Event, Mailbox, MailboxFolderState

NOW = utc(2026, 3, 30, 12)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'metrics.db'}")
    await database.migrate()
    yield database
    await database.close()


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_scrape_exposes_store_numbers(db: Database) -> None:
    ids = await fleet(db, ["a@s.example", "b@s.example"])
    a, b = ids["a@s.example"], ids["b@s.example"]
    await sends(db, a, 30, NOW - timedelta(hours=2))
    await sends(db, a, 2, NOW - timedelta(minutes=5), status="claimed")
    await sends(db, a, 1, NOW - timedelta(minutes=5), status="unknown")
    await sends(db, b, 4, NOW - timedelta(hours=1), kind="warmup")
    await inbound(db, a, 3, NOW - timedelta(hours=1))
    async with db.session() as session:
        box = await session.get(Mailbox, a)
        assert box is not None
        box.provider = "microsoft365"  # the generic preset has no recipient limit
        session.add(
            MailboxFolderState(
                mailbox_id=a,
                folder="INBOX",
                role="inbox",
                uid_validity=1,
                last_uid=5,
                synced_at=NOW - timedelta(seconds=90),
                resyncs=0,
            )
        )
        session.add(
            Event(
                workspace_id=1,
                at=NOW - timedelta(hours=3),
                kind="mailbox.disconnected",
                mailbox_id=b,
                message="refresh token revoked",
                data={},
            )
        )
    body = render(await gather_metrics(db, NOW))
    got = samples(body)
    box_a = (("domain", "s.example"), ("mailbox", "a@s.example"))
    assert got[("mailfleet_sends", (("kind", "cold"), ("status", "sent")))] == 30
    assert got[("mailfleet_sends", (("kind", "warmup"), ("status", "sent")))] == 4
    assert got[("mailfleet_sends_pending", (("status", "claimed"),))] == 2
    assert got[("mailfleet_sends_pending", (("status", "unknown"),))] == 1
    assert got[("mailfleet_sends_pending", (("status", "submitting"),))] == 0
    assert got[("mailfleet_mailbox_recipients_24h", box_a)] == 33  # claimed/unknown count too
    assert got[("mailfleet_mailbox_recipients_24h_limit", box_a)] == 10_000
    box_b = (("domain", "s.example"), ("mailbox", "b@s.example"))
    assert ("mailfleet_mailbox_recipients_24h_limit", box_b) not in got
    assert got[("mailfleet_mailbox_cold_today_cap", box_a)] >= 15
    assert got[("mailfleet_inbox_sync_lag_seconds", box_a)] == 90
    assert (
        "mailfleet_inbox_sync_lag_seconds",
        (("domain", "s.example"), ("mailbox", "b@s.example")),
    ) not in got
    assert (
        got[("mailfleet_mailbox_health_score", box_a)] == 60
    )  # 3 hard of 31: the bounce share (40) is gone
    assert got[("mailfleet_credential_failures_24h", (("kind", "mailbox.disconnected"),))] == 1
    assert got[("mailfleet_mailboxes", (("status", "active"),))] == 2
    assert got[("mailfleet_domain_flagged", (("domain", "s.example"),))] == 0
    assert got[("mailfleet_enrollments_due", ())] == 0


async def test_the_app_serves_metrics_and_reads_fresh_numbers_each_scrape(db: Database) -> None:
    ids = await fleet(db, ["a@s.example"])
    app = create_app(db, VirtualClock(NOW))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        first = await client.get("/metrics")
        assert first.status_code == 200 and first.headers["content-type"].startswith("text/plain")
        key = ("mailfleet_sends", (("kind", "cold"), ("status", "sent")))
        assert key not in samples(first.content)
        await sends(db, ids["a@s.example"], 5, NOW - timedelta(hours=1))
        second = await client.get("/metrics")
        assert samples(second.content)[key] == 5
        assert (await client.get("/healthz")).text == "ok\n"
        assert (await client.post("/metrics")).status_code == 405


async def test_a_store_that_cannot_be_read_is_a_503_not_a_crash(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an SQLite database, whatever its name says" * 100)
    broken = Database(f"sqlite+aiosqlite:///{garbage}")
    try:
        transport = httpx.ASGITransport(app=create_app(broken, VirtualClock(NOW)))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            answer = await client.get("/metrics")
            assert answer.status_code == 503 and "store unavailable" in answer.text
            assert (await client.get("/healthz")).status_code == 200
    finally:
        await broken.close()


async def test_faults_the_process_survived_are_exposed_by_component(db: Database) -> None:
    import logging

    from mailfleet.engine.faults import FaultLog

    faults = FaultLog()
    faults.record("inbox watcher 7", RuntimeError("boom"), NOW, logging.getLogger("t"))
    faults.record("inbox watcher 7", RuntimeError("boom"), NOW, logging.getLogger("t"))
    app = create_app(db, VirtualClock(NOW), faults)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://m") as c:
        body = (await c.get("/metrics")).text
    assert 'mailfleet_process_faults{component="inbox watcher 7"} 2.0' in body
