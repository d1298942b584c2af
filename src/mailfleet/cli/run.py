"""``mailfleet run``: the long-running process on the system clock.

One asyncio loop runs, side by side:

* the engine: reconcile what a crash left in flight, then tick — send the warmup
  that is due (marked with the installation's ``MAILFLEET_WARMUP_MARKER_PREFIX``
  and ``_HEADER``), plan and send the cold mail that is due — and sleep until the
  next send is due (at most ``idle_wake``);
* the inbox sync: every mailbox watched over IMAP IDLE or polled (POP3);
* the health pass every ``--health-every`` minutes (:func:`~mailfleet.engine.health.apply_health`),
  and as often the warmup receiver (:class:`~mailfleet.engine.warmup_receiver.WarmupReceiver`);
* the Prometheus endpoint on ``--metrics-host``:``--metrics-port`` (loopback by default);
* the public endpoint (one-click unsubscribe and its page, :mod:`mailfleet.api.public`) on
  its own listener, ``MAILFLEET_PUBLIC_BIND`` (``--public-bind``), for a TLS reverse proxy.

SIGINT or SIGTERM stops it gracefully: the tick in progress finishes and records
its outcomes, the inbox sync logs out, the HTTP server closes, then the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer
import uvicorn

from mailfleet.api import create_app
from mailfleet.api.public import create_public_app
from mailfleet.cli.common import console, fail, settings, setup_logging
from mailfleet.clock import Clock
from mailfleet.config import Settings, parse_bind
from mailfleet.engine.faults import FaultLog
from mailfleet.engine.health import apply_health
from mailfleet.engine.inbox import InboxSync
from mailfleet.engine.inbox_settings import InboxSettings
from mailfleet.engine.runtime import Engine, TickReport
from mailfleet.engine.scheduler import Scheduler, Work
from mailfleet.engine.warmup_receiver import WarmupReceiver
from mailfleet.inbox import InboxPolicy
from mailfleet.store import Database
from mailfleet.transport.secrets import SecretBox, SecretError

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: ``run`` owns SIGINT and SIGTERM."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.listening.set()


def listen(host: str, port: int) -> socket.socket:
    """A non-blocking listening socket on ``host``:``port`` (0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(host, port, exc) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _quiet_server(app: Any) -> _Server:
    """uvicorn for one of the process's apps, logging warnings only."""
    return _Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))


class ListenError(OSError):
    """A listener could not bind: names the address."""

    def __init__(self, host: str, port: int, cause: OSError) -> None:
        super().__init__(cause.errno, f"cannot listen on {host}:{port}: {cause.strerror or cause}")
        self.host, self.port = host, port


