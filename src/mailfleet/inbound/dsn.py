"""Delivery reports: RFC 3464 delivery status notifications and the MTAs' own bounce formats.

An RFC 3464 report (``multipart/report; report-type=delivery-status``) is read
field by field: one :class:`Recipient` per recipient block with its action,
enhanced status, diagnostic, hard or soft (from :mod:`mailfleet.providers.bounces`)
and a :class:`BounceReason`. Bounces in other formats (qmail, Exim's classic
text, Yahoo, old Gmail and Exchange texts, …) go to flufl.bounce for the failed
addresses; the diagnostic is then the paragraph of the notification that names
each address. Either way the original Message-ID comes from the returned
message or headers, else from the notification text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

from flufl.bounce import all_failures

from mailfleet.inbound.message import (
    MAX_TEXT_CHARS,
    Part,
    addresses,
    body_text,
    first_message_id,
    header_map,
    part_text,
    walk,
)
from mailfleet.inbound.reasons import bounce_reason
from mailfleet.inbound.result import Action, BounceReason, Recipient
from mailfleet.providers.bounces import is_hard_bounce
from mailfleet.providers.reply_text import parse_enhanced

log = logging.getLogger(__name__)

STATUS_TYPES = frozenset(
    {"message/delivery-status", "message/global-delivery-status", "text/delivery-status"}
)
_HEADER_TYPES = frozenset({"text/rfc822-headers", "message/global-headers"})
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
_TYPED = re.compile(r"^\s*[A-Za-z0-9][A-Za-z0-9.+-]{0,30}\s*;\s*")
_SPACES = re.compile(r"\s+")
_ID_LINE = re.compile(r"^[ \t>]*Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]{1,900}>)", re.I | re.M)
_TO_LINE = re.compile(r"^[ \t>]*To:[ \t]*([^\r\n]{1,500})", re.I | re.M)
# Where a notification's own words end and the returned message begins.
_RETURNED = re.compile(
    r"^[ \t]*(?:-{2,}[ \t]*)?(?:below\s+this\s+line\s+is\s+a\s+copy|this\s+is\s+a\s+copy\s+of\s+the"
    r"|original\s+message|original\s+message\s+follows|returned\s+mail\s+follows|undelivered\s+"
    r"message|message\s+headers?\s+follow|original\s+message\s+headers|the\s+original\s+message"
    r"|-+\s*returned\s+mail|-+\s*original)",
    re.I | re.M,
)
_CODE_LINE = re.compile(
    r"^.*?(?:(?<![0-9.])[245]\.\d{1,3}\.\d{1,3}(?![0-9])|\b[45]\d\d[ -:]).*$", re.M
)
_MAX_DIAGNOSTIC = 600
_ACTIONS = {a.value: a for a in Action if a is not Action.COMPLAINED}


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What a delivery report says: per-recipient outcomes and the message it is about."""

    recipients: tuple[Recipient, ...]
    original_message_id: str | None
    text: str
    signals: tuple[str, ...]


def _clean(value: str, limit: int = _MAX_DIAGNOSTIC) -> str:
    return _SPACES.sub(" ", value).strip()[:limit]


def _untype(value: str) -> str:
    """``rfc822; a@b`` → ``a@b``; ``smtp; 550 …`` → ``550 …``."""
    return _TYPED.sub("", value, count=1).strip()


def _address(value: str) -> str:
    return _untype(value).strip().strip("<>").strip()


def _status(field: str, diagnostic: str) -> str | None:
    status = parse_enhanced(field)
    detail = parse_enhanced(diagnostic)
    # "5.0.0" says nothing; a specific code of the same class in the diagnostic says more.
    if status is None or (
        detail is not None and status.endswith(".0.0") and detail[0] == status[0]
    ):
        return detail or status
    return status


def _action(field: str, status: str | None) -> Action:
    word = field.strip().split(" ", 1)[0].lower() if field.strip() else ""
    if word in _ACTIONS:
        return _ACTIONS[word]
    if status and status[0] == "2":
        return Action.DELIVERED
    if status and status[0] == "4":
        return Action.DELAYED
    return Action.FAILED


