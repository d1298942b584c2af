"""Planner speed at fleet scale: 10,000 mailboxes, 1,000,000 enrollments, one SQLite file.

Builds a store mid-campaign (bulk core inserts: ten campaigns of 100,000 leads, each
sent by its 1,000 tagged mailboxes; most first steps due, follow-ups due over the
coming days, a day of send history per mailbox) and measures, on a virtual clock:

- **start-up**: ``Engine.load_usage()``, the mailboxes and the last day's sends read
  into memory once (ticks keep them up to date; printed, and in RESULT as startup_s);
- **tick**: one ``Engine.tick()`` at a busy instant (window open, every mailbox ready):
  everything the engine loads to plan, ``plan_sends``, and the claims. The SMTP
  side is replaced by an instant claim path that writes the planned sends as
  accepted in bulk, so the figure is planning, not message composition or I/O;
- **day**: the same engine ticking through a whole day every ``--cadence`` seconds
  (a tick plans every mailbox ready by then), the claims of one tick visible to
  the next; when ``--day-budget`` wall seconds cannot afford every tick, ticks are
  sampled evenly over the day and the mean tick is scaled up, and the output says so;
- **naive**: the baseline — every due enrollment re-evaluated, each mailbox's
  sends counted with one query per decision (``usage_counts``). It is measured on
  ``--naive-sample`` decisions and scaled to the whole due set, because the
  whole set would take the better part of an hour.

Peak memory is the process's ``ru_maxrss`` (the store is built with bounded
batches, so planning dominates).

    python bench/planner.py [--mailboxes 10000] [--enrollments 1000000] [--cadence 60]

Ends with ``RESULT tick_s=… day_s=… peak_rss_mib=… naive_tick_s=… ratio=…``.
Never fails on a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import resource
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, create_engine, func, insert, select, update
from sqlalchemy.engine import Engine as SyncEngine

from mailfleet.clock import VirtualClock
from mailfleet.engine.runtime import Engine, TickReport, mailbox_policy
from mailfleet.limits import MailboxUsage, admit
from mailfleet.planner import PlannedSend, local_day
from mailfleet.store import (
    Campaign,
    CampaignStatus,
    Database,
    Domain,
    Enrollment,
    EnrollmentStatus,
    Lead,
    Mailbox,
    Send,
    SendKind,
    SendStatus,
    Step,
    Workspace,
)
from mailfleet.store import repository as repo
from mailfleet.transport.secrets import SecretBox

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
BUSY = MONDAY + timedelta(hours=10)  # inside every campaign's window (UTC, 08:00-18:00)
BATCH = 20_000
STEP_DELAY = 3  # days between steps


def rows(count: int, make: Any) -> Iterator[list[dict[str, Any]]]:
    """``make(i)`` for i in range(count), in lists of :data:`BATCH`."""
    chunk: list[dict[str, Any]] = []
    for i in range(count):
        chunk.append(make(i))
        if len(chunk) == BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def build_store(url: str, mailboxes: int, enrollments: int, box: SecretBox) -> dict[str, Any]:
    """Fill the (migrated) store with bulk core inserts; return what was made."""
    started = time.perf_counter()
    engine: SyncEngine = create_engine(url.replace("+aiosqlite", ""))
    campaigns = 10
    per_campaign = enrollments // campaigns
    boxes_per_campaign = mailboxes // campaigns
    secret = box.seal({"password": "bench"})
    ages = (1, 7, 30, 90)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
        ws = conn.execute(
            insert(Workspace).values(slug="bench", name="Bench", created_at=MONDAY)
        ).inserted_primary_key[0]
        domains = mailboxes // 5
        for chunk in rows(
            domains,
            lambda i: {
                "workspace_id": ws,
                "name": f"send{i}.example",
                "provider": "microsoft365",
                "tenant": f"t{i // 10}.onmicrosoft.com",
                "created_at": MONDAY,
            },
        ):
            conn.execute(insert(Domain), chunk)
        domain_ids = [d for (d,) in conn.execute(select(Domain.id).order_by(Domain.id))]
        for chunk in rows(
            mailboxes,
            lambda i: {
                "workspace_id": ws,
                "domain_id": domain_ids[i // 5],
                "address": f"m{i}@send{i // 5}.example",
                "display_name": f"Sender {i}",
                "provider": "microsoft365",
                "tenant": f"t{i // 50}.onmicrosoft.com",
                "smtp_host": "127.0.0.1",
                "smtp_port": 9,
                "smtp_security": "plain",
                "auth_kind": "password",
                "secret": secret,
                "ramp_start": MONDAY.date() - timedelta(days=ages[i % len(ages)] - 1),
                "timezone": "UTC",
                "warmup_enabled": False,
                "tags": [f"c{i // boxes_per_campaign}"],
                "created_at": MONDAY - timedelta(days=90),
            },
        ):
            conn.execute(insert(Mailbox), chunk)
        box_ids = [b for (b,) in conn.execute(select(Mailbox.id).order_by(Mailbox.id))]
        campaign_ids = []
        for c in range(campaigns):
            cid = conn.execute(
                insert(Campaign).values(
                    workspace_id=ws,
                    name=f"Campaign {c}",
                    status=CampaignStatus.ACTIVE,
                    timezone="UTC",
                    window_days=[1, 2, 3, 4, 5],
                    window_start_minute=8 * 60,
                    window_end_minute=18 * 60,
                    use_lead_timezone=False,
                    mailbox_tags=[f"c{c}"],
                    settings={},
                    created_at=MONDAY - timedelta(days=14),
                    started_at=MONDAY - timedelta(days=14),
                )
            ).inserted_primary_key[0]
            campaign_ids.append(cid)
            conn.execute(
                insert(Step),
                [
                    {
                        "campaign_id": cid,
                        "position": p,
                        "delay_days": 0 if p == 1 else STEP_DELAY,
                        "subject": "Hello {{ company }}" if p == 1 else "",
                        "body_text": f"Step {p} for {{{{ first_name }}}}",
                        "threaded": True,
                        "variants": {},
                    }
                    for p in (1, 2, 3)
                ],
            )
        for chunk in rows(
            enrollments,
            lambda i: {
                "workspace_id": ws,
                "email": f"p{i}@co{i % 50_000}.example",
                "email_normalized": f"p{i}@co{i % 50_000}.example",
                "email_domain": f"co{i % 50_000}.example",
                "first_name": "Pat",
                "company": f"Co {i % 50_000}",
                "fields": {},
                "created_at": MONDAY - timedelta(days=14),
            },
        ):
            conn.execute(insert(Lead), chunk)
        first_lead = conn.execute(select(Lead.id).order_by(Lead.id).limit(1)).scalar_one()

        def enrollment(i: int) -> dict[str, Any]:
            c, k = divmod(i, per_campaign)
            c = min(c, campaigns - 1)
            mailbox = box_ids[c * boxes_per_campaign + k % boxes_per_campaign]
            roll = k % 20
            base: dict[str, Any] = {
                "campaign_id": campaign_ids[c],
                "lead_id": first_lead + i,
                "mailbox_id": None,
                "thread_message_id": None,
                "last_message_id": None,
                "thread_subject": None,
                "references": [],
                "created_at": MONDAY - timedelta(days=14),
                "updated_at": MONDAY,
            }
            if roll < 12:  # 60 %: first step due since last week (the backlog)
                base.update(
                    status=EnrollmentStatus.ACTIVE,
                    next_step=1,
                    next_due_at=MONDAY - timedelta(days=7) + timedelta(seconds=k * 7 % 604_800),
                )
            elif roll < 17:  # 25 %: a follow-up on its thread's mailbox, due from -12 h to +6 d
                base.update(
                    status=EnrollmentStatus.ACTIVE,
                    next_step=2 + roll % 2,
                    next_due_at=BUSY + timedelta(seconds=(k * 97) % 561_600 - 43_200),
                    mailbox_id=mailbox,
                    thread_message_id=f"<t{i}@bench>",
                    last_message_id=f"<t{i}@bench>",
                    thread_subject="Hello",
                )
            else:  # 15 %: finished or stopped
                base.update(
                    status=EnrollmentStatus.COMPLETED if roll < 19 else EnrollmentStatus.REPLIED,
                    next_step=4,
                    next_due_at=None,
                    mailbox_id=mailbox,
                )
            return base

        for chunk in rows(enrollments, enrollment):
            conn.execute(insert(Enrollment), chunk)
        # A day of history: each mailbox sent a few messages yesterday and this morning.
        history = mailboxes * 8

        def sent(i: int) -> dict[str, Any]:
            m = i % mailboxes
            at = MONDAY - timedelta(hours=14) + timedelta(seconds=(i * 37) % 86_000)
            at = min(at, BUSY - timedelta(minutes=30))
            return {
                "workspace_id": ws,
                "kind": SendKind.COLD,
                "mailbox_id": box_ids[m],
                "campaign_id": campaign_ids[min(m // boxes_per_campaign, campaigns - 1)],
                "step_position": 1,
                "message_id": f"<h{i}@bench>",
                "from_address": f"m{m}@bench",
                "to_address": f"h{i}@co{i % 50_000}.example",
                "recipient_domain": f"co{i % 50_000}.example",
                "recipients": 1,
                "subject": "Hello",
                "status": SendStatus.SENT,
                "attempts": 1,
                "claimed_at": at,
                "finished_at": at,
            }

        for chunk in rows(history, sent):
            conn.execute(insert(Send), chunk)
    engine.dispose()
    return {
        "campaigns": campaigns,
        "history_sends": history,
        "build_s": time.perf_counter() - started,
    }


SEND_COLUMNS = (
    "workspace_id",
    "kind",
    "mailbox_id",
    "enrollment_id",
    "campaign_id",
    "step_position",
    "message_id",
    "from_address",
    "to_address",
    "recipient_domain",
    "recipients",
    "subject",
    "status",
    "attempts",
    "claimed_at",
    "finished_at",
)


def _bind(column: Any, dialect: Any) -> Any:
    """The value ``column``'s type hands the driver for a Python value."""
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return process if process is not None else (lambda value: value)


