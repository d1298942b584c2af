"""Access tokens for XOAUTH2.

The transport asks a :class:`TokenProvider` for a fresh token; providers cache,
refresh ahead of expiry, and let one refresh run at a time per mailbox so
concurrent senders share it. This module holds the OAuth 2.0 client-credentials
grant (RFC 6749 §4.4), which is what Microsoft 365 app-only access and the
sandbox's token service speak.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from mailfleet.clock import Clock
from mailfleet.providers.identity import Refusal, explain_refusal

REFRESH_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token and when it stops working."""

    token: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"AccessToken(<hidden>, expires_at={self.expires_at.isoformat()})"


class TokenError(Exception):
    """No token: the identity provider refused (``error`` set) or could not be reached.

    ``reason`` carries the provider's words (``AADSTS…: …``), ``error`` the OAuth
    error code and ``codes`` the AADSTS numbers; none of them ever holds a secret.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str = "",
        status: int | None = None,
        error: str = "",
        codes: tuple[int, ...] = (),
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.error = error
        self.codes = codes

    @property
    def refusal(self) -> Refusal | None:
        """The identity provider's refusal, read; None when it never answered."""
        if not self.error and self.status is None:
            return None
        return explain_refusal(self.error, self.reason, status=self.status, codes=self.codes)

    @property
    def disconnects(self) -> bool:
        """Whether the mailbox's credentials no longer work until a person acts."""
        refusal = self.refusal
        return refusal is not None and refusal.disconnects


class WrongAudienceError(TokenError):
    """A token for another API (Microsoft Graph) that the mail servers would refuse."""


GRAPH_AUDIENCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT-shaped token (unverified), or None when it is opaque."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def token_audience(token: str) -> str | None:
    """The ``aud`` claim of a JWT access token, or None when the token is opaque."""
    audience = (jwt_claims(token) or {}).get("aud")
    return str(audience) if audience is not None else None


def is_graph_audience(audience: str | None) -> bool:
    """Whether an audience names Microsoft Graph, which SMTP and IMAP refuse."""
    return audience is not None and audience.startswith(GRAPH_AUDIENCES)


def check_audience(token: AccessToken) -> None:
    """Refuse a Microsoft Graph token before it reaches SMTP or IMAP (535 5.7.3 otherwise)."""
    audience = token_audience(token.token)
    if is_graph_audience(audience):
        raise WrongAudienceError(
            f"the token's audience is {audience} (Microsoft Graph); SMTP and IMAP need a token "
            "for https://outlook.office.com (delegated scopes https://outlook.office.com/"
            "SMTP.Send, IMAP.AccessAsUser.All) or https://outlook.office365.com/.default "
            "(app-only): fix the scopes and re-connect the mailbox",
            error="invalid_scope",
        )


def oauth_error_from_body(status: int, body: object, text: str, where: str) -> TokenError:
    """A :class:`TokenError` from a token endpoint's error answer (RFC 6749 §5.2)."""
    fields = body if isinstance(body, dict) else {}
    error = str(fields.get("error") or "")
    description = str(fields.get("error_description") or "")
    raw_codes = fields.get("error_codes")
    codes = (
        tuple(int(c) for c in raw_codes if isinstance(c, int))
        if isinstance(raw_codes, list)
        else ()
    )
    detail = description or error or text[:200]
    return TokenError(
        f"{where} refused ({status}): {detail}",
        reason=description or error,
        status=status,
        error=error or ("http_error" if status >= 400 else ""),
        codes=codes,
    )


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
            raise oauth_error_from_body(response.status_code, body, response.text, "token endpoint")
        lifetime = int(body.get("expires_in", 3600))
        return AccessToken(str(body["access_token"]), now + timedelta(seconds=lifetime))