def _reason(action: Action, status: str | None, diagnostic: str) -> BounceReason:
    # A failure with a transient status is a message the MTA stopped retrying.
    if action is Action.FAILED and status is not None and status.startswith("4."):
        return BounceReason.EXPIRED
    return bounce_reason(status, diagnostic)


def _recipient(
    address: str,
    action: Action,
    status: str | None,
    diagnostic: str,
    *,
    final: str | None = None,
    remote_mta: str | None = None,
) -> Recipient:
    failing = action in (Action.FAILED, Action.DELAYED)
    return Recipient(
        address=address,
        action=action,
        status=status,
        diagnostic=diagnostic,
        hard=action is Action.FAILED and is_hard_bounce(status, diagnostic),
        reason=_reason(action, status, diagnostic) if failing else None,
        final_recipient=final if final and final.lower() != address.lower() else None,
        remote_mta=remote_mta,
    )


def _blocks(part: Message) -> list[dict[str, list[str]]]:
    """The header blocks of a delivery-status part, however it was parsed."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [header_map(p) for p in payload if isinstance(p, Message)]
        if any("action" in b or "final-recipient" in b for b in blocks):
            return blocks
    # A text/delivery-status part, an encoded one, or one the parser could not split.
    text = part_text(part)
    parser = HeaderParser()
    return [header_map(parser.parsestr(chunk.strip() + "\n")) for chunk in _split_blocks(text)]


def _split_blocks(text: str) -> Iterable[str]:
    return [chunk for chunk in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")) if chunk.strip()]


def _first(block: dict[str, list[str]], name: str) -> str:
    values = block.get(name)
    return values[0].strip() if values else ""


def status_recipients(part: Message) -> list[Recipient]:
    """One :class:`Recipient` per recipient block of a delivery-status part."""
    found: list[Recipient] = []
    for block in _blocks(part):
        final = _address(_first(block, "final-recipient"))
        original = _address(_first(block, "original-recipient"))
        if not final and not original:
            continue  # the per-message block, or junk
        diagnostic = _clean(_untype(_first(block, "diagnostic-code")))
        status = _status(_first(block, "status"), diagnostic)
        action = _action(_first(block, "action"), status)
        remote = _untype(_first(block, "remote-mta")) or None
        address = original if "@" in original else final
        found.append(
            _recipient(address, action, status, diagnostic, final=final, remote_mta=remote)
        )
    return found


def _ids_in(text: str) -> list[str]:
    return [m.group(1) for m in _ID_LINE.finditer(text)]


def returned_ids(parts: list[Part], text: str = "") -> list[str]:
    """Message-IDs of the returned message: attached message or headers first, then the text."""
    found: list[str] = []
    for part, ctype in parts:
        if ctype in _MESSAGE_TYPES:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                value = payload[0].get("message-id")
                mid = first_message_id(str(value)) if value is not None else None
                if mid:
                    found.append(mid)
            elif isinstance(payload, str):
                found.extend(_ids_in(payload[:MAX_TEXT_CHARS]))
        elif ctype in _HEADER_TYPES:
            found.extend(_ids_in(part_text(part)))
    if text:
        found.extend(_ids_in(text))
    return list(dict.fromkeys(found))


def returned_recipients(parts: list[Part], text: str = "") -> list[str]:
    """The To addresses of the returned message, where one is attached or quoted."""
    for part, ctype in parts:
        if ctype in _MESSAGE_TYPES:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                value = payload[0].get("to")
                if value is not None:
                    return [a for _, a in addresses(str(value))]
        elif ctype in _HEADER_TYPES:
            match = _TO_LINE.search(part_text(part))
            if match:
                return [a for _, a in addresses(match.group(1))]
    if text:
        match = _TO_LINE.search(text)
        if match:
            return [a for _, a in addresses(match.group(1))]
    return []


def pick_id(candidates: list[str], ours: Callable[[str], bool] | None) -> str | None:
    """The first candidate the caller recognises, else the first candidate."""
    if ours is not None:
        for candidate in candidates:
            if ours(candidate):
                return candidate
    return candidates[0] if candidates else None


def read_status_report(
    msg: Message,
    status_part: Message,
    ours: Callable[[str], bool] | None,
    *,
    parts: list[Part] | None = None,
) -> DeliveryReport:
    """Read an RFC 3464 report whose delivery-status part is ``status_part``."""
    parts = walk(msg) if parts is None else parts
    text = body_text(msg, parts=parts)
    recipients = status_recipients(status_part)
    original = pick_id(returned_ids(parts), ours)
    return DeliveryReport(tuple(recipients), original, _clean_text(text), ("dsn",))


def _clean_text(text: str) -> str:
    return text.strip()[:MAX_TEXT_CHARS]


def _notification(text: str) -> tuple[str, str]:
    """Split a bounce body into the MTA's words and the returned message after them."""
    cut = _RETURNED.search(text)
    if cut is None:
        return text, ""
    return text[: cut.start()], text[cut.start() :]


