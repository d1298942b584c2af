"""Faults a scenario injects, on the sandbox's side of the wire.

:class:`WorldBehaviour` is what each sandbox mailbox does beyond Microsoft's limits
(its :class:`~mailfleet.sandbox.limits.LimitMeter` is still asked after it): it
answers ``451 4.7.500 Server busy`` at MAIL FROM during the mailbox's bursts, and
refuses the scenario's dead addresses at RCPT TO with ``550 5.1.1`` — recording
each such refusal, since a hard bounce is a stop the auditor must hold the
engine to. Token revocations and the crash are events of the run
(:mod:`mailfleet.simulation.runner`), not behaviours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mailfleet.sandbox import FAULTS, MailboxBehaviour, Reply
from mailfleet.simulation.records import SubmissionLog


@dataclass(frozen=True, slots=True)
class Burst:
    """A time window during which the mailbox answers Server busy."""

    start: datetime
    end: datetime


class WorldBehaviour(MailboxBehaviour):
    """One sandbox mailbox's injected faults: busy bursts and dead recipients."""

    def __init__(
        self,
        address: str,
        *,
        hostname: str,
        dead: frozenset[str],
        bursts: Sequence[Burst],
        log: SubmissionLog,
    ) -> None:
        self.address = address
        self.dead = dead
        self.bursts = tuple(bursts)
        self.log = log
        self.busy_reply = FAULTS["server_busy"].reply(hostname)
        self.dead_reply = FAULTS["recipient_not_found"].reply(hostname)
        self.busy_refusals: list[datetime] = []

    async def on_mail_from(self, address: str, now: datetime) -> Reply | None:
        if any(b.start <= now < b.end for b in self.bursts):
            self.busy_refusals.append(now)
            return self.busy_reply
        return None

    async def on_rcpt_to(self, address: str, recipient: str, now: datetime) -> Reply | None:
        if recipient in self.dead:
            self.log.bounce(now, address, recipient)
            return self.dead_reply
        return None
