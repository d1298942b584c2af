"""Why a delivery failed: a :class:`BounceReason` from a status code and the server's words.

The words win over the code, because servers reuse codes (5.1.1 for a block,
5.7.1 for everything); the code decides when the words say nothing known. Rules
are tried in order, specific causes before generic ones: "blocked because it
looks like spam" is spam, "rejected: user unknown" is user_unknown.
"""

from __future__ import annotations

import re

from mailfleet.inbound.result import BounceReason
from mailfleet.inbound.wording import find_word, lowered

_RULES: tuple[tuple[BounceReason, re.Pattern[str]], ...] = tuple(
    (reason, lowered(pattern))
    for reason, pattern in (
        (
            BounceReason.MAILBOX_FULL,
            r"quota|mailbox\s+(?:is\s+)?full|mail\s*box\s+full|inbox\s+(?:is\s+)?full"
            r"|insufficient\s+(?:system\s+)?storage|out\s+of\s+storage|storage\s+(?:space|limit)"
            r"|mailfolder\s+is\s+over|exceeded\s+(?:the\s+)?storage|full\s+mailbox",
        ),
        (
            BounceReason.MESSAGE_TOO_LARGE,
            r"too\s+(?:large|big)|size\s+(?:limit\s+)?exceed|exceeds?\s+(?:the\s+)?(?:maximum\s+)?"
            r"(?:message\s+)?size|message\s+size|message\s+length\s+exceeds",
        ),
        (
            BounceReason.SPAM,
            r"spam(?!haus|cop)|junk|\buce\b|unsolicited|virus|malware|phish|content\s+(?:filter|rejected)"
            r"|rejected\s+(?:due\s+to|because\s+of)\s+content|suspicious|bulk\s+mail",
        ),
        (
            BounceReason.POLICY,
            r"\bdmarc\b|\bspf\b|\bdkim\b|unauthenticated|not\s+authenticated|authentication"
            r"|sender\s+(?:address\s+)?(?:is\s+)?not\s+(?:authorized|allowed)",
        ),
        (
            BounceReason.BLOCKED,
            r"block\s*list|blacklist|deny\s*list|blocked|\brbl\b|\bdnsbl\b|spamhaus|spamcop|barracuda"
            r"|reputation|banned|listed\s+(?:at|on|in|by)|poor\s+sender|\bs3150\b|5\.7\.606",
        ),
        (BounceReason.GREYLISTED, r"gr[ae]ylist"),
        (
            BounceReason.RATE_LIMITED,
            r"rate\s*limit|throttl|too\s+many|unexpected\s+volume|\btss?0\d\b"
            r"|exceeded\s+(?:the\s+)?(?:rate|sending|connection)|deferred\s+due\s+to",
        ),
        (
            BounceReason.EXPIRED,
            r"expired|retry\s+time(?:out)?\s+(?:exceeded|reached)|gave\s+up|giving\s+up\s+on\s+(?!\d)"
            r"|could\s+not\s+be\s+delivered\s+within|time\s+limit\s+(?:exceeded|reached)"
            r"|too\s+long\s+in\s+(?:the\s+)?queue|maximum\s+(?:queue\s+)?time",
        ),
        (
            BounceReason.HOST_UNKNOWN,
            r"host\s+(?:or\s+domain\s+name\s+)?(?:not\s+found|unknown)|unknown\s+host"
            r"|domain\s+(?:name\s+)?(?:not\s+found|does\s*n[o']t\s+exist|unknown)|nxdomain"
            r"|no\s+such\s+(?:domain|host)|non-?existent\s+domain|unrouteable|no\s+mx\b"
            r"|couldn'?t\s+find\s+any\s+host|name\s+service\s+error|no\s+valid\s+(?:mx|hosts)"
            r"|dns\s+(?:lookup\s+)?fail",
        ),
        (
            BounceReason.MAILBOX_DISABLED,
            r"(?:account|mailbox|user|address)\s+(?:is\s+|has\s+been\s+)?(?:disabled|deactivated"
            r"|inactive|suspended|locked|closed|deleted|removed)|no\s+longer\s+(?:active"
            r"|available|in\s+use|valid)|\b(?:is|has\s+been|was)\s+(?:disabled|deactivated|inactive"
            r"|suspended)|has\s+moved|inactive\s+(?:account|mailbox|user)",
        ),
        (
            BounceReason.USER_UNKNOWN,
            r"user\s+unknown|unknown\s+(?:user|recipient|mailbox|local\s+part|address)"
            r"|no\s+such\s+(?:user|mailbox|recipient|account|address|person)"
            r"|(?:user|recipient|mailbox|address|account)\s+(?:was\s+|is\s+)?not\s+found"
            r"|recip(?:ient)?notfound|does\s*n[o']t\s+(?:exist|have\s+an?\s+\S+\s+account)"
            r"|not\s+a\s+valid\s+(?:mailbox|recipient|user)|invalid\s+(?:recipient|mailbox|address)"
            r"|bad\s+destination\s+mailbox|does\s+not\s+like\s+recipient|no\s+mailbox\s+here"
            r"|not\s+listed\s+in|unknown\s+or\s+illegal\s+alias|address\s+rejected:\s*user",
        ),
        (
            BounceReason.POLICY,
            r"policy|relay(?:ing)?\s+(?:denied|not\s+permitted|access\s+denied)|not\s+permitted"
            r"|access\s+denied|not\s+allowed|prohibited|refused\s+by\s+(?:the\s+)?recipient",
        ),
        (
            BounceReason.ROUTING,
            r"connection\s+(?:refused|timed?\s*out|reset|lost)|timed?\s*out|no\s+route"
            r"|network\s+(?:is\s+)?unreachable|mail\s+loop|loops?\s+back|routing\s+loop"
            r"|unable\s+to\s+connect|could\s+not\s+connect|no\s+answer",
        ),
        (
            BounceReason.SYSTEM,
            r"temporar|system\s+(?:problem|error|failure)|server\s+(?:error|busy)|internal\s+error"
            r"|try\s+again\s+later|service\s+(?:not\s+)?(?:available|unavailable)|local\s+error"
            r"|resources?\s+(?:temporarily\s+)?unavailable|disk\s+full",
        ),
    )
)

