"""Per-mailbox counters and admission, and the caps mailboxes share: what may still be sent, when.

Pure code: usage counts and the current time are passed in.
"""

from mailfleet.limits.admission import (
    DEFAULT_RECIPIENT_DOMAIN_DAILY,
    DEFAULT_WARMUP_RATIO,
    Admission,
    MailboxPolicy,
    MailboxUsage,
    RampPolicy,
    admit,
    cold_cap_for_day,
    floor_gap,
    gap_after,
    recipient_domain_room,
    stable_fraction,
    warmup_shortfall,
)
from mailfleet.limits.fleet import (
    DEFAULT_RECIPIENT_DOMAIN_PER_WORKSPACE,
    FleetPolicy,
    FleetState,
    SharedCap,
    tenant_recipient_limit,
)
from mailfleet.limits.pacing import allowance_grows_at, paced_allowance, paced_at
from mailfleet.limits.recipients import (
    FREEMAIL_DOMAINS,
    company_domain,
    is_freemail,
    recipient_domain,
)

__all__ = [
    "DEFAULT_RECIPIENT_DOMAIN_DAILY",
    "DEFAULT_RECIPIENT_DOMAIN_PER_WORKSPACE",
    "DEFAULT_WARMUP_RATIO",
    "FREEMAIL_DOMAINS",
    "Admission",
    "FleetPolicy",
    "FleetState",
    "MailboxPolicy",
    "MailboxUsage",
    "RampPolicy",
    "SharedCap",
    "admit",
    "allowance_grows_at",
    "cold_cap_for_day",
    "company_domain",
    "floor_gap",
    "gap_after",
    "is_freemail",
    "paced_allowance",
    "paced_at",
    "recipient_domain",
    "recipient_domain_room",
    "stable_fraction",
    "tenant_recipient_limit",
    "warmup_shortfall",
]
