"""``mailfleet sandbox``: the emulated Microsoft 365 world on loopback, on its own.

It starts SMTP submission (STARTTLS, XOAUTH2), IMAP, the OAuth token service, a DNS
server with the sending domains' records and simulated prospects who reply, bounce and
go out of office, registers its mailboxes in the current data folder, prints the
endpoints and runs until SIGINT or SIGTERM — so ``mailfleet run`` (in another terminal,
same ``MAILFLEET_HOME``) sends to it exactly as to real servers. Every message it
accepts is appended to ``$MAILFLEET_HOME/sandbox/received.jsonl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import fields, replace
from typing import Annotated

import typer

from mailfleet.cli.common import console, fail, settings, setup_logging
from mailfleet.config import Settings
from mailfleet.sandbox import AnswerShares, start_sandbox
from mailfleet.sandbox.world import SandboxPorts
from mailfleet.services import sandbox as service
from mailfleet.store import Database
from mailfleet.transport.secrets import SecretBox, SecretError


def parse_answers(text: str) -> AnswerShares:
    """``reply=0.2,out_of_office=0.1`` as prospect answer shares (the rest keep defaults)."""
    values: dict[str, float] = {}
    names = [f.name for f in fields(AnswerShares) if f.name != "seed"]
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name.strip() not in names:
            raise ValueError(f"--answers: {part!r} is not NAME=SHARE (names: {', '.join(names)})")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--answers: {value!r} is not a number") from None
    return replace(AnswerShares(), **values)  # type: ignore[arg-type]


async def _serve(
    config: Settings, count: int, ports: SandboxPorts, aged: int, answers: AnswerShares
) -> None:
    clock = config.clock()
    folder = config.home / "sandbox"
    folder.mkdir(parents=True, exist_ok=True)
    box = SecretBox.from_key_file(
        config.resolved_key_file,
        config.secret_key.get_secret_value() if config.secret_key else None,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    db = Database(config.resolved_database_url)
    try:
        await db.migrate()
        async with await start_sandbox(clock, folder, ports=ports) as sandbox:
            sandbox.journal = folder / "received.jsonl"
            sandbox.prospects.shares = answers
            done = await service.register(
                db,
                box,
                sandbox,
                service.app_secret(folder),
                count=count,
                workspace_slug="sandbox",
                at=clock.now(),
                aged_days=aged,
            )
            await db.close()
            console.print(
                f"sandbox ready: SMTP {sandbox.smtp_host}:{sandbox.smtp_port} (STARTTLS), "
                f"IMAP {sandbox.imap_host}:{sandbox.imap_port} (TLS), tokens "
                f"{sandbox.token_base_url}, DNS {sandbox.dns.address}",
                highlight=False,
                soft_wrap=True,
            )
            console.print(
                f"workspace {done.workspace!r}: {len(done.mailboxes)} mailbox(es) "
                f"({done.added} new): {', '.join(done.mailboxes)}",
                highlight=False,
                soft_wrap=True,
            )
            console.print(
                f"prospects answer at {', '.join(service.PROSPECT_DOMAINS)}; received mail "
                f"in {sandbox.journal}; for the gate's DNS checks: "
                f"export MAILFLEET_DNS_NAMESERVER={sandbox.dns.address}",
                highlight=False,
                soft_wrap=True,
            )
            while not stop.is_set():
                sandbox.release_answers(clock.now())  # prospects' answers that are due
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.2)
    finally:
        await db.close()
    console.print("sandbox stopped", highlight=False)


DEFAULT = SandboxPorts()


def sandbox(
    mailboxes: Annotated[int, typer.Option(min=1, max=200, help="Mailboxes to register.")] = 4,
    smtp_port: Annotated[int, typer.Option(min=1, max=65535)] = DEFAULT.smtp,
    imap_port: Annotated[int, typer.Option(min=1, max=65535)] = DEFAULT.imap,
    token_port: Annotated[int, typer.Option(min=1, max=65535)] = DEFAULT.tokens,
    dns_port: Annotated[int, typer.Option(min=1, max=65535)] = DEFAULT.dns,
    aged: Annotated[
        int, typer.Option(min=0, max=3650, help="Days old its new mailboxes are (warmed up).")
    ] = 30,
    answers: Annotated[
        str,
        typer.Option(
            help="Prospect answer shares, e.g. reply=0.2,out_of_office=0.1,hard_bounce=0.05 "
            "(also unsubscribe, soft_bounce, junk)."
        ),
    ] = "",
) -> None:
    """Run the emulated Microsoft 365 world on loopback and register its mailboxes here."""
    config = settings()
    setup_logging(config)
    ports = SandboxPorts(smtp_port, imap_port, token_port, dns_port)
    try:
        shares = parse_answers(answers)
    except ValueError as exc:
        raise fail(str(exc)) from None
    try:
        asyncio.run(_serve(config, mailboxes, ports, aged, shares))
    except SecretError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot start the sandbox: {exc.strerror or exc}") from None
