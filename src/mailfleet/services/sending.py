"""The one send state machine's wire steps, shared by cold sends, warmup and replies.

A send is ``claimed`` (its Message-ID committed) before any connection opens; then:

1. :func:`mark_submitting` — one conditional UPDATE from exactly ``claimed`` (and, for a
   lead's step, only while the lead is still active): a stop that landed after the claim,
   or another process that got there first, wins and nothing is submitted;
2. :func:`submit` — through a :class:`~mailfleet.transport.submitter.Submitter`; a reply
   that says the token just died (535 5.7.3 on Microsoft 365) renews it and tries once
   more, the same for every kind of send;
3. the caller records the server's reply and applies the reaction
   (:mod:`mailfleet.engine.reaction`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailfleet.engine.reaction import classify
from mailfleet.store import Enrollment, EnrollmentStatus, Send, SendStatus
from mailfleet.transport.smtp import SubmitResult
from mailfleet.transport.submitter import SendingMailbox, Submitter


async def mark_submitting(
    session: AsyncSession, send_id: int, *, enrollment_id: int | None = None
) -> bool:
    """Move a send from ``claimed`` to ``submitting``; False when it was not ``claimed``
    any more or (``enrollment_id``) its lead's sequence is no longer active."""
    query = update(Send).where(Send.id == send_id, Send.status == SendStatus.CLAIMED)
    if enrollment_id is not None:
        active = (
            select(Enrollment.id)
            .where(Enrollment.id == enrollment_id, Enrollment.status == EnrollmentStatus.ACTIVE)
            .exists()
        )
        query = query.where(active)
    result: Any = await session.execute(
        query.values(status=SendStatus.SUBMITTING).execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)


async def submit(
    submitter: Submitter,
    mailbox: SendingMailbox,
    provider: str,
    envelope_from: str,
    recipients: Sequence[str],
    raw: bytes,
) -> SubmitResult:
    """Submit once, and once more with a renewed token when the reply asks for it."""
    result = await submitter.submit(mailbox, envelope_from, recipients, raw)
    outcome = classify(result, provider, mailbox.address)
    if outcome.refresh_token_first and submitter.renews_tokens(mailbox):
        result = await submitter.submit(mailbox, envelope_from, recipients, raw, fresh_token=True)
    return result
