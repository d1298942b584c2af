"""Blocklist answers cached in a JSON file in the data folder, each with an expiry.

A file rather than a table: a blocklist's answer depends on the resolver that
asked (lists refuse public resolvers), so it belongs to the machine that looked
it up, not to the shared database; it is derived data that costs one query to
rebuild; and ``mailfleet dns check`` works with no database at all. Writes go to
a temporary file renamed over the old one, so a crash never leaves half a file;
an unreadable file is treated as empty and rewritten.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from mailfleet.deliverability.blocklists import Listing, ListingStatus

UNKNOWN_TTL = timedelta(minutes=15)  # a refused or timed-out lookup may work soon


class FileListingCache:
    """A :class:`~mailfleet.deliverability.blocklists.ListingCache` in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries = self._load()

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, dict)}

    def get(self, domain: str, zone: str, now: datetime) -> Listing | None:
        """The cached listing of ``domain`` on ``zone`` if it has not expired at ``now``."""
        entry = self._entries.get(f"{domain}|{zone}")
        if entry is None:
            return None
        try:
            expires = datetime.fromisoformat(entry["expires_at"])
            listing = Listing(
                domain,
                zone,
                ListingStatus(entry["status"]),
                entry["reason"],
                datetime.fromisoformat(entry["checked_at"]),
            )
        except (KeyError, ValueError, TypeError):
            return None
        return listing if now < expires else None

    def put(self, listings: Sequence[Listing], ttl: timedelta) -> None:
        """Remember ``listings``; unknown ones for at most :data:`UNKNOWN_TTL`."""
        for listing in listings:
            keep = min(ttl, UNKNOWN_TTL) if listing.status is ListingStatus.UNKNOWN else ttl
            self._entries[f"{listing.domain}|{listing.zone}"] = {
                "status": str(listing.status),
                "reason": listing.reason,
                "checked_at": listing.checked_at.isoformat(),
                "expires_at": (listing.checked_at + keep).isoformat(),
            }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".blocklists.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self._entries, handle, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
