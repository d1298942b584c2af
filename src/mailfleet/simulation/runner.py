"""Run a scenario: the real engine against the sandbox on a virtual clock, then audit.

One driver owns the clock: it ticks the engine when the engine asks to
(:meth:`Engine.next_wake`, the rule ``run_until`` follows) and, in between,
lets the world act at the exact instant it acts — a fault strikes, a prospect's answer is due, an
inbox sync is due — so every action lands between two ticks and no tick is
added for it. The sandbox files the answers in the sending mailboxes' INBOX or
Junk, and the engine's :class:`~mailfleet.engine.inbox.InboxSync` reads the
mailboxes that received mail at once (as IMAP IDLE would), or all of them every
``inbox.sync_minutes``; what it reads ends sequences through the stop API.

The crash is the exception: it strikes *inside* a tick. Once armed, the first
message the sandbox accepts cancels the engine's task while the engine waits for
the server's 250 — the moment between claim and outcome that exactly-once must
survive. A new engine is built, ``recover()`` reconciles over IMAP, and the run
goes on.

The report (:mod:`mailfleet.simulation.report`) counts violations from the
sandbox's records only; the engine's tables are read afterwards, to tell whether
any send was lost or recorded wrongly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mailfleet.campaigns import CampaignSpec
from mailfleet.clock import VirtualClock
from mailfleet.engine.dns_checks import ResolverDomainChecker
from mailfleet.engine.health import apply_health
from mailfleet.engine.inbox import InboxSync, SyncReport
from mailfleet.engine.runtime import Engine, TickReport
from mailfleet.engine.warmup_receiver import WarmupReceiver
from mailfleet.readiness import assess
from mailfleet.sandbox import INBOX, JUNK, Answer, AnswerShares, Sandbox, Submission, start_sandbox
from mailfleet.services.gate import gather as gather_gate
from mailfleet.simulation import population
from mailfleet.simulation.faults import Burst, WorldBehaviour
from mailfleet.simulation.records import SubmissionLog
from mailfleet.simulation.scenario import (
    BadListFault,
    CrashFault,
    JunkFault,
    Scenario,
    ServerBusyFault,
    TokenRevokedFault,
)
from mailfleet.simulation.world import World, build_world
from mailfleet.store import Database, Send, SendStatus
from mailfleet.transport.dns import DnsResolver
from mailfleet.transport.secrets import SecretBox
from mailfleet.warmup import WarmupConfig

ERRORS_KEPT = 20


@dataclass(slots=True)
class RunProgress:
    """Where a run stands, for a progress bar."""

    start: datetime
    end: datetime
    now: datetime
    accepted: int = 0
    ticks: int = 0


ProgressCallback = Callable[[RunProgress], None]


@dataclass(slots=True)
class EngineTotals:
    """The engine's own tick reports, summed (for the report's ``engine`` section only)."""

    ticks: int = 0
    planned: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    stopped: int = 0
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)

    def add(self, report: TickReport) -> None:
        """Count one tick."""
        self.ticks += 1
        self.planned += report.planned
        self.sent += report.sent
        self.deferred += report.deferred
        self.failed += report.failed
        self.unknown += report.unknown
        self.stopped += report.stopped
        self.errors += len(report.errors)
        room = ERRORS_KEPT - len(self.first_errors)
        if room > 0:
            self.first_errors.extend(report.errors[:room])


@dataclass(slots=True)
class CrashRecord:
    """The crash: when it was armed, when it struck, what was in flight, what recovery did."""

    at: datetime
    armed: bool = False
    fired_at: datetime | None = None
    message_id: str | None = None
    in_flight: list[tuple[str, str]] = field(default_factory=list)  # (Message-ID, status)
    reconciled: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Filed:
    """A prospect's answer as the sandbox filed it in a sending mailbox."""

    answer: Answer
    at: datetime


