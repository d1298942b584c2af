"""Warmup sender speed: a whole day of a fleet's warmup against the naive pass.

Builds a store of ``--mailboxes`` mailboxes (four to a sending domain, twenty to a
tenant, a month into their warmup so each plans about 40 sends a day), then drives
:class:`~mailfleet.engine.warmup.WarmupSender` through one day on a virtual clock,
ticking whenever it says its next send is due. The SMTP side is replaced by an
instant accept (the row still walks claimed → submitting → sent), so the figure is
the sender's own work: reading what it needs, planning, claiming and recording.

- **day**: the sender as it runs, keeping mailboxes, settings, day plans and
  claimed slots between ticks and looking only at the mailboxes whose time came;
- **naive** (the baseline, in the same run, on a copy of the same store): the same
  sender made to forget all of that before every tick, so each tick re-reads every
  mailbox and its settings and re-plans every mailbox's day, as a sender that keeps
  nothing would. It is measured over ``--naive-ticks`` ticks of the busy part of the
  day and scaled to the day's tick count.

Times are the process's CPU time (``time.process_time``, the SQLite threads
included), so other work on a shared machine counts little. Figures are printed,
never asserted.

    python bench/warmup.py [--mailboxes 200] [--naive-ticks 200]

Ends with ``RESULT day_s=… sends=… ticks=… per_send_ms=… naive_day_s=… ratio=…``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailfleet.clock import VirtualClock
from mailfleet.engine.credentials import CredentialCache
from mailfleet.engine.warmup import WarmupSender, WarmupTickReport
from mailfleet.store import Database, Domain, Mailbox, Workspace
from mailfleet.store.models import WarmupSettings
from mailfleet.transport.secrets import SecretBox
from mailfleet.transport.smtp import SmtpPool
from mailfleet.transport.submitter import FakeSubmitter
from mailfleet.warmup import WarmupConfig

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, 00:00 UTC


class InstantSender(WarmupSender):
    """The real sender; its submitter (a FakeSubmitter) answers 250 at once."""

    forget_between_ticks = False

    async def tick(self, now: datetime) -> WarmupTickReport:
        if self.forget_between_ticks:
            self._fingerprint = None  # re-read every mailbox and its settings
            self._full_at = None  # look at every mailbox
            for entry in self._boxes.values():
                entry.plan_key = None  # re-plan every day
                entry.done_day = None  # re-read the claimed slots
        return await super().tick(now)


async def build(path: Path, mailboxes: int) -> None:
    """The store: ``mailboxes`` on Microsoft 365, four to a domain, twenty to a tenant."""
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    started = (START - timedelta(days=30)).date()
    async with db.session() as session:
        ws = Workspace(slug="bench", name="Bench", created_at=START)
        session.add(ws)
        await session.flush()
        domains: dict[int, Domain] = {}
        for i in range(mailboxes):
            number = i // 4
            tenant = f"tenant{i // 20}.onmicrosoft.com"
            if number not in domains:
                domains[number] = Domain(
                    workspace_id=ws.id,
                    name=f"brand{number}.example",
                    provider="microsoft365",
                    tenant=tenant,
                    created_at=START,
                )
                session.add(domains[number])
                await session.flush()
            box = Mailbox(
                workspace_id=ws.id,
                domain_id=domains[number].id,
                address=f"rep{i % 4}@brand{number}.example",
                display_name=f"Rep {i}",
                provider="microsoft365",
                tenant=tenant,
                smtp_host="127.0.0.1",
                smtp_port=9,
                smtp_security="starttls",
                imap_host="127.0.0.1",
                imap_port=9,
                imap_security="tls",
                auth_kind="password",
                ramp_start=started,
                timezone="UTC",
                warmup_enabled=True,
                tags=[],
                created_at=START - timedelta(days=30),
            )
            session.add(box)
            await session.flush()
            session.add(
                WarmupSettings(
                    mailbox_id=box.id,
                    started_on=started,
                    paused=False,
                    weekdays_only=False,
                    shared_pool=False,
                    cold_cap_factor=1.0,
                    updated_at=START,
                )
            )
    await db.close()


async def drive(path: Path, *, forget: bool, max_ticks: int | None) -> tuple[float, int, int]:
    """Tick through the day; return (CPU seconds, ticks, sends)."""
    clock = VirtualClock(START)
    db = Database(f"sqlite+aiosqlite:///{path}")
    box = SecretBox.from_key_file(path.with_suffix(".key"))
    sender = InstantSender(
        db,
        clock,
        CredentialCache(box, clock),
        SmtpPool(clock),
        config=WarmupConfig(seed=7),
        submitter=FakeSubmitter(),
    )
    sender.forget_between_ticks = forget
    ticks = sends = 0
    end = START + timedelta(days=1)
    spent = 0.0
    try:
        while clock.now() < end and (max_ticks is None or ticks < max_ticks):
            now = clock.now()
            began = time.process_time()
            report = await sender.tick(now)
            spent += time.process_time() - began
            ticks += 1
            sends += len(report.sent)
            wake = sender.next_due(now) or now + timedelta(minutes=5)
            clock.advance_to(min(max(wake, now + timedelta(seconds=1)), end))
    finally:
        await db.close()
    return spent, ticks, sends


async def main_async(mailboxes: int, naive_ticks: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "warmup.db"
        began = time.perf_counter()
        await build(store, mailboxes)
        print(f"built {mailboxes} mailboxes in {time.perf_counter() - began:.1f}s")
        naive_store = Path(tmp) / "naive.db"
        shutil.copy(store, naive_store)
        day_s, ticks, sends = await drive(store, forget=False, max_ticks=None)
        print(f"day: {ticks} ticks, {sends} sends, {day_s:.2f}s CPU")
        naive_s, naive_count, naive_sends = await drive(
            naive_store, forget=True, max_ticks=naive_ticks
        )
        per_tick = naive_s / max(naive_count, 1)
        naive_day = per_tick * ticks
        print(
            f"naive: {naive_count} ticks ({naive_sends} sends) in {naive_s:.2f}s CPU, "
            f"{per_tick * 1000:.1f} ms a tick; the day's {ticks} ticks ≈ {naive_day:.1f}s"
        )
        ratio = naive_day / day_s if day_s else float("inf")
        print(
            f"RESULT day_s={day_s:.2f} sends={sends} ticks={ticks} "
            f"per_send_ms={day_s / max(sends, 1) * 1000:.2f} naive_day_s={naive_day:.1f} "
            f"ratio={ratio:.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mailboxes", type=int, default=200)
    parser.add_argument("--naive-ticks", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main_async(args.mailboxes, args.naive_ticks))


if __name__ == "__main__":
    main()
