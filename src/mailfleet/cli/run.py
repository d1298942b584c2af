"""``mailfleet run``: the long-running process on the system clock.

One asyncio loop runs, side by side:

* the engine: reconcile what a crash left in flight, then tick — send the warmup
  that is due (marked with the installation's ``MAILFLEET_WARMUP_MARKER_PREFIX``
  and ``_HEADER``), plan and send the cold mail that is due — and sleep until the
  next send is due (at most ``idle_wake``);
* the inbox sync: every mailbox watched over IMAP IDLE or polled (POP3);
* the health pass every ``--health-every`` minutes (:func:`~mailfleet.engine.health.apply_health`),
  and as often the warmup receiver (:class:`~mailfleet.engine.warmup_receiver.WarmupReceiver`);
* the Prometheus endpoint on ``--metrics-host``:``--metrics-port`` (loopback by default).

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
from typing import Annotated

import typer
import uvicorn

from mailfleet.api import create_app
from mailfleet.cli.common import console, fail, settings
from mailfleet.clock import Clock, SystemClock
from mailfleet.config import Settings
from mailfleet.engine.health import apply_health
from mailfleet.engine.inbox import InboxSync
from mailfleet.engine.inbox_settings import InboxSettings
from mailfleet.engine.runtime import Engine
from mailfleet.engine.warmup_receiver import WarmupReceiver
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
    ) -> None:
        self.config = config
        self.clock = clock
        self.metrics_host = metrics_host
        self.metrics_port = metrics_port
        self.health_every = health_every
        self.idle_wake = idle_wake
        self.read_inbox = read_inbox
        self.ready = asyncio.Event()  # set once the metrics endpoint listens
        self.bound_port: int | None = None

    async def _sleep(self, seconds: float, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))

    async def _send(self, engine: Engine, stop: asyncio.Event) -> None:
        """Tick until ``stop``; a tick in progress always finishes."""
        await engine.recover()
        while not stop.is_set():
            try:
                report = await engine.tick()
            except Exception:  # one bad tick must not end the process; the next retries
                log.exception("run: engine tick failed")
                await self._sleep(self.idle_wake.total_seconds(), stop)
                continue
            now = self.clock.now()
            wake = min(report.wake_at or now + self.idle_wake, now + self.idle_wake)
            if report.planned == 0:
                wake = max(wake, now + timedelta(seconds=1))
            if wake > now:
                await engine.pool.close_idle()
                await self._sleep((wake - now).total_seconds(), stop)

    async def _receive_warmup(self, receiver: WarmupReceiver, stop: asyncio.Event) -> None:
        """The peers' side of warmup: find, rescue, flag and answer warmup mail over IMAP."""
        while not stop.is_set():
            try:
                await receiver.run_once()
            except Exception:
                log.exception("run: warmup receiver pass failed")
            await self._sleep(self.health_every.total_seconds(), stop)

    async def _health(self, db: Database, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                report = await apply_health(db, self.clock.now())
            except Exception:
                log.exception("run: health pass failed")
            else:
                for paused in report.paused:
                    console.print(
                        f"health: paused {paused.address}: {paused.reason}; "
                        f"resume with `{paused.resume}`",
                        highlight=False,
                    )
            await self._sleep(self.health_every.total_seconds(), stop)

    def _listen(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.metrics_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.metrics_host, self.metrics_port))
        except OSError:
            sock.close()
            raise
        sock.listen(128)
        sock.setblocking(False)
        self.bound_port = int(sock.getsockname()[1])
        return sock

    async def run(self, stop: asyncio.Event) -> None:
        """Run everything until ``stop`` is set, then shut down in order."""
        box = SecretBox.from_key_file(
            self.config.resolved_key_file,
            self.config.secret_key.get_secret_value() if self.config.secret_key else None,
        )
        sock = self._listen()  # a taken port fails before anything else starts
        db = Database(self.config.resolved_database_url)
        try:
            await db.migrate()
        except BaseException:
            sock.close()
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
            settings=InboxSettings(warmup_marker=warmup.marker.prefix),
        )
        receiver = WarmupReceiver(db, self.clock, engine.credentials, config=warmup)
        server = _Server(
            uvicorn.Config(
                create_app(db, self.clock), log_level="warning", lifespan="off", access_log=False
            )
        )
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="metrics")
        tasks = [
            asyncio.create_task(self._send(engine, stop), name="engine"),
            asyncio.create_task(self._health(db, stop), name="health"),
        ]
        if self.read_inbox:
            tasks.append(asyncio.create_task(inbox.run(stop), name="inbox"))
            tasks.append(asyncio.create_task(self._receive_warmup(receiver, stop), name="warmup"))
        try:
            listening = asyncio.create_task(server.listening.wait())
            await asyncio.wait({serving, listening}, return_when=asyncio.FIRST_COMPLETED)
            listening.cancel()
            if serving.done():
                serving.result()  # raises what stopped the server
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
            with contextlib.suppress(Exception):
                await serving
            sock.close()
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
    health_every: Annotated[
        float, typer.Option("--health-every", min=0.1, help="Minutes between health passes.")
    ] = 5.0,
    no_inbox: Annotated[
        bool, typer.Option("--no-inbox", help="Do not read the mailboxes (sending only).")
    ] = False,
) -> None:
    """Run the engine, inbox sync, health pass and metrics endpoint until SIGINT/SIGTERM."""
    config = settings()
    runner = Runner(
        config,
        SystemClock(),
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        health_every=timedelta(minutes=health_every),
        read_inbox=not no_inbox,
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
            console.print(
                f"mailfleet running since {started:%Y-%m-%d %H:%M:%S %Z}; metrics on "
                f"http://{metrics_host}:{runner.bound_port}/metrics; "
                "stop with Ctrl-C or SIGTERM",
                highlight=False,
            )
        ready.cancel()
        await task
        console.print("mailfleet stopped", highlight=False)

    try:
        asyncio.run(main())
    except SecretError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(
            f"cannot listen on {metrics_host}:{metrics_port}: {exc.strerror or exc}"
        ) from None
