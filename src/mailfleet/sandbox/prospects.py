"""Simulated prospects: the people on the receiving end of a campaign.

This first version records what each prospect received; replies, bounces and
out-of-office answers are added on top of these records later.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from mailfleet.sandbox.directory import normalize_address
from mailfleet.sandbox.headers import summarize_headers


@dataclass(frozen=True, slots=True)
class ProspectDelivery:
    """One message as a prospect received it."""

    address: str
    sender: str
    message_id: str | None
    in_reply_to: str | None
    subject: str | None
    received_at: datetime


class ProspectSimulator:
    """Knows which domains are prospects' and remembers what was delivered to them."""

    def __init__(self) -> None:
        self._domains: set[str] = set()
        self._deliveries: list[ProspectDelivery] = []
        self._by_address: defaultdict[str, list[ProspectDelivery]] = defaultdict(list)

    def add_domain(self, domain: str) -> None:
        """Treat every address at ``domain`` as a simulated prospect."""
        self._domains.add(domain.strip().lower().rstrip("."))

    @property
    def domains(self) -> frozenset[str]:
        """The prospect domains."""
        return frozenset(self._domains)

    def is_prospect(self, address: str) -> bool:
        """Whether ``address`` belongs to a prospect domain."""
        _, _, domain = normalize_address(address).rpartition("@")
        return domain in self._domains

    def record(
        self, address: str, sender: str, raw: bytes, received_at: datetime
    ) -> ProspectDelivery:
        """Remember that ``address`` received ``raw`` from ``sender`` at ``received_at``."""
        headers = summarize_headers(raw)
        delivery = ProspectDelivery(
            address=normalize_address(address),
            sender=normalize_address(sender),
            message_id=headers.message_id,
            in_reply_to=headers.in_reply_to,
            subject=headers.subject,
            received_at=received_at,
        )
        self._deliveries.append(delivery)
        self._by_address[delivery.address].append(delivery)
        return delivery

    def received(self, address: str) -> list[ProspectDelivery]:
        """What ``address`` received, oldest first."""
        return list(self._by_address.get(normalize_address(address), []))

    def deliveries(self) -> list[ProspectDelivery]:
        """Every delivery to any prospect, oldest first."""
        return list(self._deliveries)

    def count(self) -> int:
        """How many deliveries to prospects there were (one per recipient)."""
        return len(self._deliveries)