def _sql(statement: Any, dialect: Any, order: tuple[str, ...]) -> tuple[str, Any]:
    """``statement`` compiled for ``dialect``, and a function putting a tuple of
    parameters in ``order`` into the order the compiled statement takes them."""
    if dialect.paramstyle != "qmark":
        raise SystemExit(
            f"bench: the claim stand-in needs qmark parameters, not {dialect.paramstyle}"
        )
    compiled = statement.compile(dialect=dialect, column_keys=list(order))
    taken = list(compiled.positiontup or [])
    if sorted(taken) != sorted(order):
        raise SystemExit(f"bench: unexpected parameters {taken}")
    if taken == list(order):
        return str(compiled), lambda values: values
    return str(compiled), operator.itemgetter(*(order.index(name) for name in taken))


class InstantEngine(Engine):
    """The engine with its claim path replaced by a bulk write of accepted sends.

    Planning — every query the tick makes and ``plan_sends`` — is the engine's own.
    The planned sends are written as accepted (one driver ``executemany``) and their
    enrollments moved to the next step (another), so the next tick counts them; no
    message is composed and no connection opened.
    """

    async def _claim(  # type: ignore[override]
        self,
        planned: list[PlannedSend],
        campaigns: dict[int, Campaign],
        boxes: dict[int, Mailbox],
        now: datetime,
        report: TickReport,
    ) -> list[Any]:
        if not planned:
            return []
        async with self.db.session() as session:
            ids = [p.enrollment_id for p in planned]
            leads = dict(
                (
                    await session.execute(
                        select(Enrollment.id, Lead.email_normalized)
                        .join(Lead, Lead.id == Enrollment.lead_id)
                        .where(Enrollment.id.in_(ids))
                    )
                ).all()
            )
            conn = await session.connection()
            # Every row of a tick shares its instants: convert them once with the columns'
            # own types, then hand the driver plain tuples (one executemany each) rather
            # than run SQLAlchemy's per-row parameter processing over thousands of rows.
            dialect = conn.dialect
            sends, enrollments = Send.__table__, Enrollment.__table__
            stamp = _bind(sends.c.claimed_at, dialect)
            at = stamp(now)
            later = _bind(enrollments.c.next_due_at, dialect)(now + timedelta(days=STEP_DELAY))
            cold, sent = str(SendKind.COLD.value), str(SendStatus.SENT.value)
            insert_sql, arrange = _sql(insert(sends), dialect, SEND_COLUMNS)
            await conn.exec_driver_sql(
                insert_sql,
                [
                    arrange(
                        (
                            campaigns[p.campaign_id].workspace_id,
                            cold,
                            p.mailbox_id,
                            p.enrollment_id,
                            p.campaign_id,
                            p.step,
                            f"<{uuid.uuid4().hex}@bench>",
                            boxes[p.mailbox_id].address,
                            leads[p.enrollment_id],
                            leads[p.enrollment_id].rpartition("@")[2],
                            1,
                            "Hello",
                            sent,
                            1,
                            at,
                            at,
                        )
                    )
                    for p in planned
                ],
            )
            moves = []
            active, completed = (
                str(EnrollmentStatus.ACTIVE.value),
                str(EnrollmentStatus.COMPLETED.value),
            )
            for p in planned:
                last = p.step >= len(campaigns[p.campaign_id].steps)
                moves.append(
                    (
                        p.step + 1,
                        None if last else later,
                        completed if last else active,
                        p.mailbox_id,
                        at,
                        p.enrollment_id,
                    )
                )
            update_sql, arrange = _sql(
                update(enrollments)
                .where(enrollments.c.id == bindparam("eid"))
                .values(
                    next_step=bindparam("step"),
                    next_due_at=bindparam("due"),
                    status=bindparam("state"),
                    mailbox_id=bindparam("box"),
                    updated_at=bindparam("at"),
                ),
                dialect,
                ("step", "due", "state", "box", "at", "eid"),
            )
            await conn.exec_driver_sql(update_sql, [arrange(m) for m in moves])
        report.sent += len(planned)
        return []


