"""One POP3 pass of the inbox sync: read the messages whose UIDL is new, never delete any.

POP3 has no folders, flags or UIDVALIDITY: the maildrop is a list of messages
with unique ids (UIDL). The pass reads those not yet in ``pop3_seen``, records
each through :func:`~mailfleet.engine.inbox_actions.record_inbound` and
remembers its UIDL in the same transaction. The first pass of a mailbox reads
back as far as ``first_sync_history`` (by the Date header); older messages are
only remembered. A message over ``pop3_max_bytes`` is read as its headers and
first lines (``TOP``), never whole.
"""

from __future__ import annotations

from sqlalchemy import select

from mailfleet.clock import Clock
from mailfleet.engine.inbox_actions import MailboxRef, already_recorded, record_inbound
from mailfleet.engine.inbox_settings import Classifier, InboxSettings, SyncReport
from mailfleet.inbound import Classification
from mailfleet.inbox import FolderRole, dedupe_key
from mailfleet.store import Database, Mailbox, Pop3Seen
from mailfleet.store.inbox_queries import save_folder_state
from mailfleet.transport.pop3 import Pop3Client, Pop3Endpoint
from mailfleet.transport.smtp import SmtpCredentials

POP3_FOLDER = "POP3"
"""The folder name POP3 messages are recorded under (and its ``mailbox_folder_state`` row)."""
TOP_LINES = 400


async def read_pop3(
    *,
    db: Database,
    clock: Clock,
    settings: InboxSettings,
    classify: Classifier,
    credentials: SmtpCredentials,
    mailbox: Mailbox,
    ref: MailboxRef,
    first: bool,
    report: SyncReport,
) -> None:
    """Read what is new in ``mailbox``'s POP3 maildrop; ``first`` for its very first pass."""
    assert mailbox.pop3_host is not None
    endpoint = Pop3Endpoint(
        host=mailbox.pop3_host,
        port=mailbox.pop3_port or 995,
        security=mailbox.pop3_security or "tls",
        ca_file=mailbox.ca_file,
        timeout=settings.timeout,
    )
    client = Pop3Client(endpoint)
    try:
        await client.connect()
        await client.login(
            credentials.username, tokens=credentials.tokens, password=credentials.password
        )
        listing = await client.uidl()
        sizes = await client.sizes()
        report.folders += 1
        now = clock.now()
        async with db.session() as session:
            known = set(
                (
                    await session.scalars(
                        select(Pop3Seen.uidl).where(Pop3Seen.mailbox_id == ref.id)
                    )
                ).all()
            )
        new = [(number, uid) for number, uid in listing if uid not in known]
        since = now - settings.first_sync_history
        for start in range(0, len(new), settings.batch):
            read: list[tuple[str, bytes, Classification | None]] = []
            for number, uid in new[start : start + settings.batch]:
                if sizes.get(number, 0) > settings.pop3_max_bytes:
                    raw = await client.top(number, TOP_LINES)
                else:
                    raw = await client.retr(number)
                result = classify(raw)
                old = first and result.date is not None and result.date < since
                read.append((uid, raw, None if old else result))
            async with db.session() as session:
                for uid, raw, found in read:
                    session.add(Pop3Seen(mailbox_id=ref.id, uidl=uid[:100], seen_at=now))
                    if found is None:
                        continue  # older than the first pass reaches back: only remembered
                    result = found
                    if await already_recorded(session, ref.id, dedupe_key(result.message_id, raw)):
                        report.count(result, False)
                        continue
                    recorded = await record_inbound(
                        session,
                        mailbox=ref,
                        folder=POP3_FOLDER,
                        role=FolderRole.INBOX,
                        source=f"uidl:{uid}"[:200],
                        raw=raw,
                        result=result,
                        received_at=result.date,
                        now=now,
                        policy=settings.policy,
                    )
                    report.count(result, recorded is not None)
                    if recorded is not None:
                        report.stopped += recorded.stopped
                report.fetched += len(read)
                await save_folder_state(session, ref.id, POP3_FOLDER, "pop3", 0, 0, now)
        if first and not new:
            async with db.session() as session:
                await save_folder_state(session, ref.id, POP3_FOLDER, "pop3", 0, 0, now)
    finally:
        await client.quit()
