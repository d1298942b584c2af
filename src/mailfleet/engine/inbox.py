"""Inbox sync: read every mailbox's INBOX and Junk over IMAP (or POP3), classify, act.

State, per IMAP folder, is a ``mailbox_folder_state`` row: the UIDVALIDITY seen
last and the highest UID processed. A pass selects the folder and fetches only
UIDs above that mark; the mark moves in the same transaction that records the
messages, so a crash re-reads at most one batch and the per-mailbox dedupe
(Message-ID, or the bytes' hash) keeps events single. A different UIDVALIDITY
means the server renumbered the folder: the pass re-reads the days since the
last successful sync and the dedupe drops what was already recorded. A first
pass reads back ``first_sync_history`` (14 days) and no further. POP3 mailboxes
remember each UIDL read (``pop3_seen``) and never send DELE
(:mod:`mailfleet.engine.inbox_pop3`); settings and reports are in
:mod:`mailfleet.engine.inbox_settings`, what a message changes in the store in
:mod:`mailfleet.engine.inbox_actions`.

On the server the sync only ever sets flags and moves a person's answer (or
warmup mail) from Junk to INBOX, as :func:`mailfleet.inbox.decide` says; a move
happens before the record is committed, so a crash between the two finds the
message again in INBOX, where the dedupe recognises it.

Two ways to run it:

``await InboxSync(...).sync_all()``
    One pass over every mailbox (bounded by ``concurrency``), keeping IMAP
    sessions open for the next pass. The demo calls it between slices of sending
    on its virtual clock (:func:`run_with_sending`).
``await InboxSync(...).run(stop)``
    Production: one asyncio task per mailbox, not a thread. After each pass a
    task IDLEs on INBOX where the server offers IDLE (re-issued every
    ``idle_renew``, well inside RFC 2177's 29 minutes, which also re-reads Junk),
    else sleeps ``poll_interval``. Failures reconnect with exponential backoff
    and jitter; a refused login backs off longer and leaves an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.clock import Clock
from mailfleet.engine.credentials import CredentialError
from mailfleet.engine.faults import FaultLog
from mailfleet.engine.inbox_actions import MailboxRef, find_match, record_inbound
from mailfleet.engine.inbox_pop3 import POP3_FOLDER, read_pop3
from mailfleet.engine.inbox_settings import (
    RFC2177_LIMIT,
    Classifier,
    CredentialSource,
    InboxSettings,
    SyncReport,
)
from mailfleet.inbound import Classification, Kind, classify
from mailfleet.inbox import FolderRole, SyncFolder, decide, sync_folders
from mailfleet.store import Database, Mailbox, MailboxFolderState, MailboxStatus
from mailfleet.store import repository as repo
from mailfleet.store.inbox_queries import save_folder_state
from mailfleet.transport.imap import (
    FetchedMessage,
    ImapAuthenticationError,
    ImapClient,
    ImapEndpoint,
    ImapError,
    ImapStage,
)
from mailfleet.transport.oauth import TokenError
from mailfleet.transport.pop3 import Pop3AuthenticationError, Pop3Error
from mailfleet.transport.smtp import SmtpCredentials

if TYPE_CHECKING:
    from mailfleet.engine.runtime import Engine, TickReport

__all__ = [
    "Classifier",
    "CredentialSource",
    "InboxSettings",
    "InboxSync",
    "SyncReport",
    "imap_date",
    "run_with_sending",
]

log = logging.getLogger(__name__)

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LOGIN_ERRORS = (ImapAuthenticationError, Pop3AuthenticationError, CredentialError, TokenError)
_SERVER_ERRORS = (ImapError, Pop3Error, OSError)


@dataclass(slots=True)
class _ImapSession:
    client: ImapClient
    folders: list[SyncFolder]
    idle: bool
    move: bool


@dataclass(frozen=True, slots=True)
class _Mark:
    """How far one folder was read (a copy of its ``mailbox_folder_state`` row)."""

    uid_validity: int
    last_uid: int
    synced_at: datetime


class _MailboxGone(Exception):
    """The mailbox was removed, disconnected or lost its inbound settings."""


def imap_date(when: datetime) -> str:
    """``02-Mar-2026``: the date form IMAP SEARCH takes (English months whatever the locale)."""
    return f"{when.day:02d}-{_MONTHS[when.month - 1]}-{when.year:04d}"


def _chunks(items: Sequence[int], size: int) -> list[list[int]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class InboxSync:
    """Reads the fleet's mailboxes and records what arrives; see the module docstring."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        credentials: CredentialSource,
        *,
        classify: Classifier | None = None,
        settings: InboxSettings | None = None,
        seed: int | None = None,
        faults: FaultLog | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.credentials = credentials
        self.faults = faults or FaultLog()
        self.settings = settings or InboxSettings()
        self._classify = classify
        self._random = random.Random(seed)
        self._semaphore = asyncio.Semaphore(self.settings.concurrency)
        self._locks: dict[int, asyncio.Lock] = {}
        self._sessions: dict[int, _ImapSession] = {}
        self._login_failures: dict[int, str] = {}
        self._marks: dict[int, dict[str, _Mark]] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    async def close(self) -> None:
        """Log out of every open IMAP session."""
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(s.client.logout() for s in sessions), return_exceptions=True)

    async def _drop(self, mailbox_id: int) -> None:
        session = self._sessions.pop(mailbox_id, None)
        if session is not None:
            session.client.close()

    def classify(self, raw: bytes) -> Classification:
        """Classify ``raw``; a classifier failure yields ``other`` rather than a stuck folder."""
        try:
            if self._classify is not None:
                return self._classify(raw)
            return classify(raw, warmup_marker=self.settings.warmup_marker, now=self.clock.now())
        except Exception:
            log.exception("inbox: the classifier failed on a message; recorded as other")
            return Classification(kind=Kind.OTHER, signals=("classifier-error",))

    # -- one pass -----------------------------------------------------------------------------

    async def mailbox_ids(self, workspace_id: int | None = None) -> list[int]:
        """Mailboxes with an IMAP or POP3 host that are not disconnected."""
        query = select(Mailbox.id).where(
            or_(Mailbox.imap_host.is_not(None), Mailbox.pop3_host.is_not(None)),
            Mailbox.status != MailboxStatus.DISCONNECTED,
        )
        if workspace_id is not None:
            query = query.where(Mailbox.workspace_id == workspace_id)
        async with self.db.session() as session:
            return list((await session.scalars(query.order_by(Mailbox.id))).all())

    async def sync_all(self, *, workspace_id: int | None = None) -> SyncReport:
        """One pass over every mailbox; a mailbox's failure is reported, not raised."""
        ids = await self.mailbox_ids(workspace_id)
        loaded = await self._load(ids)
        report = SyncReport()

        async def one(mailbox_id: int) -> SyncReport:
            try:
                return await self.sync_mailbox(mailbox_id, loaded.get(mailbox_id))
            except _MailboxGone:
                return SyncReport()
            except (*_LOGIN_ERRORS, *_SERVER_ERRORS) as exc:
                await self._drop(mailbox_id)
                return SyncReport(errors=[f"mailbox {mailbox_id}: {exc}"])

        for part in await asyncio.gather(*(one(i) for i in ids)):
            report.merge(part)
        return report

    async def sync_mailbox(self, mailbox_id: int, loaded: Mailbox | None = None) -> SyncReport:
        """Read what is new in one mailbox (INBOX and Junk, or its POP3 maildrop)."""
        lock = self._locks.setdefault(mailbox_id, asyncio.Lock())
        async with lock, self._semaphore:
            if loaded is None:
                loaded = (await self._load([mailbox_id])).get(mailbox_id)
            mailbox = loaded
            if (
                mailbox is None
                or mailbox.status == MailboxStatus.DISCONNECTED
                or not (mailbox.imap_host or mailbox.pop3_host)
            ):
                await self._drop(mailbox_id)
                raise _MailboxGone(mailbox_id)
            ref = MailboxRef(mailbox.id, mailbox.workspace_id, mailbox.address)
            report = SyncReport(mailboxes=1)
            if mailbox.imap_host:
                session = await self._imap_session(mailbox)
                for folder in session.folders:
                    await self._sync_folder(session, ref, folder, report)
            else:
                await self._sync_pop3(mailbox, ref, report)
            self._login_failures.pop(mailbox_id, None)
            return report

    async def _load(self, mailbox_ids: Sequence[int]) -> dict[int, Mailbox]:
        """The mailboxes, and (into ``_marks``) how far each of their folders was read."""
        if not mailbox_ids:
            return {}
        async with self.db.session() as session:
            boxes = (
                await session.scalars(select(Mailbox).where(Mailbox.id.in_(list(mailbox_ids))))
            ).all()
            states = (
                await session.scalars(
                    select(MailboxFolderState).where(
                        MailboxFolderState.mailbox_id.in_(list(mailbox_ids))
                    )
                )
            ).all()
        for mailbox_id in mailbox_ids:
            self._marks[mailbox_id] = {}
        for state in states:
            self._marks[state.mailbox_id][state.folder] = _Mark(
                state.uid_validity, state.last_uid, state.synced_at
            )
        return {box.id: box for box in boxes}

    # -- IMAP ---------------------------------------------------------------------------------

    async def _imap_session(self, mailbox: Mailbox) -> _ImapSession:
        session = self._sessions.get(mailbox.id)
        if session is not None and session.client.is_connected:
            return session
        await self._drop(mailbox.id)
        assert mailbox.imap_host is not None
        endpoint = ImapEndpoint(
            host=mailbox.imap_host,
            port=mailbox.imap_port or 993,
            security=mailbox.imap_security or "tls",
            ca_file=mailbox.ca_file,
            timeout=self.settings.timeout,
        )
        creds = self.credentials.credentials(mailbox)
        client = ImapClient(endpoint)
        try:
            await self._imap_login(client, creds)
            capabilities = await client.capabilities()
            folders = sync_folders(await client.list_folders())
        except BaseException:
            client.close()
            raise
        session = _ImapSession(client, folders, "IDLE" in capabilities, "MOVE" in capabilities)
        self._sessions[mailbox.id] = session
        return session

    async def _imap_login(self, client: ImapClient, creds: SmtpCredentials) -> None:
        await client.connect()
        try:
            await client.login(creds.username, tokens=creds.tokens, password=creds.password)
        except ImapAuthenticationError as exc:
            if creds.tokens is None or exc.stage is ImapStage.TOKEN:
                raise
            # A token can die before its expiry (revoked, rotated keys): renew it once.
            await creds.tokens.access_token(force_refresh=True)
            client.close()
            await client.connect()
            await client.login(creds.username, tokens=creds.tokens)

    def _mark(self, mailbox_id: int, folder: str) -> _Mark | None:
        return self._marks.get(mailbox_id, {}).get(folder)

    async def _sync_folder(
        self, session: _ImapSession, mailbox: MailboxRef, folder: SyncFolder, report: SyncReport
    ) -> None:
        client = session.client
        try:
            status = await client.select(folder.name)
        except ImapError as exc:
            if folder.role is FolderRole.JUNK and exc.status in ("NO", "BAD"):
                return  # the Junk folder went away; INBOX still counts
            raise
        report.folders += 1
        state = self._mark(mailbox.id, folder.name)
        now = self.clock.now()
        top = (status.uid_next - 1) if status.uid_next else 0
        if state is None or state.uid_validity != status.uid_validity:
            if state is None:
                since = now - self.settings.first_sync_history
            else:
                since = state.synced_at - self.settings.resync_margin
                report.resyncs += 1
                await self._note_resync(mailbox, folder, state.uid_validity, status.uid_validity)
            uids = await client.uid_search("SINCE", imap_date(since))
            floor = 0
            baseline = True
        else:
            floor = state.last_uid
            baseline = False
            if status.uid_next is not None and status.uid_next <= floor + 1:
                return
            uids = [u for u in await client.uid_search("UID", f"{floor + 1}:*") if u > floor]
        if not uids:
            # Nothing to read; UIDs up to UIDNEXT-1 were used and expunged (or never read).
            if baseline or top > floor:
                await self._save_state(mailbox.id, folder, status.uid_validity, top, now)
            return
        batches = _chunks(sorted(uids), self.settings.batch)
        for index, batch in enumerate(batches):
            messages = await client.uid_fetch(batch)
            mark = max(batch)
            if index == len(batches) - 1 and baseline:
                mark = max(mark, top)
            classified = await self._process(session, mailbox, folder, messages, report)
            await self._save_records(mailbox, folder, status.uid_validity, mark, classified, report)

    async def _note_resync(
        self, mailbox: MailboxRef, folder: SyncFolder, old: int, new: int
    ) -> None:
        async with self.db.session() as session:
            repo.add_event(
                session,
                workspace_id=mailbox.workspace_id,
                at=self.clock.now(),
                kind="inbox.uidvalidity_changed",
                message=f"{folder.name}: UIDVALIDITY {old} -> {new}; re-reading recent mail",
                mailbox_id=mailbox.id,
            )

    async def _process(
        self,
        session: _ImapSession,
        mailbox: MailboxRef,
        folder: SyncFolder,
        messages: list[FetchedMessage],
        report: SyncReport,
    ) -> list[tuple[FetchedMessage, Classification]]:
        """Classify a batch and make the server changes it asks for (before recording).

        Only answers tied to our own sends (and warmup mail) leave Junk: whatever else
        is there may well be spam that merely reads like a person.
        """
        report.fetched += len(messages)
        now = self.clock.now()
        move: list[int] = []
        seen: list[int] = []
        classified: list[tuple[FetchedMessage, Classification]] = []
        for message in messages:
            result = self.classify(message.raw)
            classified.append((message, result))
            if result.kind is Kind.WARMUP and not self.settings.act_on_warmup:
                continue  # recorded, never a prospect's answer; the warmup receiver acts on it
            decision = decide(result, now=now, folder=folder.role, policy=self.settings.policy)
            if decision.flags and "\\Seen" in decision.flags and "\\Seen" not in message.flags:
                seen.append(message.uid)
            if decision.move_to_inbox and session.move and await self._ours(mailbox, result):
                move.append(message.uid)
        client = session.client
        if seen:
            await client.uid_store(seen, ["\\Seen"])
        if move:
            await client.uid_move(move, "INBOX")
            report.moved += len(move)
        return classified

    async def _ours(self, mailbox: MailboxRef, result: Classification) -> bool:
        if result.kind is Kind.WARMUP:
            return True
        async with self.db.session() as db:
            match = await find_match(db, mailbox, result)
        return match is not None and match.send_id is not None

    async def _save_records(
        self,
        mailbox: MailboxRef,
        folder: SyncFolder,
        validity: int,
        mark: int,
        classified: list[tuple[FetchedMessage, Classification]],
        report: SyncReport,
    ) -> None:
        now = self.clock.now()
        async with self.db.session() as db:
            for message, result in classified:
                recorded = await record_inbound(
                    db,
                    mailbox=mailbox,
                    folder=folder.name,
                    role=folder.role,
                    source=f"{validity}:{message.uid}",
                    raw=message.raw,
                    result=result,
                    received_at=message.internal_date,
                    now=now,
                    policy=self.settings.policy,
                )
                report.count(result, recorded is not None)
                if recorded is not None:
                    report.stopped += recorded.stopped
            await self._write_state(db, mailbox.id, folder, validity, mark, now)

    async def _save_state(
        self, mailbox_id: int, folder: SyncFolder, validity: int, mark: int, now: datetime
    ) -> None:
        async with self.db.session() as db:
            await self._write_state(db, mailbox_id, folder, validity, mark, now)

    async def _write_state(
        self,
        db: AsyncSession,
        mailbox_id: int,
        folder: SyncFolder,
        validity: int,
        mark: int,
        now: datetime,
    ) -> None:
        row = await save_folder_state(
            db, mailbox_id, folder.name, str(folder.role), validity, mark, now
        )
        self._marks.setdefault(mailbox_id, {})[folder.name] = _Mark(
            row.uid_validity, row.last_uid, row.synced_at
        )

    # -- POP3 ---------------------------------------------------------------------------------

    async def _sync_pop3(self, mailbox: Mailbox, ref: MailboxRef, report: SyncReport) -> None:
        await read_pop3(
            db=self.db,
            clock=self.clock,
            settings=self.settings,
            classify=self.classify,
            credentials=self.credentials.credentials(mailbox),
            mailbox=mailbox,
            ref=ref,
            first=self._mark(ref.id, POP3_FOLDER) is None,
            report=report,
        )

    # -- running forever ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Watch every mailbox until ``stop`` is set: IDLE or poll, reconnect with backoff.

        Its waits are sleeps on the clock, so it wants a clock whose sleeps take time
        (the system clock, or a virtual one with a speed); with a clock that jumps,
        drive :meth:`sync_all` instead (:func:`run_with_sending`).
        """
        tasks: dict[int, asyncio.Task[None]] = {}
        try:
            while not stop.is_set():
                wanted = set(await self.mailbox_ids())
                for mailbox_id in wanted - tasks.keys():
                    tasks[mailbox_id] = asyncio.create_task(
                        self._watch(mailbox_id, stop), name=f"inbox-{mailbox_id}"
                    )
                for mailbox_id in list(tasks):
                    task = tasks[mailbox_id]
                    if mailbox_id not in wanted or task.done():
                        if not task.done():
                            task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                        del tasks[mailbox_id]
                        await self._drop(mailbox_id)
                await self._sleep(self.settings.mailbox_refresh, stop)
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            await self.close()

    async def _watch(self, mailbox_id: int, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                await self.sync_mailbox(mailbox_id)
                failures = 0
                session = self._sessions.get(mailbox_id)
                if session is not None and session.idle:
                    await self._idle(mailbox_id, session, stop)
                else:
                    await self._sleep(self.settings.poll_interval, stop)
            except _MailboxGone:
                return
            except _LOGIN_ERRORS as exc:
                await self._drop(mailbox_id)
                await self._login_failed(mailbox_id, exc)
                await self._sleep(self.settings.login_backoff, stop)
            except _SERVER_ERRORS as exc:
                await self._drop(mailbox_id)
                failures += 1
                delay = self.backoff(failures)
                log.info("inbox: mailbox %s: %s; retrying in %s", mailbox_id, exc, delay)
                await self._sleep(delay, stop)
            except Exception as exc:  # a bug: logged and counted, this watcher restarts
                await self._drop(mailbox_id)
                failures += 1
                self.faults.record(f"inbox watcher {mailbox_id}", exc, self.clock.now(), log)
                await self._sleep(self.backoff(failures), stop)

    def backoff(self, failures: int) -> timedelta:
        """Exponential backoff with full jitter: base·2^(n-1), capped, then a random share."""
        base = self.settings.backoff_base * (2 ** min(failures - 1, 20))
        ceiling = min(base, self.settings.backoff_max)
        share: float = 0.5 + 0.5 * self._random.random()
        return timedelta(seconds=ceiling.total_seconds() * share)

    async def _idle(self, mailbox_id: int, session: _ImapSession, stop: asyncio.Event) -> None:
        """IDLE on INBOX until something arrives, ``idle_renew`` passes on the clock, or stop."""
        status = await session.client.select("INBOX")
        state = self._mark(mailbox_id, "INBOX")
        arrived = state is not None and (status.uid_next or 0) > state.last_uid + 1
        if arrived:
            return  # mail came in after the pass read INBOX: IDLE reports only later mail
        wake = asyncio.Event()

        async def renew() -> None:
            await self.clock.sleep(self.settings.idle_renew.total_seconds())
            wake.set()

        async def relay() -> None:
            await stop.wait()
            wake.set()

        helpers = [asyncio.ensure_future(renew()), asyncio.ensure_future(relay())]
        try:
            await session.client.idle(RFC2177_LIMIT.total_seconds(), wake=wake)
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _sleep(self, delay: timedelta, stop: asyncio.Event) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(delay.total_seconds()))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                task.cancel()
            await asyncio.gather(sleeper, stopper, return_exceptions=True)

    async def _login_failed(self, mailbox_id: int, exc: BaseException) -> None:
        reason = str(exc)
        if self._login_failures.get(mailbox_id) == reason:
            return  # one event per distinct refusal, not one per retry
        self._login_failures[mailbox_id] = reason
        async with self.db.session() as session:
            mailbox = await session.get(Mailbox, mailbox_id)
            if mailbox is None:
                return
            repo.add_event(
                session,
                workspace_id=mailbox.workspace_id,
                at=self.clock.now(),
                kind="inbox.login_failed",
                message=f"reading {mailbox.address} failed: {reason}",
                mailbox_id=mailbox.id,
            )


async def run_with_sending(
    engine: Engine,
    inbox: InboxSync,
    end: datetime,
    *,
    every: timedelta = timedelta(minutes=30),
    before_sync: Callable[[], Awaitable[object] | object] | None = None,
    progress: Callable[[TickReport], None] | None = None,
) -> SyncReport:
    """Send and read on one virtual clock: run the engine for ``every``, then sync, until ``end``.

    With a clock that jumps (the demo's), two loops sleeping on it would push time
    for each other; slicing keeps one driver. ``before_sync`` runs before each pass
    (the demo releases the simulated prospects' answers that are due).
    """
    total = SyncReport()
    clock = inbox.clock
    while clock.now() < end:
        await engine.run_until(min(clock.now() + every, end), progress)
        if before_sync is not None:
            outcome = before_sync()
            if asyncio.iscoroutine(outcome):
                await outcome
        total.merge(await inbox.sync_all())
    return total
