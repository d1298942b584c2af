"""The peer pool: which mailboxes a mailbox warms against, rotated day by day.

A mailbox never warms against itself, a mailbox on its own sending domain, or a
mailbox of its own Microsoft 365 / Google tenant: mail inside one domain or
tenant teaches a filter nothing about the outside world. Peers come from the
mailbox's workspace, and from other workspaces of the installation only when
both sides opted in to the shared pool. Each day's peers are a deterministic
rotation (a seed, the sender and the day): over a week a mailbox talks to many
peers, and consecutive picks alternate providers when the pool has several.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class Peer:
    """A mailbox as the pool sees it."""

    mailbox_id: int
    address: str
    workspace_id: int
    provider: str
    tenant: str | None = None
    shared_pool: bool = False  # opted in to warm against other workspaces' mailboxes

    @property
    def domain(self) -> str:
        """The sending domain (lower case)."""
        return self.address.rpartition("@")[2].strip().lower()


def _rank(*parts: object) -> bytes:
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()


def may_pair(sender: Peer, peer: Peer) -> bool:
    """Whether ``sender`` may warm against ``peer`` (never itself, its domain or its tenant)."""
    if sender.mailbox_id == peer.mailbox_id or sender.domain == peer.domain:
        return False
    if sender.tenant and peer.tenant and sender.tenant.lower() == peer.tenant.lower():
        return False
    if sender.workspace_id != peer.workspace_id:
        return sender.shared_pool and peer.shared_pool
    return True


def eligible_peers(sender: Peer, pool: Iterable[Peer]) -> list[Peer]:
    """Every mailbox of ``pool`` that ``sender`` may warm against, by mailbox id."""
    return sorted((p for p in pool if may_pair(sender, p)), key=lambda p: p.mailbox_id)


def peers_for_day(
    sender: Peer, pool: Sequence[Peer], day: date, count: int, *, seed: int = 0
) -> list[Peer]:
    """``count`` peers for ``sender`` on ``day`` (repeating only when the pool is smaller).

    Within each provider the order is a per-day shuffle; providers then take turns,
    starting with the one that differs from the sender's, so a Microsoft 365
    mailbox talks to Google and others as much as the pool allows.
    """
    if count < 0:
        raise ValueError("count cannot be negative")
    peers = eligible_peers(sender, pool)
    if not peers or count == 0:
        return []
    groups: dict[str, list[Peer]] = defaultdict(list)
    for peer in peers:
        groups[peer.provider].append(peer)
    for provider, members in groups.items():
        members.sort(key=lambda p: _rank(seed, sender.mailbox_id, day.isoformat(), p.mailbox_id))
        groups[provider] = members
    providers = sorted(
        groups, key=lambda name: (name == sender.provider, _rank(seed, day.isoformat(), name))
    )
    interleaved: list[Peer] = []
    depth = max(len(m) for m in groups.values())
    for index in range(depth):
        for provider in providers:
            members = groups[provider]
            if index < len(members):
                interleaved.append(members[index])
    return [interleaved[i % len(interleaved)] for i in range(count)]
