"""Reading an SMTP reply's text: its code, its RFC 3463 enhanced code and its hints.

Replies reach us in several shapes — ``"451 4.7.500 Server busy"`` as seen on the
wire, ``"4.7.500 Server busy"`` as aiosmtplib hands over the text without its
code, multi-line replies with ``"421-"`` continuation prefixes, or a DSN's
``"smtp; 550 5.1.1 ..."`` — and some are truncated or garbage. Nothing here raises.
"""

from __future__ import annotations

import re

# RFC 3463: class "2"/"4"/"5", subject and detail of 1–3 digits without leading
# zeros. The look-arounds stop an IP address (10.4.5.6) or a version number from
# being read as a status code.
_ENHANCED = r"(?<![0-9.])([245])\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})(?!\.?[0-9])"
_ENHANCED_AT_START = re.compile(r"^\s*(?:[0-9]{3}[ -]?)?\s*" + _ENHANCED)
_ENHANCED_ANYWHERE = re.compile(_ENHANCED)
_CODE_AT_START = re.compile(r"^\s*([2-5][0-9][0-9])(?:[ -]|$)")
# Per-line prefixes of a multi-line reply: "421-4.7.0 " or "4.7.0 ".
_LINE_PREFIX = re.compile(
    r"^\s*(?:[0-9]{3}(?:[ -]|$))?\s*(?:[245]\.[0-9]{1,3}\.[0-9]{1,3}(?:\s+|$))?"
)

_RETRY_AFTER = re.compile(
    r"(?:try\s+again|retry|resend|wait|again)\s+(?:in|after|for)?\s*(?:about\s+)?"
    r"([0-9]{1,9}(?:\.[0-9]+)?)\s*"
    r"(seconds?|secs?|minutes?|mins?|hours?|hrs?)\b",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"sec": 1.0, "min": 60.0, "hou": 3600.0, "hrs": 3600.0, "hr": 3600.0}
# A server asking for more than a week is not giving a useful hint.
MAX_RETRY_AFTER = 7 * 24 * 3600.0


def parse_enhanced(text: str | None) -> str | None:
    """Return the RFC 3463 enhanced status code in ``text`` (e.g. ``"5.7.139"``), else None.

    The code at the start of the reply (after an optional basic code) wins; failing
    that, the first one anywhere, as in a DSN's ``Diagnostic-Code: smtp; 550 5.1.1 …``.
    """
    if not text:
        return None
    for line in text.splitlines():
        match = _ENHANCED_AT_START.match(line)
        if match:
            return ".".join(match.groups())
    match = _ENHANCED_ANYWHERE.search(text)
    return ".".join(match.groups()) if match else None


def parse_code(text: str | None) -> int | None:
    """Return the three-digit reply code that ``text`` starts with, else None."""
    if not text:
        return None
    match = _CODE_AT_START.match(text)
    return int(match.group(1)) if match else None


def normalize_text(text: str | None) -> str:
    """Join a (multi-line) reply into one line without its per-line codes, for matching.

    ``"421-4.7.0 unusual rate of\\n421 4.7.0 unsolicited mail"`` becomes
    ``"unusual rate of unsolicited mail"``, so a phrase split across lines still matches.
    """
    if not text:
        return ""
    parts = (_LINE_PREFIX.sub("", line, count=1).strip() for line in text.splitlines())
    return " ".join(part for part in parts if part)


def parse_retry_after(text: str | None) -> float | None:
    """Return the wait in seconds a reply asks for ("try again in 5 minutes"), else None.

    A bare "try again later" carries no number and yields None; waits are capped
    at :data:`MAX_RETRY_AFTER`.
    """
    if not text:
        return None
    match = _RETRY_AFTER.search(text)
    if not match:
        return None
    amount = float(match.group(1))
    unit = match.group(2).lower()
    factor = _UNIT_SECONDS.get(unit[:3], _UNIT_SECONDS.get(unit[:2], 1.0))
    return min(amount * factor, MAX_RETRY_AFTER)


def enhanced_class(enhanced: str | None) -> int | None:
    """Return the class digit (2, 4 or 5) of an enhanced code, else None."""
    if not enhanced:
        return None
    head = enhanced.split(".", 1)[0]
    return int(head) if head in ("2", "4", "5") else None


def enhanced_subject(enhanced: str | None) -> int | None:
    """Return the subject number of an enhanced code (``5.7.139`` → 7), else None."""
    if not enhanced:
        return None
    parts = enhanced.split(".")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
