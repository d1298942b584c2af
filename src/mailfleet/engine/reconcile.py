"""Reconciliation: what became of sends whose outcome was never recorded.

A crash leaves sends ``claimed`` (committed, no connection opened for them yet)
or ``submitting`` (the connection was about to open, or open: the server may
have accepted the message). A connection lost after DATA leaves ``unknown``.
None of them is sent again blindly. Each is looked up by its Message-ID in the
sending mailbox's Sent folder over IMAP (Microsoft 365 and Google file every
submitted message there; the folder is found by its SPECIAL-USE ``\\Sent`` flag,
else by its usual names):

- found → ``sent``: the enrollment moves on as if the reply had been read;
- not found, and ``claimed`` → planned again with the same Message-ID: the
  ``submitting`` mark proves no server ever saw it;
- not found, and ``submitting`` or ``unknown`` → ``unknown``, left for a person
  (``mailfleet sends unknown``); its enrollment waits, nothing is resent.

When the Sent folder cannot be read (no IMAP host, login refused, server down)
a ``submitting`` send becomes ``unknown`` with the reason and is looked up again
at the next start; ``reconciled_at`` records each completed lookup.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from mailfleet.clock import Clock
from mailfleet.engine.credentials import CredentialCache, CredentialError
from mailfleet.engine.sequence import advance
from mailfleet.store import (
    Campaign,
    Database,
    Enrollment,
    EnrollmentStatus,
    Mailbox,
    Send,
    SendKind,
    SendStatus,
)
from mailfleet.store import repository as repo
from mailfleet.store.models import WarmupMessage
from mailfleet.transport.imap import ImapClient, ImapEndpoint, ImapError, header_criterion

log = logging.getLogger(__name__)

SENT_FOLDER_NAMES = ("Sent Items", "Sent", "[Gmail]/Sent Mail", "Sent Messages", "INBOX.Sent")


class SentFolderUnavailable(Exception):
    """The mailbox's Sent folder cannot be read; the message says why."""


class SentFolderLookup(Protocol):
    """Which of these Message-IDs are in the mailbox's Sent folder (the test seam)."""

    async def find(self, mailbox: Mailbox, message_ids: Sequence[str]) -> set[str]:
        """The Message-IDs found; raise :class:`SentFolderUnavailable` when it cannot look."""
        ...


class ImapSentLookup:
    """Looks Message-IDs up in the Sent folder over IMAP, with the mailbox's own login."""

    def __init__(self, credentials: CredentialCache) -> None:
        self._credentials = credentials

    async def find(self, mailbox: Mailbox, message_ids: Sequence[str]) -> set[str]:
        """Search the Sent folder for each Message-ID (one session per mailbox)."""
        if not mailbox.imap_host or not mailbox.imap_port:
            raise SentFolderUnavailable("the mailbox has no IMAP host configured")
        try:
            creds = self._credentials.credentials(mailbox)
        except CredentialError as exc:
            raise SentFolderUnavailable(str(exc)) from exc
        endpoint = ImapEndpoint(
            host=mailbox.imap_host,
            port=mailbox.imap_port,
            security=mailbox.imap_security or "tls",
            ca_file=mailbox.ca_file,
        )
        found: set[str] = set()
        try:
            async with ImapClient(endpoint) as client:
                await client.login(creds.username, tokens=creds.tokens, password=creds.password)
                folders = await client.list_folders()
                sent = next((f for f in folders if f.special_use == "\\Sent"), None)
                if sent is None:
                    names = {f.name.lower(): f for f in folders}
                    sent = next(
                        (names[n.lower()] for n in SENT_FOLDER_NAMES if n.lower() in names), None
                    )
                if sent is None:
                    raise SentFolderUnavailable("the mailbox has no Sent folder")
                await client.select(sent.name, read_only=True)
                for message_id in message_ids:
                    if await client.uid_search(*header_criterion("Message-ID", message_id)):
                        found.add(message_id)
        except ImapError as exc:
            raise SentFolderUnavailable(f"IMAP {exc}") from exc
        return found


