"""The usage ledger counts what the store would count, after any sends, changes and re-syncs.

Two layers of proof: a property test drives the ledger through random sequences
(claims, outcomes that stop or keep a send counted, acceptance, sends noted by
another part of the process, re-loads from the rows) against a recount over the
same rows; and a store test checks that recount against the repository's SQL on a
real SQLite store, so "what the store counts" is the repository's own answer.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from mailfleet.clock import utc
from mailfleet.engine.ledger import HORIZON, LedgerSend, UsageLedger
from mailfleet.planner import local_day
from mailfleet.store import (
    Campaign,
    CampaignStatus,
    Database,
    Domain,
    Mailbox,
    Send,
    SendKind,
    SendStatus,
    Workspace,
)
from mailfleet.store import repository as repo
from mailfleet.store.repository import COUNTED, CountedSend, UsageCounts

START = utc(2026, 3, 28, 6)  # the night London moves to summer time falls inside the runs
ZONES = ("UTC", "Europe/London", "America/New_York")
DOMAINS = ("a.example", "b.example", "c.example")


@dataclass
class Row:
    """A send row of the model store."""

    id: int
    mailbox_id: int
    claimed_at: datetime
    kind: str
    recipients: int
    campaign_id: int | None
    workspace_id: int
    recipient_domain: str
    status: str

    def counted(self) -> CountedSend:
        return CountedSend(
            self.id,
            self.mailbox_id,
            self.claimed_at,
            self.kind,
            self.recipients,
            self.campaign_id,
            self.workspace_id,
            self.recipient_domain,
            self.status,
        )


def day_start(now: datetime, zone: str) -> datetime:
    return local_day(now, zone)[1] - timedelta(days=1)


def recount(rows: list[Row], mailbox_id: int, now: datetime, start_of_day: datetime) -> UsageCounts:
    """What :func:`repo.usage_by_mailbox` counts, recomputed by brute force."""
    since_day, since_minute = now - timedelta(days=1), now - timedelta(minutes=1)
    mine = [
        r
        for r in rows
        if r.mailbox_id == mailbox_id
        and r.status in COUNTED
        and r.claimed_at >= min(since_day, start_of_day)
    ]
    if not mine:
        return repo.UsageCounts(0, 0, None, 0, 0, None, None, 0)
    day = [r for r in mine if r.claimed_at >= since_day]
    minute = [r for r in mine if r.claimed_at >= since_minute]
    cold = [r for r in mine if r.kind == SendKind.COLD]
    cold_day = [r for r in cold if r.claimed_at >= since_day]
    return UsageCounts(
        cold_today=sum(1 for r in cold if r.claimed_at >= start_of_day),
        messages_last_minute=len(minute),
        oldest_in_last_minute=min((r.claimed_at for r in minute), default=None),
        messages_24h=len(day),
        recipients_24h=sum(r.recipients for r in day),
        oldest_in_24h=min((r.claimed_at for r in day), default=None),
        last_send_at=max(r.claimed_at for r in mine),
        last_send_id=max(r.id for r in mine),
        warmup_today=sum(
            1
            for r in mine
            if r.kind == SendKind.WARMUP
            and r.status == SendStatus.SENT
            and r.claimed_at >= start_of_day
        ),
        last_cold_at=max((r.claimed_at for r in cold), default=None),
        cold_24h=len(cold_day),
        oldest_cold_24h=min((r.claimed_at for r in cold_day), default=None),
    )


def by_domain(rows: list[Row], mailbox_id: int, start_of_day: datetime) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        if (
            r.mailbox_id == mailbox_id
            and r.status in COUNTED
            and r.kind == SendKind.COLD
            and r.claimed_at >= start_of_day
        ):
            out[r.recipient_domain] = out.get(r.recipient_domain, 0) + 1
    return out


def ledger_send(row: Row) -> LedgerSend:
    return LedgerSend(
        row.mailbox_id,
        row.claimed_at,
        row.kind,
        row.recipients,
        row.id,
        row.campaign_id,
        row.workspace_id,
        row.recipient_domain,
        accepted=row.status == SendStatus.SENT,
    )


def assert_agrees(
    ledger: UsageLedger, rows: list[Row], now: datetime, zones: dict[int, str]
) -> None:
    for mailbox_id, zone in zones.items():
        start = day_start(now, zone)
        assert ledger.usage(mailbox_id, now, start) == recount(rows, mailbox_id, now, start)
        assert ledger.cold_by_recipient_domain(mailbox_id, start) == by_domain(
            rows, mailbox_id, start
        )
    counted = [r for r in rows if r.status in COUNTED]
    for campaign_id in (1, 2):
        since = now - timedelta(hours=9)
        expected = sum(1 for r in counted if r.campaign_id == campaign_id and r.claimed_at >= since)
        assert ledger.campaign_since(campaign_id, since) == expected
    expected_domains: dict[tuple[int, str], int] = {}
    for r in counted:
        if r.kind == SendKind.COLD and r.claimed_at >= now - timedelta(days=1):
            key = (r.workspace_id, r.recipient_domain)
            expected_domains[key] = expected_domains.get(key, 0) + 1
    assert ledger.recipient_domains_24h([1], DOMAINS, now) == expected_domains
    ids = list(zones)
    day = [r for r in counted if r.claimed_at >= now - timedelta(days=1)]
    cold_day = [r for r in day if r.kind == SendKind.COLD]
    assert ledger.group_cold_24h(ids, now) == (
        len(cold_day),
        min((r.claimed_at for r in cold_day), default=None),
    )
    assert ledger.group_recipients_24h(ids, now) == (
        sum(r.recipients for r in day),
        min((r.claimed_at for r in day), default=None),
    )


operation = st.one_of(
    st.tuples(
        st.just("claim"),
        st.integers(1, 3),  # mailbox
        st.sampled_from([SendKind.COLD, SendKind.COLD, SendKind.WARMUP]),
        st.integers(1, 3),  # recipients
        st.sampled_from(DOMAINS),
        st.sampled_from([1, 2, None]),
    ),
    st.tuples(st.just("outcome"), st.integers(0, 40), st.sampled_from(list(SendStatus))),
    st.tuples(st.just("reclaim"), st.integers(0, 40)),
    st.tuples(st.just("resync")),
    st.tuples(st.just("prune")),
    st.tuples(st.just("wait"), st.integers(0, 600)),  # minutes
)


@settings(max_examples=150, deadline=None)
@given(
    ops=st.lists(operation, max_size=60),
    zones=st.lists(st.sampled_from(ZONES), min_size=3, max_size=3),
)
def test_ledger_counts_equal_a_recount_of_the_rows(
    ops: list[tuple[object, ...]], zones: list[str]
) -> None:
    rows: list[Row] = []
    ledger = UsageLedger()
    ledger.load([], START)
    now = START
    by_mailbox = {i + 1: zone for i, zone in enumerate(zones)}
    for op in ops:
        kind = op[0]
        if kind == "claim":
            _, mailbox_id, send_kind, recipients, domain, campaign = op
            row = Row(
                len(rows) + 1,
                int(mailbox_id),  # type: ignore[call-overload]
                now,
                str(send_kind),
                int(recipients),  # type: ignore[call-overload]
                campaign if send_kind == SendKind.COLD else None,  # type: ignore[arg-type]
                1,
                str(domain),
                SendStatus.CLAIMED,
            )
            rows.append(row)
            ledger.record(ledger_send(row))
        elif kind == "outcome" and rows:
            row = rows[int(op[1]) % len(rows)]  # type: ignore[call-overload]
            if row.status not in COUNTED or row.status == SendStatus.SENT:
                # A send that ended uncounted comes back only by being re-claimed; an
                # accepted one is final (the state machine never leaves ``sent``).
                continue
            row.status = str(op[2])
            # What the engine does after an outcome: forget it, or mark it accepted.
            if row.status not in COUNTED:
                ledger.forget(row.id)
            elif row.status == SendStatus.SENT:
                ledger.accept(row.id)
        elif kind == "reclaim" and rows:
            # A deferred send planned again keeps its row (and Message-ID): one count, new time.
            row = rows[int(op[1]) % len(rows)]  # type: ignore[call-overload]
            row.claimed_at, row.status = now, SendStatus.CLAIMED
            ledger.record(ledger_send(row))
        elif kind == "resync":
            ledger.load(
                [
                    r.counted()
                    for r in rows
                    if r.status in COUNTED and r.claimed_at >= now - HORIZON
                ],
                now,
            )
        elif kind == "prune":
            ledger.prune(now)
        elif kind == "wait":
            now += timedelta(minutes=int(op[1]))  # type: ignore[call-overload]
        assert_agrees(ledger, rows, now, by_mailbox)


change = st.one_of(
    st.tuples(st.just("status"), st.integers(0, 60), st.sampled_from(list(SendStatus))),
    st.tuples(st.just("move"), st.integers(0, 60), st.integers(1, 3), st.integers(-300, 300)),
    st.tuples(st.just("add"), st.integers(1, 3), st.integers(-1800, 0)),
    st.tuples(st.just("note"), st.integers(1, 3)),
)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    changes=st.lists(change, max_size=30),
    later=st.integers(0, 1800),  # minutes between the load and the re-sync
)
def test_a_resync_of_the_stale_sends_equals_a_reload(
    seed: int, changes: list[tuple[object, ...]], later: int
) -> None:
    """Changes made behind the ledger (another process) are all caught by ``stale``."""
    pick = random.Random(seed)
    kinds = (SendKind.COLD, SendKind.COLD, SendKind.WARMUP)

    def row(i: int, mailbox_id: int, at: datetime) -> Row:
        kind = pick.choice(kinds)
        return Row(
            i,
            mailbox_id,
            at,
            str(kind),
            pick.randint(1, 3),
            pick.choice((1, 2)) if kind == SendKind.COLD else None,
            1,
            pick.choice(DOMAINS),
            str(pick.choice(COUNTED)),
        )

    rows = [row(i + 1, pick.randint(1, 3), START + timedelta(minutes=i * 17)) for i in range(40)]
    load_at = START + timedelta(hours=12)
    ledger = UsageLedger()
    ledger.load([r.counted() for r in rows if r.status in COUNTED], load_at)
    now = load_at + timedelta(minutes=later)
    for op in changes:
        what = op[0]
        if what == "status":
            rows[int(op[1]) % len(rows)].status = str(op[2])  # type: ignore[call-overload]
        elif what == "move":
            target = rows[int(op[1]) % len(rows)]  # type: ignore[call-overload]
            target.mailbox_id = int(op[2])  # type: ignore[call-overload]
            target.claimed_at += timedelta(minutes=int(op[3]))  # type: ignore[call-overload]
        elif what == "add":
            at = now + timedelta(minutes=int(op[2]))  # type: ignore[call-overload]
            rows.append(row(len(rows) + 1, int(op[1]), at))  # type: ignore[call-overload]
        else:  # a send noted without a row: a re-load drops it, and so does a re-sync
            ledger.record(LedgerSend(int(op[1]), now, SendKind.WARMUP, accepted=True))  # type: ignore[call-overload]
    live = [r for r in rows if r.status in COUNTED and r.claimed_at >= now - HORIZON]
    keys = [repo.SendKey(r.id, r.mailbox_id, r.claimed_at, r.status) for r in live]
    changed = set(ledger.stale(keys, now))
    for r in live:
        if r.id in changed:
            ledger.record(ledger_send(r))
    assert ledger.loaded_at == now
    assert_agrees(ledger, rows, now, {1: "UTC", 2: "Europe/London", 3: "America/New_York"})


def test_a_send_noted_twice_with_its_id_counts_once_and_warmup_waits_for_acceptance() -> None:
    ledger = UsageLedger()
    ledger.load([], START)
    send = LedgerSend(1, START, SendKind.WARMUP, 2, send_id=7, accepted=True)
    ledger.record(send)
    ledger.record(send)
    usage = ledger.usage(1, START, day_start(START, "UTC"))
    assert (usage.messages_24h, usage.recipients_24h, usage.warmup_today) == (1, 2, 1)
    ledger.record(send._replace(send_id=8, accepted=False))  # claimed, not yet accepted
    usage = ledger.usage(1, START, day_start(START, "UTC"))
    assert (usage.messages_24h, usage.warmup_today) == (2, 1)
    ledger.accept(8)
    assert ledger.usage(1, START, day_start(START, "UTC")).warmup_today == 2
    ledger.forget(999)  # an id it never saw: nothing happens
    assert ledger.counts() == {1: 2}


# -- the recount is what the store counts -------------------------------------------------------


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    await database.migrate()
    yield database
    await database.close()


async def test_ledger_loaded_from_the_store_agrees_with_the_repository(db: Database) -> None:
    now = START + timedelta(days=1, hours=4)
    rng = random.Random(5)
    async with db.session() as session:
        ws = Workspace(slug="w", name="W", created_at=START)
        session.add(ws)
        await session.flush()
        domain = Domain(workspace_id=ws.id, name="s.example", provider="generic", created_at=START)
        session.add(domain)
        await session.flush()
        boxes = []
        for i, zone in enumerate(ZONES):
            box = Mailbox(
                workspace_id=ws.id,
                domain_id=domain.id,
                address=f"m{i}@s.example",
                provider="generic",
                smtp_host="h",
                smtp_port=587,
                smtp_security="starttls",
                auth_kind="password",
                timezone=zone,
                tags=[],
                created_at=START,
            )
            session.add(box)
            boxes.append(box)
        campaign = Campaign(
            workspace_id=ws.id,
            name="c",
            status=CampaignStatus.ACTIVE,
            timezone="UTC",
            window_days=[1, 2, 3, 4, 5, 6, 7],
            window_start_minute=0,
            window_end_minute=1440,
            settings={},
            mailbox_tags=[],
            created_at=START,
        )
        session.add(campaign)
        await session.flush()
        values = []
        for i in range(400):
            at = now - timedelta(minutes=rng.randrange(0, 30 * 60))
            if i % 50 == 0:
                at = now - timedelta(seconds=rng.randrange(0, 60))  # a few in the last minute
            kind = rng.choice([SendKind.COLD, SendKind.COLD, SendKind.WARMUP])
            values.append(
                {
                    "workspace_id": ws.id,
                    "kind": kind,
                    "mailbox_id": rng.choice(boxes).id,
                    "campaign_id": campaign.id if kind == SendKind.COLD else None,
                    "message_id": f"<{i}@s.example>",
                    "from_address": "m@s.example",
                    "to_address": f"p{i}@x",
                    "recipient_domain": rng.choice(DOMAINS),
                    "recipients": rng.randint(1, 3),
                    "subject": "",
                    "status": rng.choice(list(SendStatus)),
                    "attempts": 1,
                    "claimed_at": at,
                }
            )
        await session.execute(insert(Send), values)
    async with db.session() as session:
        usage = await repo.usage_by_mailbox(session, boxes, now)
        domains = await repo.cold_by_recipient_domain(session, boxes, DOMAINS, now)
        spread = await repo.recipient_domains_24h(session, [ws.id], DOMAINS, now)
        since = day_start(now, "UTC")
        campaign_today = await repo.campaign_cold_today(session, campaign.id, since)
        ledger = UsageLedger()
        ledger.load(await repo.counted_sends_since(session, now - HORIZON), now)
    for box in boxes:
        start = day_start(now, box.timezone)
        assert ledger.usage(box.id, now, start) == usage[box.id]
        assert ledger.cold_by_recipient_domain(box.id, start) == domains.get(box.id, {})
    assert ledger.recipient_domains_24h([ws.id], DOMAINS, now) == spread
    assert ledger.campaign_since(campaign.id, since) == campaign_today
    assert sum(u.messages_24h for u in usage.values()) > 100  # the data exercised the counts


async def test_a_mailbox_update_changes_its_fingerprint(db: Database) -> None:
    async with db.session() as session:
        ws = Workspace(slug="w", name="W", created_at=START)
        session.add(ws)
        await session.flush()
        domain = Domain(workspace_id=ws.id, name="s.example", provider="generic", created_at=START)
        session.add(domain)
        await session.flush()
        box = Mailbox(
            workspace_id=ws.id,
            domain_id=domain.id,
            address="m@s.example",
            provider="generic",
            smtp_host="h",
            smtp_port=587,
            smtp_security="starttls",
            auth_kind="password",
            tags=[],
            created_at=START,
        )
        session.add(box)
    async with db.session() as session:
        before = await repo.mailbox_fingerprint(session, [ws.id])
    async with db.session() as session:
        loaded = await session.get(Mailbox, box.id)
        assert loaded is not None
        loaded.paused_until = START + timedelta(hours=1)
    async with db.session() as session:
        after = await repo.mailbox_fingerprint(session, [ws.id])
        fresh = await session.get(Mailbox, box.id)
        assert fresh is not None and fresh.revision == 1
    assert before != after and after[0] == before[0]


# -- the engine's public contract for other senders (warmup) ---------------------------------


async def test_engine_note_send_and_mailbox_usage_share_the_limits(
    db: Database, tmp_path: Path
) -> None:
    from mailfleet.clock import VirtualClock
    from mailfleet.engine.runtime import Engine
    from mailfleet.transport.secrets import SecretBox

    now = utc(2026, 3, 2, 10)
    async with db.session() as session:
        ws = Workspace(slug="w", name="W", created_at=now)
        session.add(ws)
        await session.flush()
        domain = Domain(workspace_id=ws.id, name="s.example", provider="generic", created_at=now)
        session.add(domain)
        await session.flush()
        box = Mailbox(
            workspace_id=ws.id,
            domain_id=domain.id,
            address="m@s.example",
            provider="generic",
            smtp_host="h",
            smtp_port=587,
            smtp_security="starttls",
            auth_kind="password",
            timezone="Europe/London",
            tags=[],
            created_at=now,
        )
        session.add(box)
        session.add(
            Campaign(
                workspace_id=ws.id,
                name="c",
                status=CampaignStatus.ACTIVE,
                timezone="UTC",
                window_days=[1, 2, 3, 4, 5, 6, 7],
                window_start_minute=0,
                window_end_minute=1440,
                settings={},
                mailbox_tags=[],
                created_at=now,
            )
        )
    clock = VirtualClock(now)
    engine = Engine(
        db,
        clock,
        SecretBox.from_key_file(tmp_path / "key"),
        public_url="https://mf.example",
        unsubscribe_key=b"k" * 32,
    )
    try:
        with pytest.raises(LookupError, match="not loaded"):
            engine.mailbox_usage(box.id, now)
        await engine.load_usage()
        assert engine.mailbox_usage(box.id, now).messages_24h == 0
        engine.note_send(box.id, now, SendKind.WARMUP, 3)
        usage = engine.mailbox_usage(box.id, now + timedelta(seconds=30))
        assert (usage.messages_last_minute, usage.recipients_24h, usage.warmup_today) == (1, 3, 1)
        assert usage.last_send_at == now
        with pytest.raises(ValueError, match="at least one"):
            engine.note_send(box.id, now, SendKind.WARMUP, 0)
        # A send another process stored is read back at the next tick, once.
        async with db.session() as session:
            await session.execute(
                insert(Send),
                [
                    {
                        "workspace_id": ws.id,
                        "kind": SendKind.WARMUP,
                        "mailbox_id": box.id,
                        "message_id": "<w1@s.example>",
                        "from_address": box.address,
                        "to_address": "peer@x.example",
                        "recipient_domain": "x.example",
                        "recipients": 1,
                        "subject": "",
                        "status": SendStatus.SENT,
                        "attempts": 1,
                        "claimed_at": now + timedelta(minutes=1),
                    }
                ],
            )
        clock.advance(120)
        await engine.tick()
        await engine.tick()
        usage = engine.mailbox_usage(box.id, clock.now())
        assert (usage.messages_24h, usage.warmup_today) == (2, 2)
        assert usage.last_send_at == now + timedelta(minutes=1)
    finally:
        await engine.close()
