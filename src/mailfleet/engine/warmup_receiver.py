"""The receiving peers: find warmup mail over IMAP, record where it landed, act like a person.

For each mailbox that warmup messages were sent to, one IMAP pass:

1. INBOX and the Junk folder are searched for the installation's marker header
   (``UID SEARCH SINCE … HEADER X-Entity-Ref-ID mfwu-``); each hit whose token
   belongs to a sent, not yet observed warmup message records its placement
   (``inbox`` / ``junk``) and the peer's decisions
   (:func:`mailfleet.warmup.decide_receipt`): flag a share, reply to about 30 %
   after a delay (the reply is sent later by :class:`~mailfleet.engine.warmup.WarmupSender`
   as a warmup send of this mailbox).
2. The record is committed first, then the server is changed: ``\\Seen`` (and
   ``\\Flagged``) set, and every marked message in Junk — ours, recorded now or
   earlier — moved to INBOX. A crash in between leaves a message in Junk that the
   next pass still rescues, and placement is never re-measured from a moved copy.
3. Once per day, the mailbox's threads quiet for ``cleanup_after`` are archived
   or deleted (moved to the configured folder) in INBOX and Sent Items.

The inbox sync (:mod:`mailfleet.engine.inbox`) records warmup mail as
``inbound.warmup`` and, unless told otherwise, leaves it to this receiver.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import Message

from sqlalchemy import select

from mailfleet.clock import Clock
from mailfleet.engine.credentials import CredentialError
from mailfleet.engine.inbox_settings import CredentialSource
from mailfleet.engine.warmup import WarmupConfig
from mailfleet.inbox import FolderRole, sync_folders
from mailfleet.planner import local_day
from mailfleet.store import Database, Mailbox
from mailfleet.store import warmup as wstore
from mailfleet.store.models import WarmupMessage, WarmupThread
from mailfleet.transport.imap import (
    FetchedMessage,
    Folder,
    ImapAuthenticationError,
    ImapClient,
    ImapEndpoint,
    ImapError,
    ImapStage,
    header_criterion,
)
from mailfleet.transport.oauth import TokenError
from mailfleet.warmup import Placement, cleanup_folder, decide_receipt

__all__ = ["ReceiverReport", "WarmupReceiver"]

log = logging.getLogger(__name__)
LOOKBACK = timedelta(days=7)
BATCH = 25
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(slots=True)
class ReceiverReport:
    """What one or more receiver passes did."""

    mailboxes: int = 0
    found: int = 0
    inbox: int = 0
    junk: int = 0
    rescued: int = 0
    flagged: int = 0
    replies_planned: int = 0
    cleaned: int = 0
    errors: list[str] = field(default_factory=list)

    def merge(self, other: ReceiverReport) -> None:
        """Add ``other``'s counts to this report."""
        for name in (
            "mailboxes",
            "found",
            "inbox",
            "junk",
            "rescued",
            "flagged",
            "replies_planned",
            "cleaned",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)


def _imap_date(when: datetime) -> str:
    return f"{when.day:02d}-{_MONTHS[when.month - 1]}-{when.year:04d}"


def _parse(raw: bytes) -> Message | None:
    try:
        return email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:  # a message that does not parse is not ours to act on
        return None


def _sent_folder(folders: Sequence[Folder]) -> str | None:
    for folder in folders:
        if folder.special_use == "\\Sent":
            return folder.name
    names = {f.name.lower(): f.name for f in folders}
    for name in ("sent items", "sent", "[gmail]/sent mail", "sent messages"):
        if name in names:
            return names[name]
    return None


