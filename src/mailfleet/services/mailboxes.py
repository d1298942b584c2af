"""Mailboxes: change a registered mailbox's settings without losing its history.

:func:`update` applies a :class:`MailboxChanges` (``None``: leave as it is) after
checking the whole result: the submission endpoint against its provider (Microsoft
365 on 465 is refused, plain text only on loopback), security modes, ports, the
timezone, the CA file, and limits that may only lower the provider's. Nothing is
written unless everything holds; each change is listed in a ``mailbox.changed``
event, and the mailbox's revision moves so every running process re-reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailfleet.providers import get_preset
from mailfleet.providers.validation import ConfigWarning, ProviderConfigError, validate_endpoint
from mailfleet.services.errors import ServiceError
from mailfleet.store import Database
from mailfleet.store import commands as store_commands
from mailfleet.store import repository as repo

SECURITY = ("tls", "starttls", "plain")
CLEAR = ""
"""A host given as the empty string removes it (``--imap-host ''``: read over POP3)."""


@dataclass(frozen=True, slots=True)
class MailboxChanges:
    """New values for a mailbox; ``None`` keeps the current one."""

    display_name: str | None = None
    timezone: str | None = None
    ca_file: str | None = None  # "" drops it
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: str | None = None
    imap_host: str | None = None  # "" drops IMAP
    imap_port: int | None = None
    imap_security: str | None = None
    pop3_host: str | None = None  # "" drops POP3
    pop3_port: int | None = None
    pop3_security: str | None = None
    daily_cap: int | None = None  # 0 drops the mailbox's own cap
    min_gap_seconds: int | None = None  # 0 drops it (the default gap applies)
    max_per_minute: int | None = None  # 0 drops it
    tags: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class MailboxUpdated:
    """What changed (field, before, after) and the endpoint's warnings."""

    address: str
    changed: tuple[tuple[str, Any, Any], ...]
    warnings: tuple[str, ...]


def _check(name: str, value: Any) -> Any:
    """``value`` as stored, or :class:`ServiceError` naming the setting and why."""
    if value == CLEAR and name in ("ca_file", "imap_host", "pop3_host"):
        return None
    if name == "timezone":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ServiceError(
                f"timezone {value!r} is not an IANA zone (e.g. Europe/Berlin)"
            ) from None
    elif name == "ca_file":
        path = Path(value).expanduser()
        if not path.is_file():
            raise ServiceError(f"ca_file {value}: no such file")
        return str(path.resolve())
    elif name.endswith("_port") and not 0 < value < 65536:
        raise ServiceError(f"{name} {value} is not a TCP port (1–65535)")
    elif name.endswith("_security") and value not in SECURITY:
        raise ServiceError(f"{name} {value!r} is not one of {', '.join(SECURITY)}")
    elif name in ("daily_cap", "min_gap_seconds", "max_per_minute"):
        if value < 0:
            raise ServiceError(f"{name} {value} cannot be negative")
        return value or None
    elif name == "tags":
        return sorted({t.strip() for t in value if t.strip()})
    elif name.endswith("_host"):
        value = value.strip()
        if not value or any(c.isspace() for c in value):
            raise ServiceError(f"{name} {value!r} is not a host name")
    return value


async def update(
    db: Database, address: str, changes: MailboxChanges, *, workspace_slug: str | None, at: datetime
) -> MailboxUpdated:
    """Apply ``changes`` to one mailbox, all or nothing."""
    wanted = {f.name: getattr(changes, f.name) for f in fields(changes)}
    wanted = {k: _check(k, v) for k, v in wanted.items() if v is not None}
    if not wanted:
        raise ServiceError("nothing to change: give at least one setting")
    async with db.session() as session:
        try:
            mailbox = await store_commands.find_mailbox(session, address, workspace_slug)
        except LookupError as exc:
            raise ServiceError(str(exc)) from None
        after = {k: getattr(mailbox, k) for k in wanted} | wanted
        warnings = _endpoint(mailbox, after)
        preset = get_preset(mailbox.provider if mailbox.provider != "sandbox" else "generic")
        for name, ceiling, unit in (
            ("daily_cap", preset.limits.recipients_per_day, "recipients a day"),
            ("max_per_minute", preset.limits.messages_per_minute, "messages a minute"),
        ):
            value = wanted.get(name)
            if value is not None and ceiling is not None and value > ceiling:
                raise ServiceError(
                    f"{name} {value} is above {preset.title}'s {ceiling} {unit}: "
                    "a mailbox's limits may only lower its provider's"
                )
        changed = tuple(
            (k, getattr(mailbox, k), v) for k, v in wanted.items() if getattr(mailbox, k) != v
        )
        for name, _, value in changed:
            setattr(mailbox, name, value)
        if changed:
            repo.add_event(
                session,
                workspace_id=mailbox.workspace_id,
                at=at,
                kind="mailbox.changed",
                message="; ".join(f"{k}: {old!r} → {new!r}" for k, old, new in changed),
                mailbox_id=mailbox.id,
            )
        return MailboxUpdated(mailbox.address, changed, tuple(str(w) for w in warnings))


def _endpoint(mailbox: Any, after: dict[str, Any]) -> list[ConfigWarning]:
    """The submission endpoint as it would be, checked against the provider."""
    smtp = {
        k: after.get(k, getattr(mailbox, k)) for k in ("smtp_host", "smtp_port", "smtp_security")
    }
    try:
        return validate_endpoint(
            "generic" if mailbox.provider == "sandbox" else mailbox.provider,
            auth_kind=mailbox.auth_kind,
            **smtp,
        )
    except ProviderConfigError as exc:
        raise ServiceError(str(exc)) from None
