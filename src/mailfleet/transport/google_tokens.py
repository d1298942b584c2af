"""Google Workspace tokens through google-auth: a user's refresh token, or a service account.

- :class:`GoogleUserTokens`: the installed-app flow's refresh token (scope
  ``https://mail.google.com/``). Google refresh tokens die when the user changes
  the password or revokes access (``invalid_grant``): that disconnects the mailbox.
- :class:`GoogleServiceAccountTokens`: a service account with domain-wide
  delegation acts as each mailbox (``subject``) of the Workspace domain.

google-auth is synchronous, so refreshes run in a worker thread, one at a time per
provider. Tests hand in a ``google.auth.transport.Request`` that answers in process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import google.auth.exceptions
import google.auth.transport
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from mailfleet.clock import Clock
from mailfleet.transport.oauth import REFRESH_MARGIN, AccessToken, TokenError

GOOGLE_MAIL_SCOPE = "https://mail.google.com/"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"

StateSink = Callable[[dict[str, Any]], Awaitable[None]]


def _default_request() -> google.auth.transport.Request:
    import google.auth.transport.requests

    return google.auth.transport.requests.Request()


def _refresh_error(exc: google.auth.exceptions.GoogleAuthError, who: str) -> TokenError:
    """A :class:`TokenError` from google-auth's refusal (``invalid_grant: …``)."""
    data: Mapping[str, Any] = {}
    if len(exc.args) > 1 and isinstance(exc.args[1], Mapping):
        data = exc.args[1]
    elif exc.args and isinstance(exc.args[0], Mapping):
        data = exc.args[0]
    error = str(data.get("error") or "")
    description = str(data.get("error_description") or "")
    if not error and isinstance(exc, google.auth.exceptions.RefreshError) and exc.args:
        error = str(exc.args[0]).split(":", 1)[0].strip()
    transport = isinstance(exc, google.auth.exceptions.TransportError) or getattr(
        exc, "retryable", False
    )
    if transport:
        return TokenError(f"{who}: Google token endpoint unreachable or busy: {exc}")
    return TokenError(
        f"{who}: Google refused the token: {error}{': ' + description if description else ''}",
        reason=description or error,
        error=error or "invalid_grant",
        status=400,
    )


class _GoogleTokens:
    def __init__(self, clock: Clock, request: google.auth.transport.Request | None) -> None:
        self._clock = clock
        self._request = request
        self._cached: AccessToken | None = None
        self._lock = asyncio.Lock()

    def _refresh(self) -> tuple[str, datetime | None]:
        raise NotImplementedError

    async def _after_refresh(self) -> None:
        return None

    async def access_token(self, *, force_refresh: bool = False) -> AccessToken:
        """The cached token unless within the refresh margin of expiry; one refresh at a time."""
        async with self._lock:
            now = self._clock.now()
            cached = self._cached
            if not force_refresh and cached and cached.expires_at - REFRESH_MARGIN > now:
                return cached
            value, expiry = await asyncio.to_thread(self._refresh)
            now = self._clock.now()
            lifetime = (
                (expiry.replace(tzinfo=UTC) - datetime.now(UTC))
                if expiry is not None
                else timedelta(seconds=3599)
            )
            self._cached = AccessToken(value, now + max(lifetime, timedelta(seconds=60)))
            await self._after_refresh()
            return self._cached


class GoogleUserTokens(_GoogleTokens):
    """Access tokens from a Google user's refresh token (installed-app OAuth client)."""

    def __init__(
        self,
        *,
        address: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        clock: Clock,
        token_uri: str = GOOGLE_TOKEN_URI,
        request: google.auth.transport.Request | None = None,
        on_change: StateSink | None = None,
    ) -> None:
        super().__init__(clock, request)
        self.address = address
        self._client_id = client_id
        self._sink = on_change
        self._creds = user_credentials.Credentials(  # type: ignore[no-untyped-call]
            token=None,
            refresh_token=refresh_token,
            token_uri=token_uri,
            client_id=client_id,
            client_secret=client_secret,
            scopes=[GOOGLE_MAIL_SCOPE],
        )
        self._refresh_token = refresh_token

    def __repr__(self) -> str:
        return f"GoogleUserTokens(address={self.address!r}, client_id={self._client_id!r})"

    def _refresh(self) -> tuple[str, datetime | None]:
        try:
            self._creds.refresh(self._request or _default_request())  # type: ignore[no-untyped-call]
        except google.auth.exceptions.GoogleAuthError as exc:
            raise _refresh_error(exc, self.address) from None
        return str(self._creds.token), self._creds.expiry

    async def _after_refresh(self) -> None:
        current = self._creds.refresh_token
        if current and current != self._refresh_token and self._sink is not None:
            # Google rarely rotates, but when it does the new one must be kept.
            self._refresh_token = current
            await self._sink({"refresh_token": current})


class GoogleServiceAccountTokens(_GoogleTokens):
    """Access tokens for one mailbox through a service account with domain-wide delegation."""

    def __init__(
        self,
        *,
        address: str,
        service_account_info: Mapping[str, Any],
        clock: Clock,
        request: google.auth.transport.Request | None = None,
    ) -> None:
        super().__init__(clock, request)
        self.address = address
        try:
            self._creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                dict(service_account_info), scopes=[GOOGLE_MAIL_SCOPE], subject=address
            )
        except (ValueError, KeyError) as exc:
            raise TokenError(
                f"{address}: the service-account key is not usable ({type(exc).__name__}: "
                f"{str(exc)[:120]})",
                error="invalid_client",
                status=400,
            ) from None
        self._account = str(service_account_info.get("client_email", ""))

    def __repr__(self) -> str:
        return f"GoogleServiceAccountTokens(address={self.address!r}, account={self._account!r})"

    def _refresh(self) -> tuple[str, datetime | None]:
        try:
            self._creds.refresh(self._request or _default_request())
        except google.auth.exceptions.GoogleAuthError as exc:
            error = _refresh_error(exc, self.address)
            if error.error in ("unauthorized_client", "access_denied"):
                error = TokenError(
                    f"{error}; grant the service account's client id the scope "
                    f"{GOOGLE_MAIL_SCOPE} under domain-wide delegation in the Admin console",
                    reason=error.reason,
                    error=error.error,
                    status=400,
                )
            raise error from None
        return str(self._creds.token), self._creds.expiry


def validate_service_account(info: object) -> dict[str, Any]:
    """The key file's JSON if it is a service-account key, else :class:`ValueError`."""
    if not isinstance(info, dict):
        raise ValueError("a service-account key file holds one JSON object")
    if info.get("type") != "service_account":
        raise ValueError(f"the key's type is {info.get('type')!r}, not 'service_account'")
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if missing:
        raise ValueError(f"the service-account key lacks {', '.join(missing)}")
    return info