# RFC 3463 subject.detail → reason, when the words say nothing known.
_BY_DETAIL: dict[str, BounceReason] = {
    "1.1": BounceReason.USER_UNKNOWN,
    "1.3": BounceReason.USER_UNKNOWN,
    "1.10": BounceReason.USER_UNKNOWN,
    "1.2": BounceReason.HOST_UNKNOWN,
    "1.6": BounceReason.MAILBOX_DISABLED,
    "2.1": BounceReason.MAILBOX_DISABLED,
    "2.2": BounceReason.MAILBOX_FULL,
    "3.1": BounceReason.SYSTEM,
    "2.3": BounceReason.MESSAGE_TOO_LARGE,
    "3.4": BounceReason.MESSAGE_TOO_LARGE,
    "4.7": BounceReason.EXPIRED,
    "4.5": BounceReason.RATE_LIMITED,
    "7.26": BounceReason.POLICY,
    "7.606": BounceReason.BLOCKED,
    "7.708": BounceReason.BLOCKED,
    "7.520": BounceReason.SPAM,
}
_BY_SUBJECT: dict[str, BounceReason] = {
    "3": BounceReason.SYSTEM,
    "4": BounceReason.ROUTING,
    "6": BounceReason.SPAM,
    "7": BounceReason.POLICY,
}


def bounce_reason(status: str | None, diagnostic: str) -> BounceReason:
    """The cause of a failed or delayed delivery from its enhanced code and text."""
    if diagnostic:
        low = diagnostic.lower()
        for reason, pattern in _RULES:
            if find_word(pattern, low) is not None:
                return reason
    if status:
        _, _, rest = status.partition(".")
        found = _BY_DETAIL.get(rest)
        if found is not None:
            return found
        found = _BY_SUBJECT.get(rest.partition(".")[0])
        if found is not None:
            return found
    return BounceReason.UNKNOWN