def _paragraphs(text: str, address: str) -> list[str]:
    """For each mention of ``address`` (at most 10): its line to the next blank line."""
    found: list[str] = []
    lowered, needle = text.lower(), address.lower()
    index = lowered.find(needle)
    while index >= 0 and len(found) < 10:
        start = text.rfind("\n", 0, index) + 1
        end = re.search(r"\n[ \t]*\n", text[index : index + 4000])
        stop = index + end.start() if end else len(text)
        found.append(text[start : min(stop, start + 2000)])
        index = lowered.find(needle, stop)
    return found


def _paragraph(text: str, address: str) -> str:
    """The paragraph that says what happened to ``address``: one with a code, else a reason."""
    paragraphs = _paragraphs(text, address)
    for paragraph in paragraphs:
        if _CODE_LINE.search(paragraph):
            return paragraph
    for paragraph in paragraphs:
        if bounce_reason(None, paragraph) is not BounceReason.UNKNOWN:
            return paragraph
    return paragraphs[0] if paragraphs else ""


def _code_line(text: str) -> str:
    match = _CODE_LINE.search(text)
    return match.group(0) if match else ""


def _flufl(msg: Message) -> tuple[list[str], list[str]]:
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a third-party heuristic must not take the classifier down
        log.debug("flufl.bounce failed on a message", exc_info=True)
        return [], []

    def decoded(found: frozenset[bytes]) -> list[str]:
        out = {a.decode("ascii", "replace").strip().strip("<>") for a in found}
        return sorted(a for a in out if "@" in a and len(a) <= 320)

    return decoded(temporary), decoded(permanent)


def read_bounce_text(
    msg: Message,
    ours: Callable[[str], bool] | None,
    *,
    text: str | None = None,
    heuristic_msg: Message | None = None,
    parts: list[Part] | None = None,
    from_mta: bool = True,
) -> DeliveryReport:
    """Read a bounce that is not an RFC 3464 report (may find no recipients at all).

    ``heuristic_msg`` is what flufl.bounce scans (its detectors cost per body line,
    so the caller may pass a parse of the message's first bytes only). When no
    detector finds an address and ``from_mta`` says a mail system sent it, the
    returned message's single To is taken as the failed recipient.
    """
    parts = walk(msg) if parts is None else parts
    body = body_text(msg, parts=parts) if text is None else text
    words, returned = _notification(body)
    temporary, permanent = _flufl(msg if heuristic_msg is None else heuristic_msg)
    signals = ["flufl"] if temporary or permanent else []
    if not temporary and not permanent and from_mta:
        # Cold mail goes to one address: the returned message's To is whom it failed for.
        to = returned_recipients(parts, returned)
        if len(to) == 1:
            permanent = to
            signals.append("returned-to")
    recipients: list[Recipient] = []
    single = len(temporary) + len(permanent) == 1
    for address in permanent + [a for a in temporary if a not in permanent]:
        paragraph = _paragraph(words, address)
        if parse_enhanced(paragraph) is None and single:
            paragraph = f"{paragraph}\n{_code_line(words)}"
        diagnostic = _clean(paragraph)
        action = Action.FAILED if address in permanent else Action.DELAYED
        recipients.append(_recipient(address, action, parse_enhanced(diagnostic), diagnostic))
    original = pick_id(returned_ids(parts, returned or body), ours)
    return DeliveryReport(tuple(recipients), original, _clean_text(words), tuple(signals))