class Runner:
    """The engine, inbox sync, health pass and metrics endpoint of one process."""

    def __init__(
        self,
        config: Settings,
        clock: Clock,
        *,
        metrics_host: str = "127.0.0.1",
        metrics_port: int = 9464,
        health_every: timedelta = timedelta(minutes=5),
        idle_wake: timedelta = timedelta(minutes=1),
        read_inbox: bool = True,
        public_bind: tuple[str, int] | None = None,
        verbose: bool = False,
    ) -> None:
        self.config = config
        self.clock = clock
        self.metrics_host = metrics_host
        self.metrics_port = metrics_port
        self.health_every = health_every
        self.idle_wake = idle_wake
        self.read_inbox = read_inbox
        self.recheck_every = timedelta(minutes=30)
        self.faults = FaultLog()
        self.verbose = verbose
        self.public_bind = public_bind or parse_bind(config.public_bind, "MAILFLEET_PUBLIC_BIND")
        self.ready = asyncio.Event()  # set once both endpoints listen
        self.bound_port: int | None = None
        self.public_port: int | None = None

    def _engine_job(self, engine: Engine) -> Work:
        """Recover what a crash left in flight, then tick: warmup and cold sends that are due."""
        recovered = False

        async def tick(now: datetime) -> datetime:
            nonlocal recovered
            if not recovered:
                await engine.recover()
                recovered = True
            report = await engine.tick()
            self._say(report)
            now = self.clock.now()
            wake = min(report.wake_at or now + self.idle_wake, now + self.idle_wake)
            if report.planned == 0:
                wake = max(wake, now + timedelta(seconds=1))
            if wake > now:
                await engine.pool.close_idle()
            return wake

        return tick

    def _say(self, report: TickReport) -> None:
        """One console and log line for a tick that sent, refused or failed something."""
        done = {
            "cold sent": report.sent,
            "warmup sent": report.warmup_sent,
            "deferred": report.deferred,
            "failed": report.failed,
            "unknown": report.unknown,
            "dropped (stopped meanwhile)": report.stopped,
        }
        parts = [f"{n} {what}" for what, n in done.items() if n]
        if not parts and not report.errors:
            return
        line = f"{report.at:%H:%M:%S} " + ", ".join(parts or ["nothing sent"])
        if report.errors:
            line += f"; {len(report.errors)} error(s): {report.errors[0]}"
        if self.verbose:
            console.print(line, highlight=False, soft_wrap=True)
        log.info("run: %s", line)

    def _recheck_job(self, engine: Engine) -> Work:
        """Look ``unknown`` sends up in their Sent folders again."""

        async def recheck(now: datetime) -> None:
            report = await engine.reconcile(unknown_checked_before=now - self.recheck_every)
            if report.found:
                log.info("run: %d unknown send(s) found in Sent folders", len(report.found))

        return recheck

    def _health_job(self, db: Database) -> Work:
        """The health pass: pause mailboxes whose bounces or complaints say so."""

        async def health(now: datetime) -> None:
            report = await apply_health(db, now)
            for paused in report.paused:
                console.print(
                    f"health: paused {paused.address}: {paused.reason}; "
                    f"resume with `{paused.resume}`",
                    highlight=False,
                )

        return health

    @staticmethod
    def _receiver_job(receiver: WarmupReceiver) -> Work:
        """The peers' side of warmup: find, rescue, flag and answer warmup mail over IMAP."""

        async def receive(now: datetime) -> None:
            await receiver.run_once()

        return receive

    def _scheduler(self, engine: Engine, db: Database, receiver: WarmupReceiver) -> Scheduler:
        """The process's periodic jobs on its clock."""
        scheduler = Scheduler(self.clock, self.faults)
        scheduler.add("engine tick", self.idle_wake, self._engine_job(engine))
        scheduler.add("health pass", self.health_every, self._health_job(db))
        scheduler.add(
            "unknown-send re-check",
            self.recheck_every,
            self._recheck_job(engine),
            first_after=self.recheck_every,
        )
        if self.read_inbox:
            scheduler.add("warmup receiver", self.health_every, self._receiver_job(receiver))
        self.scheduler = scheduler
        return scheduler

    def _listen(self) -> socket.socket:
        sock = listen(self.metrics_host, self.metrics_port)
        self.bound_port = int(sock.getsockname()[1])
        return sock

    async def run(self, stop: asyncio.Event) -> None:
        """Run everything until ``stop`` is set, then shut down in order."""
        box = SecretBox.from_key_file(
            self.config.resolved_key_file,
            self.config.secret_key.get_secret_value() if self.config.secret_key else None,
        )
        sock = self._listen()  # a taken port fails before anything else starts
        try:
            public_sock = listen(*self.public_bind)
        except BaseException:
            sock.close()
            raise
        self.public_port = int(public_sock.getsockname()[1])
        db = Database(self.config.resolved_database_url)
        try:
            await db.migrate()
        except BaseException:
            sock.close()
            public_sock.close()
            await db.close()
            raise
        warmup = self.config.warmup_config()
        engine = Engine(
            db,
            self.clock,
            box,
            public_url=self.config.public_url,
            unsubscribe_key=box.derive("unsubscribe-links"),
            idle_wake=self.idle_wake,
            warmup=warmup,  # the fleet's warmup goes out in the same ticks as cold mail
        )
        inbox = InboxSync(
            db,
            self.clock,
            engine.credentials,
            faults=self.faults,
            settings=InboxSettings(
                warmup_marker=warmup.marker.prefix,
                policy=InboxPolicy(unsubscribe_keys=tuple(box.derive_all("unsubscribe-links"))),
            ),
        )
        receiver = WarmupReceiver(db, self.clock, engine.credentials, config=warmup)
        server = _quiet_server(create_app(db, self.clock, self.faults))
        public = _quiet_server(
            create_public_app(db, self.clock, lambda: box.derive_all("unsubscribe-links"))
        )
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="metrics")
        serving_public = asyncio.create_task(public.serve(sockets=[public_sock]), name="public")
        scheduler = self._scheduler(engine, db, receiver)
        tasks = [asyncio.create_task(scheduler.run(stop), name="scheduler")]
        if self.read_inbox:
            tasks.append(asyncio.create_task(inbox.run(stop), name="inbox"))
        try:
            for srv, task in ((server, serving), (public, serving_public)):
                listening = asyncio.create_task(srv.listening.wait())
                await asyncio.wait({task, listening}, return_when=asyncio.FIRST_COMPLETED)
                listening.cancel()
                if task.done():
                    task.result()  # raises what stopped the server
            self.ready.set()
            await stop.wait()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            stop.set()
            for task in tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            server.should_exit = True
            public.should_exit = True
            for task in (serving, serving_public):
                with contextlib.suppress(Exception):
                    await task
            sock.close()
            public_sock.close()
            await inbox.close()
            await receiver.close()
            await engine.close()
            await db.close()


