"""What an inbound message means for its sequence, its lead and the mailbox: pure policy.

:func:`decide` turns a classification into a :class:`Decision`; the engine applies
it through the sequencer's stop API (:func:`mailfleet.services.stops.stop_lead`),
whose rules say which sequences each reason ends: a reply ends the lead's
sequences (and its colleagues' where the campaign says ``on_company_reply``); a
hard bounce, a complaint or an unsubscribe also suppresses the address in the
workspace; a soft bounce is counted and ends a sequence only where the campaign
says ``on_bounce: any``; an out-of-office answer is not a reply: unless the
campaign stops ``on_auto_reply``, the sequence pauses until the return date (or
for a configurable number of days) and then resumes.

On the server the only changes ever made are the ones decided here: moving a
person's answer (or warmup mail) out of Junk and setting ``\\Seen`` on warmup mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailfleet.content.unsubscribe import TokenClaim, TokenError, token_in_subject, verify
from mailfleet.inbound import Action, Classification, Kind
from mailfleet.inbox.folders import FolderRole
from mailfleet.inbox.threads import addresses_of

PAUSE_DAYS_SETTING = "auto_reply_pause_days"
"""Campaign setting: days an out-of-office answer without a return date pauses a sequence."""


@dataclass(frozen=True, slots=True)
class InboxPolicy:
    """Defaults a campaign's settings may override."""

    auto_reply_pause_days: int = 7
    max_pause_days: int = 60  # a return date further out is read as this many days
    rescue_kinds: frozenset[Kind] = frozenset({Kind.REPLY, Kind.UNSUBSCRIBE, Kind.WARMUP})
    """Kinds moved from Junk to INBOX (when tied to our mail): people's answers, and warmup."""
    seen_kinds: frozenset[Kind] = frozenset({Kind.WARMUP})
    """Kinds marked ``\\Seen``; everything else is left unread for the person."""
    unsubscribe_keys: tuple[bytes, ...] = ()
    """Keys of the signed ``mailto:`` unsubscribe subject (none: the token is not read)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do about one inbound message once it is matched."""

    stop: str | None = None  # a stop reason: reply, unsubscribe, complaint, hard_bounce, …
    addresses: tuple[str, ...] = ()  # addresses the message itself names for that stop
    detail: str = ""  # what goes into the stop reason (status code, subject)
    pause_until: datetime | None = None  # out of office: hold the sequence until then
    token: TokenClaim | None = None  # the lead a signed mailto: unsubscribe subject names
    hard_bounce: bool = False
    soft_bounce: bool = False
    complaint: bool = False
    move_to_inbox: bool = False
    flags: tuple[str, ...] = ()


def resume_at(return_date: date, timezone: str) -> datetime:
    """The start of ``return_date`` in the campaign's timezone, as UTC."""
    try:
        zone: ZoneInfo | None = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    local = datetime.combine(return_date, time(0), zone or UTC)
    return local.astimezone(UTC)


def _pause_until(
    result: Classification,
    now: datetime,
    settings: dict[str, Any],
    timezone: str,
    policy: InboxPolicy,
) -> datetime | None:
    limit = now + timedelta(days=policy.max_pause_days)
    if result.return_date is not None:
        until = resume_at(result.return_date, timezone)
        return None if until <= now else min(until, limit)
    days = settings.get(PAUSE_DAYS_SETTING, policy.auto_reply_pause_days)
    try:
        days = int(days)
    except (TypeError, ValueError):
        days = policy.auto_reply_pause_days
    return min(now + timedelta(days=days), limit) if days > 0 else None


def _mailto_claim(result: Classification, policy: InboxPolicy) -> TokenClaim | None:
    """The lead of a signed ``unsubscribe <token>`` subject (our ``mailto:`` link), if valid."""
    if not policy.unsubscribe_keys or result.kind not in (Kind.UNSUBSCRIBE, Kind.REPLY):
        return None
    token = token_in_subject(result.subject)
    if token is None:
        return None
    try:
        return verify(policy.unsubscribe_keys, token)
    except TokenError:
        return None  # a forged or garbled token: the message is read as what it says


def decide(
    result: Classification,
    *,
    now: datetime,
    folder: FolderRole = FolderRole.INBOX,
    campaign_settings: dict[str, Any] | None = None,
    campaign_timezone: str = "UTC",
    policy: InboxPolicy | None = None,
) -> Decision:
    """The decision for ``result``, read from ``folder``, under a campaign's settings."""
    policy = policy or InboxPolicy()
    settings = campaign_settings or {}
    move = folder is FolderRole.JUNK and result.kind in policy.rescue_kinds
    flags = ("\\Seen",) if result.kind in policy.seen_kinds else ()
    kind = result.kind
    claim = _mailto_claim(result, policy)
    if claim is not None:
        return Decision(
            stop="unsubscribe", detail="mailto", token=claim, move_to_inbox=move, flags=flags
        )
    if kind is Kind.REPLY:
        return Decision(stop="reply", detail=result.subject[:200], move_to_inbox=move, flags=flags)
    if kind is Kind.UNSUBSCRIBE:
        return Decision(
            stop="unsubscribe",
            detail="reply",
            addresses=tuple(addresses_of([result.from_address])),
            move_to_inbox=move,
            flags=flags,
        )
    if kind is Kind.COMPLAINT:
        complainant = result.complaint.original_recipient if result.complaint else None
        named = addresses_of([complainant, *(r.address for r in result.recipients)])
        feedback = result.complaint.feedback_type if result.complaint else "abuse"
        return Decision(
            stop="complaint", addresses=tuple(named), detail=feedback, complaint=True, flags=flags
        )
    if kind is Kind.BOUNCE:
        failed = [r for r in result.recipients if r.action is Action.FAILED]
        hard = [r for r in failed if r.hard]
        if hard:
            return Decision(
                stop="hard_bounce",
                addresses=tuple(addresses_of(r.address for r in hard)),
                detail=f"{hard[0].status or 'no status'} {hard[0].reason or ''}".strip(),
                hard_bounce=True,
                flags=flags,
            )
        if failed or not result.recipients:
            first = failed[0] if failed else None
            detail = f"{first.status or ''} {first.reason or ''}".strip() if first else ""
            return Decision(stop="soft_bounce", detail=detail, soft_bounce=True, flags=flags)
        return Decision(flags=flags)  # only delayed: the MTA is still trying
    if kind is Kind.AUTO_REPLY:
        until = _pause_until(result, now, settings, campaign_timezone, policy)
        return Decision(stop="auto_reply", pause_until=until, move_to_inbox=move, flags=flags)
    return Decision(move_to_inbox=move, flags=flags)