@dataclass(slots=True)
class ReconcileReport:
    """What one reconciliation did."""

    found: list[int] = field(default_factory=list)  # send ids now sent
    released: list[int] = field(default_factory=list)  # claimed, never submitted: planned again
    unknown: list[int] = field(default_factory=list)  # left for a person
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Sends looked at."""
        return len(self.found) + len(self.released) + len(self.unknown)


async def reconcile_sends(
    db: Database,
    clock: Clock,
    lookup: SentFolderLookup,
    *,
    include_unknown: bool = True,
    unknown_checked_before: datetime | None = None,
) -> ReconcileReport:
    """Settle every send left in flight, and (``include_unknown``) unknown ones never looked up.

    With ``unknown_checked_before`` only ``unknown`` sends are looked at — those never
    looked up or last looked up before that instant — and nothing in flight: the periodic
    re-check a running process makes while a person has not decided yet.
    """
    report = ReconcileReport()
    async with db.session() as session:
        status: ColumnElement[bool] = Send.status.in_(repo.IN_FLIGHT)
        if unknown_checked_before is not None:
            status = (Send.status == SendStatus.UNKNOWN) & or_(
                Send.reconciled_at.is_(None), Send.reconciled_at < unknown_checked_before
            )
        elif include_unknown:
            status = or_(status, (Send.status == SendStatus.UNKNOWN) & Send.reconciled_at.is_(None))
        sends = list((await session.scalars(select(Send).where(status).order_by(Send.id))).all())
        if not sends:
            return report
        by_mailbox: dict[int, list[Send]] = defaultdict(list)
        for send in sends:
            by_mailbox[send.mailbox_id].append(send)
        mailboxes = {
            m.id: m
            for m in (
                await session.scalars(select(Mailbox).where(Mailbox.id.in_(list(by_mailbox))))
            ).all()
        }
    # Network lookups run outside any transaction: a slow server holds no lock.
    looked: dict[int, set[str] | str] = {}
    for mailbox_id, group in by_mailbox.items():
        mailbox = mailboxes.get(mailbox_id)
        if mailbox is None:
            looked[mailbox_id] = "the mailbox no longer exists"
            continue
        try:
            looked[mailbox_id] = await lookup.find(mailbox, [s.message_id for s in group])
        except SentFolderUnavailable as exc:
            looked[mailbox_id] = str(exc)
            report.errors.append(f"{mailbox.address}: cannot read its Sent folder: {exc}")
    now = clock.now()
    async with db.session() as session:
        for mailbox_id, group in by_mailbox.items():
            result = looked[mailbox_id]
            for stale in group:
                current = await session.get(Send, stale.id)
                if current is None or current.status not in (*repo.IN_FLIGHT, SendStatus.UNKNOWN):
                    continue  # settled by someone else meanwhile
                await _settle(session, current, result, now, report)
    return report


async def _free_warmup(session: AsyncSession, send_id: int) -> None:
    """A released warmup send's slot (or reply) is due again: the sender plans it anew."""
    await session.execute(
        update(WarmupMessage).where(WarmupMessage.send_id == send_id).values(slot=None)
    )
    await session.execute(
        update(WarmupMessage)
        .where(WarmupMessage.reply_send_id == send_id)
        .values(reply_send_id=None)
    )


async def _settle(
    session: AsyncSession,
    send: Send,
    looked: set[str] | str,
    now: datetime,
    report: ReconcileReport,
) -> None:
    enrollment = await session.get(Enrollment, send.enrollment_id) if send.enrollment_id else None
    links: dict[str, int | None] = {
        "mailbox_id": send.mailbox_id,
        "campaign_id": send.campaign_id,
        "enrollment_id": send.enrollment_id,
        "lead_id": enrollment.lead_id if enrollment else None,
        "send_id": send.id,
    }
    checked = isinstance(looked, set)
    if checked:
        send.reconciled_at = now
    if isinstance(looked, set) and send.message_id in looked:
        send.status = SendStatus.SENT
        send.outcome = "accepted"
        send.finished_at = send.finished_at or now
        send.error = "found in the Sent folder on reconciliation"
        report.found.append(send.id)
        if enrollment is not None and send.campaign_id is not None:
            campaign = await session.scalar(
                select(Campaign)
                .where(Campaign.id == send.campaign_id)
                .options(selectinload(Campaign.steps))
            )
            if campaign is not None:
                # The message left about when it was claimed: follow-ups count from then.
                advance(enrollment, campaign, send, send.claimed_at)
        repo.add_event(
            session,
            workspace_id=send.workspace_id,
            at=now,
            kind="send.reconciled",
            message=f"{send.message_id} found in the Sent folder: sent",
            **links,
        )
        return
    if send.status == SendStatus.CLAIMED:
        send.status = SendStatus.DEFERRED
        send.finished_at = now
        send.error = (
            "claimed but never submitted (the process stopped before its connection opened); "
            "planned again with the same Message-ID"
        )
        report.released.append(send.id)
        if send.kind == SendKind.WARMUP:
            await _free_warmup(session, send.id)
        if enrollment is not None and enrollment.status == EnrollmentStatus.ACTIVE:
            enrollment.next_due_at = now
            enrollment.updated_at = now
        repo.add_event(
            session,
            workspace_id=send.workspace_id,
            at=now,
            kind="send.released",
            message=send.error,
            **links,
        )
        return
    was = send.status
    send.status = SendStatus.UNKNOWN
    send.finished_at = send.finished_at or now
    if checked:
        send.error = (
            f"{send.message_id} is not in the Sent folder; it may or may not have been "
            "delivered: a person decides (`mailfleet sends unknown`), nothing is resent"
        )
    else:
        send.error = (
            f"cannot read the Sent folder ({looked}); looked up again at the next start, "
            "nothing is resent meanwhile"
        )
    report.unknown.append(send.id)
    if was != SendStatus.UNKNOWN:
        repo.add_event(
            session,
            workspace_id=send.workspace_id,
            at=now,
            kind="send.unknown",
            message=send.error,
            **links,
        )
