"""What ``mailbox list`` says about a mailbox's token, read from its opened secret.

Pure: the caller opens the sealed secret (or says it could not) and passes the time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mailfleet.mailboxes.kinds import AuthKind


def token_status(kind: str, secret: dict[str, Any] | None, now: datetime) -> str:
    """``"valid until 14:05"``, ``"expired, refreshes on use"``, ``"on demand (app)"``, …"""
    if secret is None:
        return "unreadable (wrong key?)"
    if kind == AuthKind.PASSWORD:
        return "password"
    if kind in (AuthKind.M365_APP, AuthKind.OAUTH2_CLIENT, AuthKind.GOOGLE_SERVICE_ACCOUNT):
        return "on demand (app)"
    if kind == AuthKind.GOOGLE_OAUTH:
        return "refresh token stored" if secret.get("refresh_token") else "no refresh token"
    if kind == AuthKind.M365_DELEGATED:
        return _msal_status(str(secret.get("token_cache") or ""), now)
    return "-"


def _msal_status(serialized: str, now: datetime) -> str:
    try:
        cache = json.loads(serialized) if serialized else {}
    except ValueError:
        return "token cache corrupt"
    if not isinstance(cache, dict):
        return "token cache corrupt"
    has_refresh = bool(cache.get("RefreshToken"))
    expiries = []
    for entry in (cache.get("AccessToken") or {}).values():
        try:
            expiries.append(int(entry["expires_on"]))
        except (KeyError, TypeError, ValueError):
            continue
    if not expiries:
        return "signed in, no token yet" if has_refresh else "not signed in"
    expires = datetime.fromtimestamp(max(expiries), UTC)
    if expires > now:
        return f"valid until {expires.isoformat(timespec='minutes')}"
    return "expired, refreshes on use" if has_refresh else "expired, sign in again"