class WarmupReceiver:
    """Acts as the receiving peer for warmup mail; see the module docstring."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        credentials: CredentialSource,
        *,
        config: WarmupConfig | None = None,
        concurrency: int = 8,
        timeout: float = 60.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.credentials = credentials
        self.config = config or WarmupConfig()
        self._semaphore = asyncio.Semaphore(concurrency)
        # The IMAP work of many mailboxes overlaps; their writes to the store take turns
        # (SQLite has one writer: overlapping write transactions would wait on its lock).
        self._writes = asyncio.Lock()
        self._timeout = timeout
        self._cleaned_on: dict[int, date] = {}
        self._sessions: dict[int, tuple[ImapClient, list[Folder]]] = {}
        # (mailbox, folder) -> (UIDVALIDITY, highest UID read): later passes read newer mail only.
        self._marks: dict[tuple[int, str], tuple[int, int]] = {}

    async def run_once(self) -> ReceiverReport:
        """One pass over every mailbox that has IMAP and warmup mail to look for."""
        async with self.db.session() as session:
            boxes = list(
                (
                    await session.scalars(
                        select(Mailbox).where(Mailbox.imap_host.is_not(None)).order_by(Mailbox.id)
                    )
                ).all()
            )
        report = ReceiverReport()
        results = await asyncio.gather(*(self._guarded(b) for b in boxes))
        for result in results:
            report.merge(result)
        return report

    async def _guarded(self, box: Mailbox) -> ReceiverReport:
        async with self._semaphore:
            try:
                return await self.receive(box)
            except (ImapError, OSError, ValueError, CredentialError, TokenError) as exc:
                log.warning("warmup receiver: %s: %s", box.address, exc)
                return ReceiverReport(errors=[f"{box.address}: {exc}"])

    async def receive(self, box: Mailbox) -> ReceiverReport:
        """One pass over ``box`` as a receiving peer (and its daily cleanup)."""
        now = self.clock.now()
        report = ReceiverReport()
        day = local_day(now, box.timezone)[0]
        policy = self.config.receiver
        async with self.db.session() as session:
            expected = await wstore.unobserved_for_peer(session, box.id, now - LOOKBACK)
            stale: list[WarmupThread] = []
            if self._cleaned_on.get(box.id) != day and cleanup_folder(policy) is not None:
                stale = await wstore.stale_threads(session, box.id, now - policy.cleanup_after)
            stale_tokens = {
                t for thread in stale for t in await wstore.thread_tokens(session, thread.id)
            }
        if not expected and not stale:
            self._cleaned_on[box.id] = day
            return report
        report.mailboxes = 1
        client, listed = await self._session(box)
        try:
            for folder in sync_folders(listed):
                await self._scan(client, box, folder.name, folder.role, expected, now, report)
            if stale:
                await self._cleanup(client, box, listed, stale, stale_tokens, now, report)
            self._cleaned_on[box.id] = day
        except BaseException:
            self._drop(box.id)  # a session in an unknown state is not reused
            raise
        return report

    async def _session(self, box: Mailbox) -> tuple[ImapClient, list[Folder]]:
        """The mailbox's IMAP session, kept open between passes (reconnected when it died)."""
        cached = self._sessions.get(box.id)
        if cached is not None and cached[0].is_connected:
            return cached
        self._drop(box.id)
        client = await self._connect(box)
        try:
            listed = await client.list_folders()
        except BaseException:
            client.close()
            raise
        self._sessions[box.id] = (client, listed)
        return client, listed

    def _drop(self, mailbox_id: int) -> None:
        cached = self._sessions.pop(mailbox_id, None)
        if cached is not None:
            cached[0].close()

    async def close(self) -> None:
        """Log out of every kept IMAP session."""
        sessions, self._sessions = self._sessions, {}
        for client, _ in sessions.values():
            try:
                await client.logout()
            except (ImapError, OSError):
                client.close()

    async def _connect(self, box: Mailbox) -> ImapClient:
        assert box.imap_host is not None
        client = ImapClient(
            ImapEndpoint(
                host=box.imap_host,
                port=box.imap_port or 993,
                security=box.imap_security or "tls",
                ca_file=box.ca_file,
                timeout=self._timeout,
            )
        )
        creds = self.credentials.credentials(box)
        await client.connect()
        try:
            await client.login(creds.username, tokens=creds.tokens, password=creds.password)
        except ImapAuthenticationError as exc:
            if creds.tokens is None or exc.stage is ImapStage.TOKEN:
                client.close()
                raise
            await creds.tokens.access_token(force_refresh=True)
            client.close()
            await client.connect()
            await client.login(creds.username, tokens=creds.tokens)
        return client

    async def _marked(
        self, client: ImapClient, since: datetime, *, after_uid: int | None = None
    ) -> list[tuple[FetchedMessage, str | None]]:
        """Messages of the selected folder with the marker (token None: not ours).

        With ``after_uid`` only the newer UIDs are fetched and checked here (a server
        need not open every message for a header search); else the server searches
        the marker header among the mail since ``since``.
        """
        marker = self.config.marker
        if after_uid is not None:
            uids = [
                u for u in await client.uid_search("UID", f"{after_uid + 1}:*") if u > after_uid
            ]
        else:
            uids = await client.uid_search(
                "SINCE", _imap_date(since), *header_criterion(marker.header, marker.prefix)
            )
        found: list[tuple[FetchedMessage, str | None]] = []
        for offset in range(0, len(uids), BATCH):
            for message in await client.uid_fetch(uids[offset : offset + BATCH]):
                parsed = _parse(message.raw)
                found.append((message, marker.find(parsed) if parsed is not None else None))
        return found

    async def _scan(
        self,
        client: ImapClient,
        box: Mailbox,
        folder: str,
        role: FolderRole,
        expected: dict[str, WarmupMessage],
        now: datetime,
        report: ReceiverReport,
    ) -> None:
        try:
            status = await client.select(folder)
        except ImapError:
            if role is FolderRole.JUNK:
                return  # no Junk folder: INBOX still counts
            raise
        key = (box.id, folder)
        mark = self._marks.get(key)
        top = (status.uid_next - 1) if status.uid_next else None
        if mark is not None and mark[0] == status.uid_validity:
            if top is not None and top <= mark[1]:
                return  # nothing new since the last pass
            marked = await self._marked(client, now, after_uid=mark[1])
        else:
            marked = await self._marked(client, now - LOOKBACK)
        if top is not None:
            self._marks[key] = (status.uid_validity, top)
        placement = Placement.JUNK if role is FolderRole.JUNK else Placement.INBOX
        seen: list[int] = []
        flag: list[int] = []
        found = [(m, expected.pop(t)) for m, t in marked if t is not None and t in expected]
        if found:
            async with self._writes, self.db.session() as session:
                ids = [row.id for _, row in found]
                live_rows = {
                    r.id: r
                    for r in await session.scalars(
                        select(WarmupMessage).where(WarmupMessage.id.in_(ids))
                    )
                }
                threads = await session.execute(
                    select(WarmupThread.id, WarmupThread.messages).where(
                        WarmupThread.id.in_({row.thread_id for _, row in found})
                    )
                )
                lengths = {int(i): int(n) for i, n in threads.all()}
                for message, row in found:
                    live = live_rows.get(row.id)
                    if live is None or live.placement is not None:
                        continue
                    action = decide_receipt(
                        live.message_id,
                        placement,
                        now,
                        thread_messages=lengths.get(row.thread_id, 1),
                        policy=self.config.receiver,
                        seed=self.config.seed,
                    )
                    live.placement = placement.value
                    live.observed_at = now
                    live.flagged = action.flag
                    live.reply_due_at = action.reply_at
                    report.found += 1
                    report.junk += placement is Placement.JUNK
                    report.inbox += placement is Placement.INBOX
                    report.replies_planned += action.reply_at is not None
                    if action.mark_read and "\\Seen" not in message.flags:
                        seen.append(message.uid)
                    if action.flag:
                        flag.append(message.uid)
                        report.flagged += 1
        if seen:
            await client.uid_store(seen, ["\\Seen"])
        if flag:
            await client.uid_store(flag, ["\\Flagged"])
        if role is FolderRole.JUNK:
            # Every marked message of ours leaves Junk, also one recorded by an earlier pass.
            ours = [m.uid for m, token in marked if token is not None]
            if ours:
                await client.uid_move(ours, "INBOX")
                report.rescued += len(ours)

    async def _cleanup(
        self,
        client: ImapClient,
        box: Mailbox,
        listed: Sequence[Folder],
        stale: list[WarmupThread],
        tokens: set[str],
        now: datetime,
        report: ReceiverReport,
    ) -> None:
        target = cleanup_folder(self.config.receiver)
        assert target is not None
        folders = ["INBOX"]
        sent = _sent_folder(listed)
        if sent is not None:
            folders.append(sent)
        names = {f.name for f in listed}
        if target not in names:
            report.errors.append(f"{box.address}: no folder {target!r} to move old warmup to")
            return
        for folder in folders:
            await client.select(folder)
            since = now - self.config.receiver.cleanup_after - timedelta(days=60)
            old = [m.uid for m, token in await self._marked(client, since) if token in tokens]
            if old:
                await client.uid_move(old, target)
                report.cleaned += len(old)
        async with self._writes, self.db.session() as session:
            for thread in stale:
                live = await session.get(WarmupThread, thread.id)
                if live is not None and live.opener_mailbox_id == box.id:
                    live.opener_cleaned_at = now
                if live is not None and live.peer_mailbox_id == box.id:
                    live.peer_cleaned_at = now
