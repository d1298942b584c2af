"""Caps across mailboxes: per recipient domain in a workspace, per sending domain, per tenant.

Per-mailbox limits live in :mod:`mailfleet.limits.admission`. The caps here are
shared budgets several mailboxes draw on, counted over a rolling 24 hours
(mailboxes of one domain or tenant may sit in different timezones, so no single
local day fits them):

- a workspace sends at most ``recipient_domain_per_workspace`` cold messages to one
  recipient domain (a company's gateway sees one sender, whichever mailbox sent);
  free-mail domains are exempt (see :mod:`mailfleet.limits.recipients`);
- a sending domain's mailboxes together send at most its ``daily_cap`` cold
  messages (unset: the sum of its mailboxes' caps is the only bound);
- a Microsoft 365 tenant sends to at most its tenant external recipient limit in a
  rolling 24 hours, every kind of send included (see :func:`tenant_recipient_limit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mailfleet.limits.admission import DEFAULT_RECIPIENT_DOMAIN_DAILY, RampPolicy
from mailfleet.limits.recipients import FREEMAIL_DOMAINS

DEFAULT_RECIPIENT_DOMAIN_PER_WORKSPACE = 25
"""Cold sends to one (company) recipient domain per workspace in a rolling 24 hours."""


@dataclass(frozen=True, slots=True)
class FleetPolicy:
    """The caps an installation sets for its fleet; ``None`` switches one off.

    ``recipient_domain_per_mailbox`` becomes each mailbox's
    :attr:`~mailfleet.limits.MailboxPolicy.recipient_domain_daily`, and ``ramp`` each
    mailbox's ramp and steady band: raising ``ramp.steady_max`` is the explicit way to
    let operators' daily caps above the practice band (15-25) count.
    """

    recipient_domain_per_mailbox: int | None = DEFAULT_RECIPIENT_DOMAIN_DAILY
    pace: bool = True  # spread each mailbox's cold sends through the window (MailboxPolicy.pace)
    recipient_domain_per_workspace: int | None = DEFAULT_RECIPIENT_DOMAIN_PER_WORKSPACE
    exempt_domains: frozenset[str] = FREEMAIL_DOMAINS
    tenant_recipients_per_day: int | None = None  # None: from the tenant's mailbox count
    ramp: RampPolicy = field(default_factory=RampPolicy)


@dataclass(frozen=True, slots=True)
class SharedCap:
    """A budget several mailboxes draw on (a sending domain's or a tenant's), rolling 24 h.

    Each planned send takes one from it. ``retry_at`` is when the oldest counted send
    leaves the window, the earliest instant a full budget frees.
    """

    key: str
    label: str  # "sending domain brand-mail.com", for reasons
    limit: int
    used: int
    retry_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class FleetState:
    """What the planner needs beyond single mailboxes: the policy, shared caps, counts."""

    policy: FleetPolicy = field(default_factory=FleetPolicy)
    caps: dict[str, SharedCap] = field(default_factory=dict)
    # (workspace id, recipient domain) -> cold sends in the last 24 hours
    recipient_domains: dict[tuple[int, str], int] = field(default_factory=dict)


def tenant_recipient_limit(mailboxes: int, *, trial: bool = False) -> int:
    """Microsoft 365's tenant external recipient limit for a rolling 24 hours.

    Trial tenants get 5,000; paid ones 500 × licences^0.7 + 9,500 (PROVIDERS.md). The
    licences are not known here: the tenant's mailboxes in mailfleet are a lower
    bound (each sending mailbox holds one), so the cap errs on the safe side.
    """
    if trial:
        return 5_000
    return int(500 * max(1, mailboxes) ** 0.7 + 9_500)
