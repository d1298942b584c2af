"""Complaints: ARF feedback reports (RFC 5965) and Microsoft's older JMRP copies.

An ARF report is ``multipart/report; report-type=feedback-report`` with a
human part, a ``message/feedback-report`` part of fields and the original
message or its headers. Providers redact differently: Yahoo keeps
``Original-Rcpt-To``; Microsoft's JMRP used to put the complainant in the
attached message's ``X-HmXmrOriginalRecipient``; some only leave the original
``To``. The recipient is read from the first of those that is present.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

from mailfleet.inbound.dsn import pick_id, returned_ids
from mailfleet.inbound.message import Part, addresses, body_text, header_map, part_text, walk
from mailfleet.inbound.result import Action, Complaint, Recipient

FEEDBACK_TYPES = frozenset({"message/feedback-report"})
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
_HEADER_TYPES = frozenset({"text/rfc822-headers", "message/global-headers"})
# Senders of complaint copies that are not ARF reports.
JMRP_SENDERS = frozenset({"staff@hotmail.com"})


@dataclass(frozen=True, slots=True)
class ComplaintReport:
    """A complaint, the complainant as a recipient, and the message complained about."""

    complaint: Complaint
    recipients: tuple[Recipient, ...]
    original_message_id: str | None
    text: str


def _fields(part: Message) -> dict[str, list[str]]:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return header_map(payload[0])
    return header_map(HeaderParser().parsestr(part_text(part).strip() + "\n"))


def _first(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    value = values[0].strip() if values else ""
    return value or None


def _original_headers(parts: list[Part]) -> dict[str, list[str]]:
    for part, ctype in parts:
        if ctype in _MESSAGE_TYPES:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return header_map(payload[0])
        elif ctype in _HEADER_TYPES:
            return header_map(HeaderParser().parsestr(part_text(part)))
    return {}


def _bare(value: str | None) -> str | None:
    if not value:
        return None
    found = addresses(value)
    return found[0][1] if found else None


def read_complaint(
    msg: Message,
    feedback_part: Message | None,
    ours: Callable[[str], bool] | None,
    *,
    parts: list[Part] | None = None,
) -> ComplaintReport:
    """Read an ARF report (``feedback_part`` given) or a JMRP copy (``feedback_part`` None)."""
    parts = walk(msg) if parts is None else parts
    fields = _fields(feedback_part) if feedback_part is not None else {}
    original = _original_headers(parts)
    recipient = (
        _bare(_first(fields, "original-rcpt-to"))
        or _bare(_first(original, "x-hmxmroriginalrecipient"))
        or _bare(_first(original, "to"))
    )
    complaint = Complaint(
        feedback_type=(_first(fields, "feedback-type") or "abuse").lower(),
        user_agent=_first(fields, "user-agent"),
        original_mail_from=_bare(_first(fields, "original-mail-from")),
        original_recipient=recipient,
        reported_domain=_first(fields, "reported-domain"),
        source_ip=_first(fields, "source-ip"),
        arrival_date=_first(fields, "arrival-date") or _first(fields, "received-date"),
    )
    recipients = (Recipient(address=recipient, action=Action.COMPLAINED),) if recipient else ()
    return ComplaintReport(
        complaint,
        recipients,
        pick_id(returned_ids(parts), ours),
        body_text(msg, parts=parts).strip(),
    )
