"""SMTP submission on aiosmtplib: reused, verified, bounded sessions per mailbox.

The transport speaks the protocol and reports exactly what happened — which
stage, which reply — as a :class:`SubmitResult`; deciding what to do about a
reply belongs to ``providers.replies`` and the engine. Rules kept here because
they are about the wire, not policy:

- STARTTLS is mandatory when the endpoint says so, and AUTH is never sent over
  plaintext even if offered; ``plain`` security is accepted only on loopback
  (the sandbox). TLS 1.2 is the minimum and certificates are always verified
  (a private CA file may be added, never a switch to turn checking off).
- A mailbox holds at most ``endpoint.max_sessions`` sessions at once (default 1;
  Microsoft 365 allows 3); a message waits for a free one. Sessions are reused:
  no RSET is needed after an accepted message (the transaction is over), one is
  sent after a refused one, and a session the server dropped while idle is
  reopened transparently before anything was handed over. A new access token
  means a new session, since SMTP allows one AUTH per session.
- Every stage has a timeout (:class:`SmtpTimeouts`), so a stalled server ends in
  a result, never a hang. A connection that died after the message body was
  handed over is reported as *unknown*, never as refused, so nobody resends it
  blindly; everything before that is *refused*.

Public surface (``__all__``): :class:`SmtpPool` (``connection``, ``close_idle``,
``close_all``, ``open_sessions``) hands out a :class:`MailboxConnection` per mailbox
(``submit``, ``close``); :class:`SmtpEndpoint` with :class:`SmtpTimeouts` and
``max_sessions`` (see :func:`session_limit`), :class:`SmtpCredentials`,
:class:`SubmitResult` with :class:`Delivery`, and :func:`client_tls_context`. One
session's wire work lives in :mod:`mailfleet.transport.smtp_session`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from mailfleet.clock import Clock
from mailfleet.providers.outcomes import Stage
from mailfleet.transport.smtp_session import (
    SECURITY_MODES,
    Delivery,
    SmtpCredentials,
    SmtpEndpoint,
    SmtpSession,
    SmtpTimeouts,
    SubmitResult,
    client_tls_context,
    refused,
    wire_body,
)

__all__ = [
    "SECURITY_MODES",
    "Delivery",
    "MailboxConnection",
    "SmtpCredentials",
    "SmtpEndpoint",
    "SmtpPool",
    "SmtpTimeouts",
    "SubmitResult",
    "client_tls_context",
    "session_limit",
]


def session_limit(provider_limit: int | None, configured: int | None = None) -> int:
    """Sessions one mailbox may hold: ``min(provider limit or 1, configured)``, at least 1."""
    limit = provider_limit or 1
    if configured is not None:
        limit = min(limit, configured)
    return max(1, limit)


# -- per mailbox and the pool --------------------------------------------------------------


class MailboxConnection:
    """The SMTP sessions of one mailbox: up to ``endpoint.max_sessions``, reused across messages.

    :meth:`submit` takes a free session (the most recently used, so the others can go
    idle), opens a new one while under the limit, or waits for one to come back.
    """

    def __init__(self, endpoint: SmtpEndpoint, credentials: SmtpCredentials, clock: Clock) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.limit = max(1, endpoint.max_sessions)
        self._clock = clock
        self._slots = asyncio.Semaphore(self.limit)
        self._free: list[SmtpSession] = []  # open and idle, most recently used last
        self._busy: set[SmtpSession] = set()
        self.last_used: datetime | None = None
        self.replaced = False
        """Set by the pool when the mailbox's endpoint or login changed: no session is kept."""
        self.sessions_opened = 0
        """How many sessions were opened (connect + TLS + AUTH) over this object's life."""

    def _new_session(self) -> SmtpSession:
        return SmtpSession(self.endpoint, self.credentials, on_open=self._count_open)

    def _count_open(self) -> None:
        self.sessions_opened += 1

    @property
    def is_open(self) -> bool:
        """Whether any live session is held."""
        return self.open_sessions > 0

    @property
    def open_sessions(self) -> int:
        """Live sessions, busy or idle."""
        return sum(s.is_open for s in self._free) + sum(s.is_open for s in self._busy)

    @property
    def in_use(self) -> int:
        """Sessions carrying a message right now."""
        return len(self._busy)

    async def submit(
        self, envelope_from: str, recipients: Sequence[str], message: bytes
    ) -> SubmitResult:
        """Send one message on a session of this mailbox; never raises for a server's doing."""
        if not recipients:
            return refused(Stage.RCPT, "no recipients given", ValueError("no recipients"))
        body = wire_body(message)
        async with self._slots:
            session = self._free.pop() if self._free else self._new_session()
            self._busy.add(session)
            try:
                result = await session.send(envelope_from, recipients, body)
            except BaseException:
                session.abort()  # cancelled mid-command: the session is out of step
                raise
            finally:
                self._busy.discard(session)
                session.last_used = self.last_used = self._clock.now()
            if session.retire or self.replaced:
                await session.close()
            elif session.is_open:
                self._free.append(session)
            return result

    async def close_idle(self, now: datetime, idle_seconds: float) -> int:
        """Close the free sessions unused for more than ``idle_seconds``; return how many."""
        stale = [
            s
            for s in self._free
            if s.last_used is not None and (now - s.last_used).total_seconds() > idle_seconds
        ]
        if not stale:
            return 0
        self._free = [s for s in self._free if s not in stale]
        live = sum(s.is_open for s in stale)
        await asyncio.gather(*(s.close() for s in stale))
        return live

    async def close(self) -> None:
        """Close every session; one busy with a message is closed as soon as it is done."""
        free, self._free = self._free, []
        for session in self._busy:
            session.retire = True
        await asyncio.gather(*(s.close() for s in free))


class SmtpPool:
    """Sessions keyed by mailbox, closed when idle."""

    def __init__(self, clock: Clock, idle_seconds: float = 120.0) -> None:
        self._clock = clock
        self._idle = idle_seconds
        self._connections: dict[int, MailboxConnection] = {}
        self._stale: list[MailboxConnection] = []

    def connection(
        self, mailbox_id: int, endpoint: SmtpEndpoint, credentials: SmtpCredentials
    ) -> MailboxConnection:
        """The sessions of ``mailbox_id``, replaced if its endpoint or login changed."""
        current = self._connections.get(mailbox_id)
        if current is None or current.endpoint != endpoint or current.credentials != credentials:
            if current is not None:
                # Its idle sessions close at the next close_idle or close_all; a message
                # still on (or waiting for) one of them closes its session when done.
                current.replaced = True
                self._stale.append(current)
            current = MailboxConnection(endpoint, credentials, self._clock)
            self._connections[mailbox_id] = current
        return current

    def open_sessions(self, mailbox_id: int) -> int:
        """Live sessions of ``mailbox_id`` (0 if it has none)."""
        current = self._connections.get(mailbox_id)
        return current.open_sessions if current is not None else 0

    async def close_idle(self) -> int:
        """Close sessions unused for longer than the idle limit; return how many."""
        stale, self._stale = self._stale, []
        await asyncio.gather(*(old.close() for old in stale))
        now = self._clock.now()
        counts = await asyncio.gather(
            *(c.close_idle(now, self._idle) for c in self._connections.values())
        )
        return sum(counts)

    async def close_all(self) -> None:
        """Close every session."""
        everything = [*self._stale, *self._connections.values()]
        self._stale = []
        self._connections.clear()
        await asyncio.gather(*(c.close() for c in everything))
