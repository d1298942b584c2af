"""Fleet inventory rules: reputation isolation, inboxes per domain, mailbox age (pure).

Cold mail goes out from dedicated domains with a few inboxes each, never from
the business's own domain or tenant, and inboxes are refreshed after 12–18
months (PROVIDERS.md, cold-outreach practice). Everything is passed in: the
rows, the workspace's policy and today's date.
"""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from mailfleet.deliverability.findings import Severity


@dataclass(frozen=True, slots=True)
class InventoryPolicy:
    """A workspace's isolation settings and the thresholds (defaults from practice)."""

    primary_domain: str | None = None
    primary_tenant: str | None = None
    max_inboxes_per_domain: int = 3
    refresh_due_months: int = 12
    refresh_overdue_months: int = 18


@dataclass(frozen=True, slots=True)
class DomainRow:
    """A sending domain as stored."""

    name: str
    provider: str
    tenant: str | None = None


@dataclass(frozen=True, slots=True)
class MailboxRow:
    """A mailbox as stored; ``started`` is when it began sending (its age counts from it)."""

    address: str
    domain: str
    provider: str
    tenant: str | None
    started: date
    status: str = "active"
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class InventoryWarning:
    """One rule broken: ``subject`` is the domain or mailbox it is about."""

    rule: str  # inboxes-per-domain, primary-domain, primary-tenant, refresh-due, refresh-overdue
    subject: str
    severity: Severity
    message: str


@dataclass(frozen=True, slots=True)
class MailboxLine:
    """A mailbox in the inventory, with its age."""

    row: MailboxRow
    age_days: int
    age_months: int


@dataclass(frozen=True, slots=True)
class DomainLine:
    """A domain in the inventory with its mailboxes."""

    row: DomainRow
    mailboxes: tuple[MailboxLine, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Inventory:
    """The workspace's fleet and the warnings about it."""

    domains: tuple[DomainLine, ...]
    warnings: tuple[InventoryWarning, ...]


def add_months(start: date, months: int) -> date:
    """``start`` plus ``months`` calendar months (the 31st becomes the month's last day)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def months_between(start: date, today: date) -> int:
    """Whole calendar months from ``start`` to ``today`` (0 when ``today`` is earlier)."""
    months = (today.year - start.year) * 12 + today.month - start.month
    if months > 0 and add_months(start, months) > today:
        months -= 1
    return max(months, 0)


def _same_tenant(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return a.lower().removesuffix(".onmicrosoft.com") == b.lower().removesuffix(".onmicrosoft.com")


def _is_primary_domain(domain: str, primary: str | None) -> bool:
    if not primary:
        return False
    domain, primary = domain.lower().rstrip("."), primary.lower().rstrip(".")
    return domain == primary or domain.endswith("." + primary)


def age_warning(row: MailboxRow, policy: InventoryPolicy, today: date) -> InventoryWarning | None:
    """Refresh due at 12 months, overdue at 18 (policy thresholds); ``None`` before."""
    overdue = add_months(row.started, policy.refresh_overdue_months)
    due = add_months(row.started, policy.refresh_due_months)
    months = months_between(row.started, today)
    if today >= overdue:
        return InventoryWarning(
            "refresh-overdue",
            row.address,
            Severity.ERROR,
            f"{row.address} is {months} months old (since {row.started}): refresh was due on "
            f"{due}, overdue since {overdue}; replace it with a new inbox",
        )
    if today >= due:
        return InventoryWarning(
            "refresh-due",
            row.address,
            Severity.WARNING,
            f"{row.address} is {months} months old (since {row.started}): refresh due, "
            f"overdue on {overdue}",
        )
    return None


def evaluate_inventory(
    domains: Sequence[DomainRow],
    mailboxes: Sequence[MailboxRow],
    policy: InventoryPolicy,
    today: date,
) -> Inventory:
    """Group the fleet by domain and apply every rule."""
    warnings: list[InventoryWarning] = []
    per_domain = Counter(m.domain.lower() for m in mailboxes)
    known = {d.name.lower() for d in domains}
    rows = list(domains) + [
        DomainRow(name, next(m.provider for m in mailboxes if m.domain.lower() == name))
        for name in sorted(set(per_domain) - known)
    ]
    lines = []
    for domain in sorted(rows, key=lambda d: d.name.lower()):
        name = domain.name.lower()
        boxes = tuple(
            MailboxLine(m, max((today - m.started).days, 0), months_between(m.started, today))
            for m in sorted(mailboxes, key=lambda m: m.address)
            if m.domain.lower() == name
        )
        lines.append(DomainLine(domain, boxes))
        if per_domain[name] > policy.max_inboxes_per_domain:
            warnings.append(
                InventoryWarning(
                    "inboxes-per-domain",
                    name,
                    Severity.WARNING,
                    f"{name} carries {per_domain[name]} inboxes (more than "
                    f"{policy.max_inboxes_per_domain}): move some to another domain",
                )
            )
        if _is_primary_domain(name, policy.primary_domain):
            warnings.append(
                InventoryWarning(
                    "primary-domain",
                    name,
                    Severity.ERROR,
                    f"{name} is the business's primary domain ({policy.primary_domain}): "
                    "cold mail from it puts the company's own mail at risk",
                )
            )
        if _same_tenant(domain.tenant, policy.primary_tenant):
            warnings.append(
                InventoryWarning(
                    "primary-tenant",
                    name,
                    Severity.ERROR,
                    f"{name} lives in the primary tenant {policy.primary_tenant}: "
                    "move it to a separate tenant",
                )
            )
    for mailbox in sorted(mailboxes, key=lambda m: m.address):
        if _same_tenant(mailbox.tenant, policy.primary_tenant):
            warnings.append(
                InventoryWarning(
                    "primary-tenant",
                    mailbox.address,
                    Severity.ERROR,
                    f"{mailbox.address} lives in the primary tenant {policy.primary_tenant}: "
                    "cold mail from it puts the company's own mail at risk",
                )
            )
        aged = age_warning(mailbox, policy, today)
        if aged is not None:
            warnings.append(aged)
    return Inventory(tuple(lines), tuple(warnings))
