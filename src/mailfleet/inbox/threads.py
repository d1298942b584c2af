"""Thread keys: how an inbound message is tied to a send and recognised when seen again.

A reply or a report names our message by id (``In-Reply-To``, ``References``, the
returned original's ``Message-ID``); when it does not, the sender's address and
the thread's subject, stripped of the prefixes mail programs add, still tell.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from mailfleet.inbound import Classification, thread_subject


def subject_key(subject: str | None) -> str:
    """The thread subject for comparison: prefixes stripped as the classifier does, casefolded."""
    return thread_subject(subject or "").casefold()


def message_id_key(value: str | None) -> str | None:
    """A Message-ID in the stored form ``<token@domain>``; None for an empty value."""
    if value is None:
        return None
    text = value.strip().strip("<>").strip()
    return f"<{text}>" if text else None


def candidate_ids(result: Classification) -> list[str]:
    """Our possible message ids, best first: the original, In-Reply-To, References newest first."""
    found: list[str] = []
    for value in (
        result.matched_message_id,
        result.original_message_id,
        result.in_reply_to,
        *reversed(result.references),
    ):
        key = message_id_key(value)
        if key is not None and key not in found:
            found.append(key)
    return found


def dedupe_key(message_id: str | None, raw: bytes) -> str:
    """What makes a message the same message within one mailbox: its id, else its bytes."""
    key = message_id_key(message_id)
    if key is not None:
        return key[:998]
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def addresses_of(values: Iterable[str | None]) -> list[str]:
    """Lower-cased, de-duplicated addresses, empty ones dropped."""
    seen: list[str] = []
    for value in values:
        address = (value or "").strip().lower()
        if address and address not in seen:
            seen.append(address)
    return seen
