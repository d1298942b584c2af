"""Microsoft 365 tokens through MSAL: delegated (device code, browser) and app-only.

- :class:`MsalDelegatedTokens` refreshes a signed-in user's token from a
  ``SerializableTokenCache`` that belongs to one mailbox; whenever MSAL changes
  the cache (refresh tokens rotate on use) the new state is handed to an async
  ``on_cache_change`` callback, which seals and stores it.
- :class:`MsalAppTokens` is the "organization connect": one admin-consented app
  (secret or certificate) gets ``https://outlook.office365.com/.default`` tokens
  with ``acquire_token_for_client`` for every mailbox of a tenant.
- :class:`DeviceCodeSignIn` and :class:`BrowserSignIn` sign a mailbox in and
  return its first token cache.

MSAL is synchronous (it speaks HTTP through ``requests``), so each call runs in a
worker thread; one lock per provider lets one refresh run at a time. MSAL only
accepts ``https`` authorities: tests point :class:`MsalEnvironment` at
``https://login.test`` with ``instance_discovery=False`` and an in-process
``http_client``. Expiry is judged on the injected clock, and a token near its end
is renewed with ``force_refresh`` so MSAL's own wall-clock cache never hides it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import webbrowser
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msal

from mailfleet.clock import Clock
from mailfleet.providers.identity import aadsts_code
from mailfleet.transport.loopback import LoopbackRedirect, RedirectError
from mailfleet.transport.oauth import REFRESH_MARGIN, AccessToken, TokenError, check_audience

log = logging.getLogger(__name__)

LOGIN_HOST = "https://login.microsoftonline.com"
OUTLOOK = "https://outlook.office.com"
DELEGATED_SCOPES = (
    f"{OUTLOOK}/SMTP.Send",
    f"{OUTLOOK}/IMAP.AccessAsUser.All",
    f"{OUTLOOK}/POP.AccessAsUser.All",
)
"""Delegated mail scopes; MSAL adds ``offline_access`` (a reserved scope) by itself."""
APP_ONLY_SCOPE = "https://outlook.office365.com/.default"

CacheSink = Callable[[str], Awaitable[None]]


class TokenCacheError(ValueError):
    """A stored MSAL token cache that cannot be read (corrupt or not a cache)."""


@dataclass(frozen=True, slots=True)
class MsalEnvironment:
    """Where MSAL signs in: the authority host, and for tests an in-process HTTP client."""

    authority_host: str = LOGIN_HOST
    http_client: Any = field(default=None, compare=False)
    instance_discovery: bool | None = None

    def authority(self, tenant: str) -> str:
        """``https://login.microsoftonline.com/<tenant>``."""
        return f"{self.authority_host.rstrip('/')}/{tenant}"

    def options(self) -> dict[str, Any]:
        """Keyword arguments every MSAL application of this environment gets."""
        options: dict[str, Any] = {}
        if self.http_client is not None:
            options["http_client"] = self.http_client
        if self.instance_discovery is not None:
            options["instance_discovery"] = self.instance_discovery
        return options


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """An app's certificate credential: PEM private key and SHA-1 thumbprint (hex)."""

    private_key: str = field(repr=False)
    thumbprint: str
    public_certificate: str | None = field(default=None, repr=False)

    def as_msal(self) -> dict[str, str]:
        """The ``client_credential`` mapping MSAL expects."""
        credential = {"private_key": self.private_key, "thumbprint": self.thumbprint}
        if self.public_certificate:
            credential["public_certificate"] = self.public_certificate
        return credential


def load_token_cache(serialized: str | None) -> msal.SerializableTokenCache:
    """An MSAL cache from its stored form; :class:`TokenCacheError` when it is not one."""
    cache = msal.SerializableTokenCache()
    if not serialized:
        return cache
    try:
        state = json.loads(serialized)
    except json.JSONDecodeError as exc:
        raise TokenCacheError(f"the stored token cache is not JSON ({exc.msg})") from None
    if not isinstance(state, dict) or not all(isinstance(v, dict) for v in state.values()):
        raise TokenCacheError("the stored token cache does not have MSAL's shape")
    cache.deserialize(serialized)
    return cache