class Simulation:
    """One scenario's run: the sandbox, the store, the engine and the world's events."""

    def __init__(
        self,
        scenario: Scenario,
        campaign: CampaignSpec,
        workdir: Path,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.scenario = scenario
        self.campaign = campaign
        self.workdir = workdir
        self.progress = progress
        self.start = scenario.start_at()
        self.end = scenario.end_at()
        self.clock = VirtualClock(self.start)
        self.log = SubmissionLog()
        self.filed: list[Filed] = []
        self.sync = SyncReport()
        self.engine_totals = EngineTotals()
        self.crash: CrashRecord | None = None
        self.behaviours: dict[str, WorldBehaviour] = {}
        self.revocations: list[dict[str, Any]] = []
        self.prospect_domains: frozenset[str] = frozenset()
        self.runtime: dict[str, float] = {}
        self._events: list[tuple[datetime, int, Callable[[], Awaitable[None]]]] = []
        self._task: asyncio.Task[TickReport] | None = None
        self._unread: set[str] = set()  # fleet mailboxes with mail the sync has not read
        self._fleet: dict[str, int] = {}  # address -> mailbox id
        self._next_sync: datetime | None = None
        self._box: SecretBox | None = None
        self._db: Database | None = None
        self._sandbox: Sandbox | None = None
        self._world: World | None = None
        self.warmup_config = (
            WarmupConfig(seed=scenario.seed) if scenario.fleet.warmup_enabled else None
        )
        self._receiver: WarmupReceiver | None = None
        self.gate: list[dict[str, str]] = []  # the pre-launch gate's findings at the start
        self.health_pauses: list[dict[str, Any]] = []  # mailboxes the health pass paused
        self.world_changes: list[dict[str, Any]] = []  # junk and bad-list faults as applied
        self.receiver_errors: list[str] = []

    # -- the whole run ------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Build the world, run every day of the scenario, audit; return the JSON report."""
        from mailfleet.simulation.report import build_report

        began = time.perf_counter()
        self.workdir.mkdir(parents=True, exist_ok=True)
        db = Database(f"sqlite+aiosqlite:///{self.workdir / 'simulation.db'}")
        self._db = db
        try:
            await db.migrate()
            self._box = SecretBox.from_key_file(self.workdir / "secret.key")
            sandbox = await start_sandbox(self.clock, self.workdir / "sandbox")
            self._sandbox = sandbox
            try:
                world = await build_world(
                    self.scenario, self.campaign, db, sandbox, self._box, self.start
                )
                self._world = world
                built = time.perf_counter()
                self._prepare(world, sandbox)
                await self._run_days()
                ran = time.perf_counter()
                report = await build_report(self, world, sandbox, db)
            finally:
                await sandbox.stop()
        finally:
            await db.close()
        report["runtime_seconds"] = {
            "build": round(built - began, 2),
            "run": round(ran - built, 2),
            "total": round(time.perf_counter() - began, 2),
        }
        return report

    # -- set-up -------------------------------------------------------------------------------

    def _prepare(self, world: World, sandbox: Sandbox) -> None:
        """Install the world's behaviour in the sandbox and schedule the faults."""
        scenario = self.scenario
        shares = scenario.prospects
        sandbox.prospects.shares = AnswerShares(
            reply=shares.reply,
            unsubscribe=shares.unsubscribe,
            out_of_office=shares.out_of_office,
            hard_bounce=shares.bounce_hard,
            soft_bounce=shares.bounce_soft,
            junk=shares.junk,
            seed=scenario.seed,
        )
        self.prospect_domains = frozenset(population.prospect_domains(scenario))
        self._fleet = dict(world.mailbox_ids)
        dead = frozenset(
            lead.email.lower()
            for lead in world.leads
            if population.refused_at_rcpt(shares, scenario.seed, lead.email.lower())
        )
        bursts: dict[str, list[Burst]] = {s.address: [] for s in world.senders}
        for number, fault in enumerate(scenario.faults):
            at = scenario.instant(fault.day, fault.time)
            if isinstance(fault, ServerBusyFault):
                target = world.sender(fault.mailbox).address
                bursts[target].append(Burst(at, at + timedelta(minutes=fault.minutes)))
            elif isinstance(fault, TokenRevokedFault):
                self._schedule(at, number, self._revoker(world, fault, at))
            elif isinstance(fault, CrashFault):
                self.crash = CrashRecord(at)
                self._schedule(at, number, self._arm_crash)
            elif isinstance(fault, JunkFault):
                domain = world.sender(fault.mailbox).domain
                self._schedule(at, number, self._junk(domain, fault.share, at, fault.mailbox))
                if fault.days is not None:
                    lifted = at + timedelta(days=fault.days)
                    self._schedule(lifted, number, self._junk(domain, 0.0, lifted, fault.mailbox))
            elif isinstance(fault, BadListFault):
                address = world.sender(fault.mailbox).address
                self._schedule(at, number, self._bad_list(address, fault.share, at))
        for sender in world.senders:
            behaviour = WorldBehaviour(
                sender.address,
                hostname=sandbox.hostname,
                dead=dead,
                bursts=bursts[sender.address],
                log=self.log,
            )
            self.behaviours[sender.address] = behaviour
            sandbox.set_behaviour(sender.address, behaviour)
        sandbox.smtp.deliver = self._deliver
        sandbox.store.add_listener(self._mail_arrived)
        if scenario.inbox.sync_minutes:
            self._next_sync = self.start + timedelta(minutes=scenario.inbox.sync_minutes)
        # Periodic passes as world events, numbered after the faults so those go first.
        if scenario.health.every_minutes:
            every = timedelta(minutes=scenario.health.every_minutes)
            self._schedule(self.start + every, 10_000, self._health_pass(every))
        if self.warmup_config is not None:
            every = timedelta(minutes=scenario.warmup.receive_minutes)
            self._schedule(self.start + every, 10_001, self._receive_pass(every))

    def _junk(
        self, domain: str, share: float, at: datetime, mailbox: int | str
    ) -> Callable[[], Awaitable[None]]:
        async def file_in_junk() -> None:
            assert self._sandbox is not None
            self._sandbox.set_junk_share("*", domain, share)
            self.world_changes.append(
                {
                    "kind": "junk",
                    "mailbox": mailbox,
                    "domain": domain,
                    "share": share,
                    "at": at.isoformat(),
                }
            )

        return file_in_junk

    def _bad_list(self, address: str, share: float, at: datetime) -> Callable[[], Awaitable[None]]:
        async def bounce() -> None:
            assert self._sandbox is not None
            self._sandbox.prospects.set_sender_bounce(address, share)
            self.world_changes.append(
                {"kind": "bad_list", "mailbox": address, "share": share, "at": at.isoformat()}
            )

        return bounce

    def _health_pass(self, every: timedelta) -> Callable[[], Awaitable[None]]:
        async def health() -> None:
            assert self._db is not None
            now = self.clock.now()
            report = await apply_health(self._db, now)
            for paused in report.paused:
                self.health_pauses.append(
                    {"mailbox": paused.address, "at": now.isoformat(), "reason": paused.reason}
                )
            if now + every < self.end:
                self._schedule(now + every, 10_000, health)

        return health

    def _receive_pass(self, every: timedelta) -> Callable[[], Awaitable[None]]:
        async def receive() -> None:
            now = self.clock.now()
            if self._receiver is not None:
                found = await self._receiver.run_once()
                self.receiver_errors.extend(found.errors[: max(0, 20 - len(self.receiver_errors))])
            if now + every < self.end:
                self._schedule(now + every, 10_001, receive)

        return receive

    async def _check_gate(self) -> None:
        """The pre-launch gate as ``campaign start`` runs it, DNS from the sandbox nameserver.

        The world's campaign runs regardless (as ``--force`` would); the report lists why
        the gate would have refused.
        """
        assert self._db is not None and self._world is not None and self._sandbox is not None
        checker = ResolverDomainChecker(DnsResolver(self._sandbox.dns_address, timeout=5))
        facts = await gather_gate(self._db, self._world.campaign_id, self.clock.now(), checker)
        self.gate = [
            {"level": f.level, "code": f.code, "message": f.message} for f in assess(facts)
        ]

    def _schedule(self, at: datetime, number: int, action: Callable[[], Awaitable[None]]) -> None:
        self._events.append((at, number, action))
        self._events.sort(key=lambda e: (e[0], e[1]))

    def _revoker(
        self, world: World, fault: TokenRevokedFault, at: datetime
    ) -> Callable[[], Awaitable[None]]:
        sender = world.sender(fault.mailbox)
        login = world.apps[sender.address]
        note: dict[str, Any] = {
            "kind": fault.kind,
            "mailbox": sender.address,
            "at": at.isoformat(),
            "grant": fault.grant,
        }
        self.revocations.append(note)

        async def revoke() -> None:
            assert self._sandbox is not None
            tokens = self._sandbox.tokens
            note["tokens_revoked"] = tokens.revoke_app_tokens(login.tenant, login.client_id)
            if fault.grant:
                # The secret the mailbox holds stops working: every refresh is refused.
                tokens.register_app(
                    login.tenant,
                    login.client_id,
                    login.client_secret + "-rotated",
                    {sender.address},
                )

        return revoke

    async def _arm_crash(self) -> None:
        assert self.crash is not None
        self.crash.armed = True

    # -- the sandbox's side -------------------------------------------------------------------

    def _deliver(self, submission: Submission, now: datetime) -> None:
        """The submission server accepted a message: file it, and log what the sandbox saw."""
        assert self._sandbox is not None
        self._sandbox.deliver(submission, now)
        item = self.log.accept(now, submission.sender, submission.recipients, submission.raw)
        crash = self.crash
        if crash is not None and crash.armed and crash.fired_at is None:
            # The server has the message; the engine is waiting for the 250. Die now.
            crash.fired_at = now
            crash.message_id = item.message_id
            if self._task is not None:
                self._task.cancel()

    def _mail_arrived(self, address: str, folder: str) -> None:
        if folder in (INBOX, JUNK) and address in self._fleet:
            self._unread.add(address)

    # -- the run ------------------------------------------------------------------------------

    def _engine(self) -> Engine:
        assert self._db is not None and self._box is not None
        return Engine(
            self._db,
            self.clock,
            self._box,
            public_url="https://mailfleet.simulation.test",
            unsubscribe_key=self._box.derive("unsubscribe-links"),
            seed=self.scenario.seed,
            warmup=self.warmup_config,
        )

    def _receiver_for(self, engine: Engine) -> WarmupReceiver | None:
        assert self._db is not None
        if self.warmup_config is None:
            return None
        return WarmupReceiver(self._db, self.clock, engine.credentials, config=self.warmup_config)

    def _inbox(self, engine: Engine) -> InboxSync:
        assert self._db is not None
        return InboxSync(self._db, self.clock, engine.credentials, seed=self.scenario.seed)

    async def _run_days(self) -> None:
        """Tick when the engine asks to, act when the world does, sleep on the clock between."""
        await self._check_gate()
        engine = self._engine()
        inbox = self._inbox(engine)
        self._receiver = self._receiver_for(engine)
        wake = self.clock.now()
        try:
            while self.clock.now() < self.end:
                await self._act(inbox)
                now = self.clock.now()
                if now >= wake:
                    report = await self._tick(engine)
                    if report is None:  # the crash: a new engine, and it ticks at once
                        await inbox.close()
                        if self._receiver is not None:
                            await self._receiver.close()
                        engine = await self._restart(engine)
                        inbox = self._inbox(engine)
                        self._receiver = self._receiver_for(engine)
                        continue
                    wake = engine.next_wake(report)
                    if wake > now:
                        await engine.pool.close_idle()
                target = min(wake, self.end)
                for moment in (
                    self._events[0][0] if self._events else None,
                    self._sandbox.prospects.next_answer_at() if self._sandbox else None,
                    self._next_sync,
                ):
                    if moment is not None and moment < target:
                        target = moment
                if target > now:
                    await self.clock.sleep((target - now).total_seconds())
        finally:
            await inbox.close()
            if self._receiver is not None:
                await self._receiver.close()
            await engine.close()

    async def _act(self, inbox: InboxSync) -> None:
        """Everything due now: fault events, the prospects' answers, the inbox sync."""
        assert self._sandbox is not None
        now = self.clock.now()
        while self._events and self._events[0][0] <= now:
            _, _, action = self._events.pop(0)
            await action()
        self._sandbox.release_answers(now)
        answers = self._sandbox.prospects.answers()
        self.filed.extend(Filed(a, now) for a in answers[len(self.filed) :])
        if self._next_sync is not None:
            if now >= self._next_sync:
                self.sync.merge(await inbox.sync_all())
                self._unread.clear()
                step = timedelta(minutes=self.scenario.inbox.sync_minutes)
                while self._next_sync <= now:
                    self._next_sync += step
            return
        unread, self._unread = sorted(self._unread), set()
        for address in unread:
            try:
                self.sync.merge(await inbox.sync_mailbox(self._fleet[address]))
            except Exception as exc:  # a disconnected mailbox, a refused login: noted, not fatal
                self.sync.errors.append(f"{address}: {type(exc).__name__}: {exc}")

    async def _tick(self, engine: Engine) -> TickReport | None:
        """One engine tick, as a task the crash can cancel; None when the crash struck."""
        task = asyncio.create_task(engine.tick())
        self._task = task
        try:
            await asyncio.wait({task})
        finally:
            self._task = None
        if task.cancelled():
            return None
        report = task.result()  # an engine bug surfaces here, not silently
        self.engine_totals.add(report)
        if self.progress is not None:
            self.progress(
                RunProgress(
                    self.start,
                    self.end,
                    self.clock.now(),
                    accepted=len(self.log.received),
                    ticks=self.engine_totals.ticks,
                )
            )
        return report

    async def _restart(self, dead: Engine) -> Engine:
        """After the crash: drop the dead engine's sessions, start afresh, reconcile."""
        crash = self.crash
        assert crash is not None and self._db is not None
        with contextlib.suppress(Exception):
            await dead.close()
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(Send.message_id, Send.status).where(
                        Send.status.in_((SendStatus.CLAIMED, SendStatus.SUBMITTING))
                    )
                )
            ).all()
        crash.in_flight = [(str(mid), str(status)) for mid, status in rows]
        engine = self._engine()
        settled = await engine.reconcile()
        crash.reconciled = {
            "found_in_sent_items": len(settled.found),
            "released_for_retry": len(settled.released),
            "left_unknown": len(settled.unknown),
            "errors": len(settled.errors),
        }
        return engine


async def run_scenario(
    scenario: Scenario,
    campaign: CampaignSpec,
    workdir: Path,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Run ``scenario`` with ``campaign`` in ``workdir``; return the JSON-able report."""
    return await Simulation(scenario, campaign, workdir, progress).run()
