"""Per-mailbox counters and admission: what a mailbox may still send, and when.

Pure code: usage counts and the current time are passed in.
"""

from mailfleet.limits.admission import (
    Admission,
    MailboxPolicy,
    MailboxUsage,
    RampPolicy,
    admit,
    cold_cap_for_day,
    gap_after,
)

__all__ = [
    "Admission",
    "MailboxPolicy",
    "MailboxUsage",
    "RampPolicy",
    "admit",
    "cold_cap_for_day",
    "gap_after",
]