def refusal_from_result(result: Mapping[str, Any], where: str) -> TokenError:
    """A :class:`TokenError` from an MSAL error result (``error``, ``error_description``)."""
    error = str(result.get("error") or "unknown_error")
    description = str(result.get("error_description") or "")
    raw = result.get("error_codes")
    codes = tuple(c for c in raw if isinstance(c, int)) if isinstance(raw, list) else ()
    first_line = description.splitlines()[0] if description else error
    return TokenError(f"{where}: {first_line}", reason=description, error=error, codes=codes)


def _msal_failure(exc: Exception, where: str) -> TokenError:
    """A :class:`TokenError` for an exception MSAL raised (discovery, network)."""
    context = str(exc.__context__ or "")
    text = f"{exc} {context}"
    code = aadsts_code(text)
    if isinstance(exc, ValueError) and ("tenant" in text.lower() or code is not None):
        return TokenError(
            f"{where}: the authority refused the tenant: {str(exc).splitlines()[0][:300]}",
            reason=f"AADSTS{code}" if code else str(exc)[:300],
            error="invalid_request",
            codes=(code,) if code else (90002,),
        )
    return TokenError(f"{where}: {type(exc).__name__}: {str(exc)[:300]}")


def _access_token(result: Mapping[str, Any], now: datetime) -> AccessToken:
    lifetime = int(result.get("expires_in") or 3599)
    token = AccessToken(str(result["access_token"]), now + timedelta(seconds=lifetime))
    check_audience(token)
    return token


class _CachedTokens:
    """Lock, clock-based reuse and the worker thread shared by the MSAL providers."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._cached: AccessToken | None = None
        self._lock = asyncio.Lock()

    async def access_token(self, *, force_refresh: bool = False) -> AccessToken:
        """The cached token unless it is within the refresh margin; one refresh at a time."""
        async with self._lock:
            now = self._clock.now()
            cached = self._cached
            if not force_refresh and cached and cached.expires_at - REFRESH_MARGIN > now:
                return cached
            # A token we already hold is due: make MSAL renew it, whatever its own clock says.
            result = await asyncio.to_thread(self._acquire, force_refresh or cached is not None)
            self._cached = _access_token(result, self._clock.now())
            await self._after_acquire()
            return self._cached

    def _acquire(self, force: bool) -> Mapping[str, Any]:
        raise NotImplementedError

    async def _after_acquire(self) -> None:
        return None


class MsalDelegatedTokens(_CachedTokens):
    """A signed-in mailbox's tokens from its own MSAL token cache."""

    def __init__(
        self,
        *,
        address: str,
        client_id: str,
        tenant: str,
        token_cache: str | None,
        clock: Clock,
        environment: MsalEnvironment | None = None,
        on_cache_change: CacheSink | None = None,
        scopes: Sequence[str] = DELEGATED_SCOPES,
    ) -> None:
        super().__init__(clock)
        self.address = address
        self._client_id = client_id
        self._tenant = tenant
        self._env = environment or MsalEnvironment()
        self._cache = load_token_cache(token_cache)
        self._sink = on_cache_change
        self._scopes = list(scopes)
        self._app: msal.PublicClientApplication | None = None

    def __repr__(self) -> str:
        return f"MsalDelegatedTokens(address={self.address!r}, client_id={self._client_id!r})"

    def _application(self) -> msal.PublicClientApplication:
        if self._app is None:
            try:
                self._app = msal.PublicClientApplication(
                    self._client_id,
                    authority=self._env.authority(self._tenant),
                    token_cache=self._cache,
                    **self._env.options(),
                )
            except Exception as exc:  # MSAL raises ValueError and requests' errors
                raise _msal_failure(exc, f"{self.address}: sign-in authority") from None
        return self._app

    def _acquire(self, force: bool) -> Mapping[str, Any]:
        app = self._application()
        accounts = app.get_accounts(username=self.address) or app.get_accounts()
        if not accounts:
            raise TokenError(
                f"{self.address}: the token cache holds no signed-in account",
                reason="no account in the token cache",
                error="login_required",
            )
        try:
            result: Mapping[str, Any] | None = app.acquire_token_silent_with_error(
                self._scopes, account=accounts[0], force_refresh=force
            )
        except Exception as exc:
            raise _msal_failure(exc, f"{self.address}: token refresh") from None
        if result is None:
            raise TokenError(
                f"{self.address}: the token cache holds no refresh token",
                reason="no refresh token",
                error="login_required",
            )
        if "access_token" not in result:
            raise refusal_from_result(result, f"{self.address}: token refresh refused")
        return result

    async def access_token(self, *, force_refresh: bool = False) -> AccessToken:
        """A fresh token; a rotated refresh token is persisted even when the call fails."""
        try:
            return await super().access_token(force_refresh=force_refresh)
        finally:
            if self._cache.has_state_changed:
                await self._persist()

    async def _persist(self) -> None:
        state = self._cache.serialize()
        if self._sink is None:
            return
        try:
            await self._sink(state)
        except Exception as exc:  # a store hiccup must not lose the token we hold
            log.warning("%s: could not store the renewed token cache: %s", self.address, exc)


