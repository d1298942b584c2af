"""Hard or soft: is the address itself dead, or did this one message fail?

PROVIDERS.md, "Hard vs soft bounce": *hard* means the address is dead (user
unknown, no such host or domain, mailbox disabled or moved) and must be
suppressed; everything else — mailbox full, blocked, spam, policy, too big,
expired, greylisting, system errors — is *soft*, even with a 5xx code. The SMTP
reply classifier and the inbound DSN reader share this one judgement.
"""

from __future__ import annotations

import enum
import re

from mailfleet.providers.reply_text import enhanced_class, parse_enhanced

# RFC 3463 details that mean the address is dead: bad mailbox (5.1.1), bad
# destination system (5.1.2), bad address syntax (5.1.3), moved without forwarding
# (5.1.6), recipient not found (Microsoft's 5.1.10), mailbox disabled (5.2.1).
HARD_ENHANCED = frozenset({"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1"})

_HARD_TEXT = re.compile(
    r"user\s+unknown|unknown\s+(?:user|recipient|mailbox)|no\s+such\s+"
    r"(?:user|mailbox|recipient|account|address|domain|host)"
    r"|(?:user|recipient|mailbox|address|account)\s+(?:was\s+)?not\s+found|recip(?:ient)?notfound"
    r"|does\s*n[o']t\s+exist|not\s+a\s+valid\s+(?:mailbox|recipient|user)"
    r"|does\s*n[o']t\s+have\s+an?\s+[\w.-]+\s+account"
    r"|invalid\s+(?:recipient|mailbox)|bad\s+destination\s+mailbox"
    r"|(?:account|mailbox)\s+(?:is\s+|has\s+been\s+)?(?:disabled|deactivated|deleted|removed)"
    r"|non-?existent\s+domain|domain\s+(?:not\s+found|does\s+not\s+exist)"
    r"|host\s+(?:not\s+found|unknown)"
    r"|nxdomain|unrouteable\s+address|no\s+mailbox\s+here",
    re.IGNORECASE,
)
# Words that say the failure is about policy, load or our side, not the address:
# they win over a "hard" code, because some servers misuse 5.1.1 for blocks.
_SOFT_TEXT = re.compile(
    r"spam|blocked|block\s*list|blacklist|reputation|policy|rate\s+limit|throttl"
    r"|quota|mailbox\s+(?:is\s+)?full|over\s+quota|insufficient\s+storage|try\s+again"
    r"|greylist|graylist|temporar|too\s+many|too\s+large|message\s+size|dmarc|\bspf\b|dkim"
    r"|sender\s+(?:address|domain|rejected|verify)",
    re.IGNORECASE,
)


class BounceKind(enum.StrEnum):
    """Whether a failed delivery means the address is dead."""

    HARD = "hard"  # suppress the address
    SOFT = "soft"  # count it against the mailbox's health; keep the address


def bounce_kind(enhanced: str | None, text: str, *, code: int | None = None) -> BounceKind:
    """Classify a delivery failure as a hard or soft bounce from its codes and text.

    ``enhanced`` is parsed from ``text`` when not given. Transient failures (4.x.x
    or a 4xx ``code``) are always soft; a dead-address code or phrase is hard
    unless the text speaks of spam, blocks, policy or limits.
    """
    text = text or ""
    if enhanced is None:
        enhanced = parse_enhanced(text)
    if code is not None and 400 <= code < 500:
        return BounceKind.SOFT
    cls = enhanced_class(enhanced)
    if cls in (2, 4):
        return BounceKind.SOFT
    dead = enhanced in HARD_ENHANCED or bool(_HARD_TEXT.search(text))
    if dead and not _SOFT_TEXT.search(text):
        return BounceKind.HARD
    return BounceKind.SOFT


def is_hard_bounce(enhanced: str | None, text: str, *, code: int | None = None) -> bool:
    """Return True when :func:`bounce_kind` says the address is dead."""
    return bounce_kind(enhanced, text, code=code) is BounceKind.HARD
