"""Access tokens for XOAUTH2.

The transport asks a :class:`TokenProvider` for a fresh token; providers cache,
refresh ahead of expiry, and let one refresh run at a time per mailbox so
concurrent senders share it. This module holds the OAuth 2.0 client-credentials
grant (RFC 6749 §4.4), which is what Microsoft 365 app-only access and the
sandbox's token service speak.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import httpx

from mailfleet.clock import Clock

REFRESH_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token and when it stops working."""

    token: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"AccessToken(<hidden>, expires_at={self.expires_at.isoformat()})"


class TokenError(Exception):
    """The identity provider refused to issue a token; ``reason`` carries its words."""

    def __init__(self, message: str, *, reason: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class TokenProvider(Protocol):
    """Something that hands out access tokens for one mailbox."""

    async def access_token(self, *, force_refresh: bool = False) -> AccessToken:
        """A token valid for at least a few minutes; ``force_refresh`` skips the cache."""
        ...


class ClientCredentialsProvider:
    """Tokens from an OAuth 2.0 token endpoint with the client-credentials grant."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str,
        clock: Clock,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = token_url
        self._client_id = client_id
        self._secret = client_secret
        self._scope = scope
        self._clock = clock
        self._http = http
        self._cached: AccessToken | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"ClientCredentialsProvider(url={self._url!r}, client_id={self._client_id!r})"

    async def access_token(self, *, force_refresh: bool = False) -> AccessToken:
        """Return the cached token unless it is within the refresh margin of expiry."""
        async with self._lock:
            now = self._clock.now()
            cached = self._cached
            if not force_refresh and cached and cached.expires_at - REFRESH_MARGIN > now:
                return cached
            self._cached = await self._fetch(now)
            return self._cached

    async def _fetch(self, now: datetime) -> AccessToken:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._secret,
            "scope": self._scope,
        }
        try:
            if self._http is not None:
                response = await self._http.post(self._url, data=form)
            else:
                async with httpx.AsyncClient(timeout=30) as client:
                    response = await client.post(self._url, data=form)
        except httpx.HTTPError as exc:
            raise TokenError(f"token endpoint {self._url} unreachable: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            description = str(body.get("error_description") or body.get("error") or "")
            detail = description or response.text[:200]
            raise TokenError(
                f"token endpoint refused ({response.status_code}): {detail}",
                reason=description,
                status=response.status_code,
            )
        lifetime = int(body.get("expires_in", 3600))
        return AccessToken(str(body["access_token"]), now + timedelta(seconds=lifetime))
