"""Spam filtering in the sandbox: which share of whose mail lands in a mailbox's Junk folder.

Rules are keyed by recipient (or ``*``) and sender domain (or ``*``) and can be
changed at any (virtual) time; the most specific rule applies. Whether one
message goes to Junk is a pure function of its Message-ID, recipient and the
share, so a scenario replays the same way.
"""

from __future__ import annotations

import hashlib

from mailfleet.sandbox.directory import normalize_address
from mailfleet.sandbox.headers import summarize_headers

ANY = "*"


def _unit(*parts: str) -> float:
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class JunkRules:
    """Junk shares per (recipient, sender domain)."""

    def __init__(self) -> None:
        self._rules: dict[tuple[str, str], float] = {}

    def set(self, recipient: str, sender_domain: str, share: float) -> None:
        """Set the share (0..1) for ``recipient`` / ``sender_domain`` (``*`` for any)."""
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"junk share must be between 0 and 1, not {share!r}")
        who = ANY if recipient.strip() == ANY else normalize_address(recipient)
        domain = sender_domain.strip().lower().rstrip(".")
        if not domain:
            raise ValueError("sender_domain must be a domain or '*'")
        self._rules[(who, domain)] = share

    def share(self, recipient: str, sender: str) -> float:
        """The share of ``sender``'s mail to ``recipient`` that goes to Junk now."""
        who = normalize_address(recipient)
        domain = normalize_address(sender).rpartition("@")[2]
        for key in ((who, domain), (who, ANY), (ANY, domain), (ANY, ANY)):
            if key in self._rules:
                return self._rules[key]
        return 0.0

    def files_in_junk(self, recipient: str, sender: str, raw: bytes) -> bool:
        """Whether this message to ``recipient`` lands in Junk."""
        share = self.share(recipient, sender)
        if share <= 0.0:
            return False
        if share >= 1.0:
            return True
        key = summarize_headers(raw).message_id or hashlib.sha256(raw).hexdigest()
        return _unit(key, normalize_address(recipient)) < share