def run(
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address of the metrics endpoint.")
    ] = "127.0.0.1",
    metrics_port: Annotated[
        int, typer.Option("--metrics-port", min=0, max=65535, help="Port (0: any free one).")
    ] = 9464,
    public_bind: Annotated[
        str | None,
        typer.Option(
            "--public-bind",
            help="HOST:PORT of the public unsubscribe endpoint (default MAILFLEET_PUBLIC_BIND).",
        ),
    ] = None,
    health_every: Annotated[
        float, typer.Option("--health-every", min=0.1, help="Minutes between health passes.")
    ] = 5.0,
    no_inbox: Annotated[
        bool, typer.Option("--no-inbox", help="Do not read the mailboxes (sending only).")
    ] = False,
) -> None:
    """Run the engine, inbox sync, health pass, metrics and public endpoints until SIGTERM."""
    config = settings()
    try:
        bind = parse_bind(public_bind or config.public_bind, "--public-bind")
    except ValueError as exc:
        raise fail(str(exc)) from None
    setup_logging(config)
    runner = Runner(
        config,
        config.clock(),
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        health_every=timedelta(minutes=health_every),
        read_inbox=not no_inbox,
        public_bind=bind,
        verbose=True,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        started = datetime.now().astimezone()
        task = asyncio.create_task(runner.run(stop))
        ready = asyncio.create_task(runner.ready.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if runner.ready.is_set():
            host = f"[{bind[0]}]" if ":" in bind[0] else bind[0]
            console.print(
                f"mailfleet running since {started:%Y-%m-%d %H:%M:%S %Z}; metrics on "
                f"http://{metrics_host}:{runner.bound_port}/metrics; "
                f"unsubscribe endpoint on http://{host}:{runner.public_port} "
                f"(links point at {config.public_url}); "
                f"log {config.resolved_log_file}; stop with Ctrl-C or SIGTERM",
                highlight=False,
            )
            log.info("run: started; public endpoint %s:%s", bind[0], runner.public_port)
        ready.cancel()
        await task
        console.print("mailfleet stopped", highlight=False)

    try:
        asyncio.run(main())
    except SecretError as exc:
        raise fail(str(exc)) from None
    except ListenError as exc:
        raise fail(exc.strerror or str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot start: {exc.strerror or exc}") from None
