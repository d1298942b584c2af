"""Write operations on mailbox credentials and status, and re-encryption of every secret.

Each function runs in the caller's session except :func:`reencrypt_secrets`,
which commits in small batches so a running engine is never blocked for long.
Secrets arrive already sealed; this module never sees a plain secret.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.store.db import Database
from mailfleet.store.models import Enrollment, EnrollmentStatus, Mailbox, MailboxStatus, Send
from mailfleet.store.repository import add_event


@dataclass(frozen=True, slots=True)
class StoredLogin:
    """A mailbox's new login: kind, sealed secret and the non-secret identifiers."""

    auth_kind: str
    secret: bytes = field(repr=False)
    tenant: str | None = None
    client_id: str | None = None
    token_endpoint: str | None = None


def set_login(session: AsyncSession, mailbox: Mailbox, login: StoredLogin, now: datetime) -> bool:
    """Store ``login`` on ``mailbox``; a disconnected mailbox becomes active. Whether it did."""
    mailbox.auth_kind = login.auth_kind
    mailbox.secret = login.secret
    mailbox.tenant = login.tenant
    mailbox.client_id = login.client_id
    mailbox.token_endpoint = login.token_endpoint
    reactivated = mailbox.status == MailboxStatus.DISCONNECTED
    if reactivated:
        mailbox.status = MailboxStatus.ACTIVE
        mailbox.status_reason = None
        mailbox.paused_until = None
    add_event(
        session,
        workspace_id=mailbox.workspace_id,
        at=now,
        kind="mailbox.connected",
        message=f"credentials stored ({login.auth_kind})",
        mailbox_id=mailbox.id,
    )
    return reactivated


def pause(session: AsyncSession, mailbox: Mailbox, reason: str, now: datetime) -> None:
    """Pause ``mailbox`` until a person resumes it; its queued first steps move on."""
    mailbox.status = MailboxStatus.PAUSED
    mailbox.status_reason = reason
    mailbox.paused_until = None
    add_event(
        session,
        workspace_id=mailbox.workspace_id,
        at=now,
        kind="mailbox.paused",
        message=reason,
        mailbox_id=mailbox.id,
    )


async def release_first_steps(session: AsyncSession, mailbox_id: int) -> None:
    """Let first steps queued for ``mailbox_id`` open their thread from another mailbox."""
    await session.execute(
        update(Enrollment)
        .where(
            Enrollment.mailbox_id == mailbox_id,
            Enrollment.next_step == 1,
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
        .values(mailbox_id=None)
        .execution_options(synchronize_session=False)
    )


def resume(session: AsyncSession, mailbox: Mailbox, now: datetime) -> None:
    """Make a paused mailbox active again."""
    mailbox.status = MailboxStatus.ACTIVE
    mailbox.status_reason = None
    mailbox.paused_until = None
    add_event(
        session,
        workspace_id=mailbox.workspace_id,
        at=now,
        kind="mailbox.resumed",
        message="resumed by a person",
        mailbox_id=mailbox.id,
    )


async def send_count(session: AsyncSession, mailbox_id: int) -> int:
    """How many sends (any status) ``mailbox_id`` has made."""
    value = await session.scalar(select(func.count()).where(Send.mailbox_id == mailbox_id))
    return int(value or 0)


@dataclass(slots=True)
class RekeyReport:
    """What a re-encryption pass did; ``failed`` names mailboxes whose secret did not open."""

    total: int = 0
    reencrypted: int = 0
    retried: int = 0
    failed: list[str] = field(default_factory=list)


async def reencrypt_secrets(
    db: Database, rotate: Callable[[bytes], bytes], *, batch: int = 50
) -> RekeyReport:
    """Re-seal every mailbox secret with ``rotate`` (decrypt with any key, encrypt with the new).

    Each row is swapped only if it still holds the blob that was read (a running
    engine may renew a token cache meanwhile; that row is read again). A secret
    that does not open is left as it is and named in the report.
    """
    report = RekeyReport()
    async with db.session() as session:
        ids = list((await session.scalars(select(Mailbox.id).order_by(Mailbox.id))).all())
    report.total = len(ids)
    for start in range(0, len(ids), batch):
        async with db.session() as session:
            for mailbox_id in ids[start : start + batch]:
                for _attempt in range(5):
                    row = (
                        await session.execute(
                            select(Mailbox.address, Mailbox.secret).where(Mailbox.id == mailbox_id)
                        )
                    ).first()
                    if row is None or row.secret is None:
                        break
                    try:
                        fresh = rotate(row.secret)
                    except ValueError:
                        report.failed.append(row.address)
                        break
                    result = await session.execute(
                        update(Mailbox)
                        .where(Mailbox.id == mailbox_id, Mailbox.secret == row.secret)
                        .values(secret=fresh)
                        .execution_options(synchronize_session=False)
                    )
                    if getattr(result, "rowcount", 0) == 1:
                        report.reencrypted += 1
                        break
                    report.retried += 1
    return report