def make_engine(db: Database, clock: VirtualClock, box: SecretBox) -> InstantEngine:
    """The engine under test, on the virtual clock."""
    return InstantEngine(
        db, clock, box, public_url="https://bench.example", unsubscribe_key=b"k" * 32, seed=1
    )


async def naive_tick(db: Database, now: datetime, sample: int) -> tuple[float, float, int, int]:
    """The baseline: every due enrollment re-evaluated, one count query per decision.

    Returns the time to load, the time for ``sample`` decisions, the decisions made
    and how many enrollments are due (the decisions a whole tick would make).
    """
    async with db.session() as session:
        started = time.perf_counter()
        mailboxes = {m.id: m for m in (await session.scalars(select(Mailbox))).all()}
        due_total = int(
            await session.scalar(
                select(func.count()).where(
                    Enrollment.status == EnrollmentStatus.ACTIVE,
                    Enrollment.next_due_at <= now,
                )
            )
            or 0
        )
        due = await session.stream_scalars(
            select(Enrollment)
            .where(Enrollment.status == EnrollmentStatus.ACTIVE, Enrollment.next_due_at <= now)
            .order_by(Enrollment.next_due_at)
            .execution_options(yield_per=1000)
        )
        tags = {c.id: c.mailbox_tags for c in (await session.scalars(select(Campaign))).all()}
        by_tag: dict[str, list[Mailbox]] = {}
        for mailbox in mailboxes.values():
            for tag in mailbox.tags or []:
                by_tag.setdefault(tag, []).append(mailbox)
        used: set[int] = set()
        decisions = 0
        setup_s = time.perf_counter() - started
        started = time.perf_counter()
        async for enrollment in due:
            if decisions >= sample:
                break
            if enrollment.mailbox_id is not None:
                candidates = [mailboxes[enrollment.mailbox_id]]
            else:
                candidates = by_tag.get(tags[enrollment.campaign_id][0], [])[:3]
            for mailbox in candidates:
                if mailbox.id in used:
                    continue
                day, midnight = local_day(now, mailbox.timezone)
                counts = await repo.usage_counts(
                    session, mailbox.id, now, midnight - timedelta(days=1)
                )
                verdict = admit(
                    mailbox_policy(mailbox, now),
                    MailboxUsage(
                        cold_today=counts.cold_today,
                        messages_last_minute=counts.messages_last_minute,
                        oldest_in_last_minute=counts.oldest_in_last_minute,
                        messages_24h=counts.messages_24h,
                        recipients_24h=counts.recipients_24h,
                        oldest_in_24h=counts.oldest_in_24h,
                        last_send_at=counts.last_send_at,
                        last_send_id=counts.last_send_id,
                    ),
                    now,
                    local_day=day,
                    next_local_midnight=midnight,
                )
                decisions += 1
                if verdict.ok:
                    used.add(mailbox.id)
                    break
        return setup_s, time.perf_counter() - started, decisions, due_total


