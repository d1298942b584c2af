"""Tenants and mailboxes of the emulated provider, shared by the token service and SMTP."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailfleet.sandbox.behaviour import LayeredBehaviour, MailboxBehaviour
from mailfleet.sandbox.limits import (
    DEFAULT_HOSTNAME,
    MICROSOFT_365_LIMITS,
    LimitMeter,
    SubmissionLimits,
)


def normalize_address(address: str) -> str:
    """Return the form addresses are compared and stored under (trimmed, lower-cased)."""
    return address.strip().lower()


@dataclass(slots=True)
class SandboxMailbox:
    """A mailbox of the emulated tenant; ``password`` enables basic auth (AUTH LOGIN).

    ``behaviour`` is its fault (healthy by default); ``meter`` enforces Microsoft's
    submission limits and is asked after the behaviour, so a fault never lifts them.
    """

    address: str
    tenant: str
    password: str | None = None
    behaviour: MailboxBehaviour = field(default_factory=MailboxBehaviour)
    meter: LimitMeter = field(default_factory=LimitMeter)

    def hooks(self) -> MailboxBehaviour:
        """What the submission server asks at each step: the behaviour, then the limits."""
        return LayeredBehaviour(self.behaviour, self.meter)


class Directory:
    """Which tenants exist and which mailboxes belong to them."""

    def __init__(
        self, limits: SubmissionLimits = MICROSOFT_365_LIMITS, hostname: str = DEFAULT_HOSTNAME
    ) -> None:
        self._tenants: set[str] = set()
        self._mailboxes: dict[str, SandboxMailbox] = {}
        self.limits = limits
        """The submission limits new mailboxes get unless told otherwise."""
        self.hostname = hostname

    def add_tenant(self, tenant: str) -> None:
        """Create ``tenant``; adding it again does nothing."""
        if not tenant or "/" in tenant:
            raise ValueError(f"invalid tenant id {tenant!r}")
        self._tenants.add(tenant)

    def has_tenant(self, tenant: str) -> bool:
        """Whether ``tenant`` exists."""
        return tenant in self._tenants

    @property
    def tenants(self) -> frozenset[str]:
        """All tenant ids."""
        return frozenset(self._tenants)

    def add_mailbox(
        self,
        address: str,
        tenant: str,
        password: str | None = None,
        behaviour: MailboxBehaviour | None = None,
        limits: SubmissionLimits | None = None,
    ) -> SandboxMailbox:
        """Create a mailbox in an existing tenant; an address can exist only once.

        ``limits`` default to the directory's (Microsoft 365's unless lifted).
        """
        if tenant not in self._tenants:
            raise KeyError(f"unknown tenant {tenant!r}; add it with add_tenant first")
        key = normalize_address(address)
        if "@" not in key:
            raise ValueError(f"not an email address: {address!r}")
        if key in self._mailboxes:
            raise ValueError(f"mailbox {key} already exists")
        mailbox = SandboxMailbox(
            address=key,
            tenant=tenant,
            password=password,
            behaviour=behaviour if behaviour is not None else MailboxBehaviour(),
            meter=LimitMeter(limits if limits is not None else self.limits, self.hostname),
        )
        self._mailboxes[key] = mailbox
        return mailbox

    def mailbox(self, address: str) -> SandboxMailbox | None:
        """The mailbox at ``address`` (any case), or None."""
        return self._mailboxes.get(normalize_address(address))

    def mailboxes(self, tenant: str | None = None) -> list[SandboxMailbox]:
        """All mailboxes, or those of one tenant, in creation order."""
        return [m for m in self._mailboxes.values() if tenant is None or m.tenant == tenant]