class MsalAppTokens(_CachedTokens):
    """App-only tokens (client credentials) for every mailbox of one tenant."""

    def __init__(
        self,
        *,
        client_id: str,
        tenant: str,
        credential: str | ClientCertificate,
        clock: Clock,
        environment: MsalEnvironment | None = None,
    ) -> None:
        super().__init__(clock)
        self._client_id = client_id
        self._tenant = tenant
        self._credential = credential
        self._env = environment or MsalEnvironment()
        self._cache = msal.TokenCache()
        self._app: msal.ConfidentialClientApplication | None = None

    def __repr__(self) -> str:
        return f"MsalAppTokens(tenant={self._tenant!r}, client_id={self._client_id!r})"

    def _application(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            credential: Any = self._credential
            if isinstance(credential, ClientCertificate):
                credential = credential.as_msal()
            try:
                self._app = msal.ConfidentialClientApplication(
                    self._client_id,
                    client_credential=credential,
                    authority=self._env.authority(self._tenant),
                    token_cache=self._cache,
                    **self._env.options(),
                )
            except Exception as exc:
                raise _msal_failure(exc, f"tenant {self._tenant}: sign-in authority") from None
        return self._app

    def _acquire(self, force: bool) -> Mapping[str, Any]:
        app = self._application()
        if force:
            # acquire_token_for_client has no force_refresh: forget the cached token instead.
            for entry in list(self._cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                self._cache.remove_at(entry)
        try:
            result: Mapping[str, Any] | None = app.acquire_token_for_client([APP_ONLY_SCOPE])
        except Exception as exc:
            raise _msal_failure(exc, f"tenant {self._tenant}: app-only token") from None
        if not result or "access_token" not in result:
            raise refusal_from_result(result or {}, f"tenant {self._tenant}: app-only token")
        return result


# --- signing a mailbox in -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The outcome of a sign-in: who signed in and the token cache to store (sealed)."""

    account: str
    token_cache: str = field(repr=False)
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DevicePrompt:
    """What to show the person: where to go and which code to enter."""

    message: str
    user_code: str
    verification_uri: str
    expires_at: datetime


def _signed_in(
    address: str, result: Mapping[str, Any], cache: msal.SerializableTokenCache, now: datetime
) -> SignedIn:
    claims = result.get("id_token_claims") or {}
    account = str(claims.get("preferred_username") or claims.get("upn") or "")
    if account and account.lower() != address.lower():
        raise TokenError(
            f"{address}: the sign-in was completed as {account}, not {address}; sign in again "
            f"with the account of {address}",
            reason="wrong account",
            error="wrong_account",
        )
    token = _access_token(result, now)
    return SignedIn(account or address, cache.serialize(), token.expires_at)


class _SignIn:
    def __init__(
        self,
        *,
        address: str,
        client_id: str,
        tenant: str,
        clock: Clock,
        environment: MsalEnvironment | None = None,
        scopes: Sequence[str] = DELEGATED_SCOPES,
    ) -> None:
        self.address = address
        self._client_id = client_id
        self._tenant = tenant
        self._clock = clock
        self._env = environment or MsalEnvironment()
        self._scopes = list(scopes)
        self._cache = msal.SerializableTokenCache()
        self._app: msal.PublicClientApplication | None = None

    def _application(self) -> msal.PublicClientApplication:
        if self._app is None:
            try:
                self._app = msal.PublicClientApplication(
                    self._client_id,
                    authority=self._env.authority(self._tenant),
                    token_cache=self._cache,
                    **self._env.options(),
                )
            except Exception as exc:
                raise _msal_failure(exc, f"{self.address}: sign-in authority") from None
        return self._app


class DeviceCodeSignIn(_SignIn):
    """The device-code flow: show a code, wait while the person signs in elsewhere."""

    _flow: dict[str, Any] | None = None

    async def start(self) -> DevicePrompt:
        """Ask the authority for a device code."""

        def initiate() -> dict[str, Any]:
            try:
                return dict(self._application().initiate_device_flow(scopes=self._scopes))
            except TokenError:
                raise
            except Exception as exc:
                raise _msal_failure(exc, f"{self.address}: device code") from None

        flow = await asyncio.to_thread(initiate)
        if "user_code" not in flow:
            raise refusal_from_result(flow, f"{self.address}: device code refused")
        self._flow = flow
        expires = self._clock.now() + timedelta(seconds=int(flow.get("expires_in", 900)))
        return DevicePrompt(
            message=str(flow.get("message") or ""),
            user_code=str(flow["user_code"]),
            verification_uri=str(flow.get("verification_uri") or ""),
            expires_at=expires,
        )

    async def finish(self) -> SignedIn:
        """Poll until the person signed in, the code expired or the authority refused."""
        flow = self._flow
        if flow is None:
            raise RuntimeError("start() the device flow first")

        def poll() -> Mapping[str, Any]:
            try:
                answer: Mapping[str, Any] = self._application().acquire_token_by_device_flow(flow)
                return answer
            except Exception as exc:
                raise _msal_failure(exc, f"{self.address}: device sign-in") from None

        try:
            result = await asyncio.to_thread(poll)
        except asyncio.CancelledError:
            flow["expires_at"] = 0  # ends MSAL's polling loop in its thread
            raise
        if "access_token" not in result:
            raise refusal_from_result(result, f"{self.address}: device sign-in failed")
        return _signed_in(self.address, result, self._cache, self._clock.now())


class BrowserSignIn(_SignIn):
    """The authorization-code flow with PKCE and a loopback redirect on 127.0.0.1."""

    async def run(
        self,
        *,
        open_browser: Callable[[str], object] = webbrowser.open,
        wait_seconds: float = 300.0,
        port: int = 0,
    ) -> SignedIn:
        """Open the sign-in page, wait for the redirect, redeem the code."""
        async with LoopbackRedirect(port=port) as redirect:
            app = await asyncio.to_thread(self._application)
            flow = await asyncio.to_thread(
                app.initiate_auth_code_flow,
                self._scopes,
                redirect_uri=redirect.uri,
                login_hint=self.address,
                response_mode="form_post",
            )
            open_browser(str(flow["auth_uri"]))
            try:
                params = await redirect.wait(wait_seconds)
            except RedirectError as exc:
                raise TokenError(f"{self.address}: {exc}", error="access_denied") from None

        def redeem() -> Mapping[str, Any]:
            try:
                answer: Mapping[str, Any] = app.acquire_token_by_auth_code_flow(flow, params)
                return answer
            except ValueError as exc:  # state mismatch: not our redirect
                raise TokenError(
                    f"{self.address}: the redirect did not match this sign-in ({exc})",
                    error="invalid_request",
                ) from None
            except Exception as exc:
                raise _msal_failure(exc, f"{self.address}: code redemption") from None

        result = await asyncio.to_thread(redeem)
        if "access_token" not in result:
            raise refusal_from_result(result, f"{self.address}: browser sign-in failed")
        return _signed_in(self.address, result, self._cache, self._clock.now())