def copy_database(source: Path, target: Path) -> None:
    """Copy an SQLite database consistently (its WAL included) over ``target``."""
    for leftover in (target, target.with_name(target.name + "-wal")):
        leftover.unlink(missing_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="mailfleet-bench-") as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        db = Database(url)
        box = SecretBox.from_key_file(folder / "key")
        if not (folder / "bench.db").exists():
            await db.migrate()
            made = build_store(url, args.mailboxes, args.enrollments, box)
            size = (folder / "bench.db").stat().st_size / 2**20
            print(
                f"store: {args.mailboxes:,} mailboxes, {args.enrollments:,} enrollments, "
                f"{made['history_sends']:,} sends of history, {size:,.0f} MiB, "
                f"built in {made['build_s']:.1f} s (rss {rss_mib():.0f} MiB)"
            )
            if args.keep:
                # A kept store is a snapshot: later runs start from the same state.
                copy_database(folder / "bench.db", folder / "snapshot.db")
        else:
            copy_database(folder / "snapshot.db", folder / "bench.db")
            print(f"store: reused {folder / 'snapshot.db'}")

        clock = VirtualClock(BUSY)
        engine = make_engine(db, clock, box)
        # Start-up: the engine loads its mailboxes and the last day's sends once; ticks
        # then keep both up to date themselves.
        started = time.perf_counter()
        await engine.load_usage()
        startup_s = time.perf_counter() - started
        print(
            f"start-up (mailboxes and a day of sends into memory): {startup_s:.3f} s "
            f"(peak rss so far {rss_mib():.0f} MiB)"
        )
        started = time.perf_counter()
        report = await engine.tick()
        tick_s = time.perf_counter() - started
        print(
            f"tick at {BUSY:%a %H:%M}: {tick_s:.3f} s, planned {report.planned:,}, every "
            f"mailbox ready (peak rss so far {rss_mib():.0f} MiB)"
        )
        clock.advance(args.cadence)
        started = time.perf_counter()
        report = await engine.tick()
        next_s = time.perf_counter() - started
        print(f"next tick, {args.cadence:g} s later: {next_s:.3f} s, planned {report.planned:,}")

        # A whole day of one-minute ticks (each plans every mailbox ready by then), the
        # claims of each visible to the next. When the budget cannot afford them all,
        # ticks are sampled evenly across the day (every k-th minute, so each sampled
        # tick plans k minutes' worth) and the day is the mean tick times 1,440.
        day_start = datetime.combine(BUSY.date() + timedelta(days=1), datetime.min.time(), UTC)
        total_ticks = int(86_400 // args.cadence)
        # The budget is spent at the cost of an ordinary tick (the one after the busy one).
        stride = max(1, -(-total_ticks // max(1, int(args.day_budget / max(next_s, 1e-3)))))
        ticks = planned = 0
        started = time.perf_counter()
        for slot in range(0, total_ticks, stride):
            clock.advance_to(day_start + timedelta(seconds=args.cadence * slot))
            report = await engine.tick()
            ticks += 1
            planned += report.planned
        spent = time.perf_counter() - started
        await engine.close()
        day_s = spent * total_ticks / max(ticks, 1)
        how = "all measured" if stride == 1 else f"1 in {stride} measured, {ticks:,} in all"
        print(
            f"day {day_start:%a %d %b}: {day_s:.1f} s for {total_ticks:,} ticks of "
            f"{args.cadence:g} s ({how}; {spent / max(ticks, 1) * 1000:.0f} ms a tick; "
            f"{planned:,} sends planned; peak rss so far {rss_mib():.0f} MiB)"
        )

        setup_s, naive_s, decisions, due_total = await naive_tick(db, BUSY, args.naive_sample)
        each = naive_s / max(decisions, 1)
        naive_tick_s = setup_s + each * due_total
        print(
            f"naive: {setup_s:.2f} s to load, then {decisions:,} decisions in {naive_s:.2f} s "
            f"({each * 1000:.2f} ms each); {due_total:,} due enrollments "
            f"-> {naive_tick_s:,.0f} s for one tick"
        )
        await db.close()
    peak = rss_mib()
    ratio = naive_tick_s / tick_s if tick_s else float("inf")
    print(f"peak rss {peak:.0f} MiB; the tick is {ratio:,.0f}x the naive one")
    print(
        f"RESULT tick_s={tick_s:.3f} day_s={day_s:.1f} peak_rss_mib={peak:.0f} "
        f"naive_tick_s={naive_tick_s:.1f} ratio={ratio:.0f} startup_s={startup_s:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=10_000)
    parser.add_argument("--enrollments", type=int, default=1_000_000)
    parser.add_argument("--cadence", type=float, default=60.0, help="virtual seconds a tick")
    parser.add_argument("--naive-sample", type=int, default=5_000)
    parser.add_argument("--keep", help="build the store once in this folder and reuse it")
    parser.add_argument(
        "--day-budget", type=float, default=300.0, help="wall seconds the day may take"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
