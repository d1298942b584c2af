"""Tenants and mailboxes of the emulated provider, shared by the token service and SMTP."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailfleet.sandbox.behaviour import MailboxBehaviour


def normalize_address(address: str) -> str:
    """Return the form addresses are compared and stored under (trimmed, lower-cased)."""
    return address.strip().lower()


@dataclass(slots=True)
class SandboxMailbox:
    """A mailbox of the emulated tenant; ``password`` enables basic auth (AUTH LOGIN)."""

    address: str
    tenant: str
    password: str | None = None
    behaviour: MailboxBehaviour = field(default_factory=MailboxBehaviour)


class Directory:
    """Which tenants exist and which mailboxes belong to them."""

    def __init__(self) -> None:
        self._tenants: set[str] = set()
        self._mailboxes: dict[str, SandboxMailbox] = {}

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
    ) -> SandboxMailbox:
        """Create a mailbox in an existing tenant; an address can exist only once."""
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
        )
        self._mailboxes[key] = mailbox
        return mailbox

    def mailbox(self, address: str) -> SandboxMailbox | None:
        """The mailbox at ``address`` (any case), or None."""
        return self._mailboxes.get(normalize_address(address))

    def mailboxes(self, tenant: str | None = None) -> list[SandboxMailbox]:
        """All mailboxes, or those of one tenant, in creation order."""
        return [m for m in self._mailboxes.values() if tenant is None or m.tenant == tenant]
