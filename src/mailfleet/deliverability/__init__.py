"""Deliverability policy: DNS checks, forwarding, blocklists, fleet inventory rules,
health scores and auto-pause decisions (:mod:`.health`).

Pure evaluation of answers handed in; :mod:`mailfleet.engine.dns_checks` does the
lookups (through :mod:`mailfleet.transport.dns`) and calls these rules.
"""

from mailfleet.deliverability.blocklists import (
    DEFAULT_BLOCKLISTS,
    Listing,
    ListingStatus,
    interpret,
    listing_finding,
)
from mailfleet.deliverability.dns_checks import evaluate_dns
from mailfleet.deliverability.findings import GATE_CHECKS, DomainReport, Finding, Severity
from mailfleet.deliverability.forwarding import evaluate_forwarding
from mailfleet.deliverability.inventory import (
    DomainRow,
    Inventory,
    InventoryPolicy,
    InventoryWarning,
    MailboxRow,
    evaluate_inventory,
)

__all__ = [
    "DEFAULT_BLOCKLISTS",
    "GATE_CHECKS",
    "DomainReport",
    "DomainRow",
    "Finding",
    "Inventory",
    "InventoryPolicy",
    "InventoryWarning",
    "Listing",
    "ListingStatus",
    "MailboxRow",
    "Severity",
    "evaluate_dns",
    "evaluate_forwarding",
    "evaluate_inventory",
    "interpret",
    "listing_finding",
]
