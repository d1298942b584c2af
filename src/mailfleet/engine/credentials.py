"""Turn a stored mailbox into what the transport needs: an endpoint and a login.

:class:`CredentialCache` opens a mailbox's sealed secret and builds the token
provider of its kind (``mailboxes.kinds.AuthKind``), kept while the stored secret
is unchanged so tokens are cached and concurrent senders share one refresh.
App-only providers are shared by every mailbox of the same app. Each mailbox's
provider is wrapped so that:

- a token for the wrong audience (Microsoft Graph) never reaches a server;
- a rotated token cache (or refresh token) is sealed and written back at once,
  with compare-and-swap so a newer ``mailbox connect`` is never overwritten;
- a refusal by the identity provider that needs a person (revoked grant, wrong
  secret, missing consent) marks the mailbox *disconnected* with the AADSTS code,
  the reason and the command that re-connects it.

The write-backs go through a :class:`CredentialStore`; :class:`DatabaseCredentialStore`
is the one the engine uses.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import google.auth.transport
import httpx
from sqlalchemy import update

from mailfleet.clock import Clock
from mailfleet.mailboxes.kinds import AuthKind
from mailfleet.providers.identity import disconnect_reason
from mailfleet.store import Database, Enrollment, EnrollmentStatus, Mailbox, MailboxStatus
from mailfleet.store import repository as repo
from mailfleet.transport.google_tokens import (
    GOOGLE_TOKEN_URI,
    GoogleServiceAccountTokens,
    GoogleUserTokens,
)
from mailfleet.transport.msal_tokens import (
    LOGIN_HOST,
    ClientCertificate,
    MsalAppTokens,
    MsalDelegatedTokens,
    MsalEnvironment,
    TokenCacheError,
)
from mailfleet.transport.oauth import (
    AccessToken,
    ClientCredentialsProvider,
    TokenError,
    TokenProvider,
    check_audience,
)
from mailfleet.transport.secrets import SecretBox, SecretError
from mailfleet.transport.smtp import SmtpCredentials, SmtpEndpoint

log = logging.getLogger(__name__)

APP_ONLY_SCOPES = {
    "microsoft365": "https://outlook.office365.com/.default",
    "google": "https://mail.google.com/",
}


class CredentialError(Exception):
    """A mailbox's stored login is missing or unreadable; the message names the mailbox."""


class CredentialStore(Protocol):
    """Where renewed secrets and disconnections are written."""

    async def replace_secret(self, mailbox_id: int, expected: bytes, new: bytes) -> bool:
        """Store ``new`` if the mailbox still holds ``expected``; whether it did."""
        ...

    async def mark_disconnected(self, mailbox_id: int, reason: str) -> None:
        """Mark the mailbox disconnected with ``reason`` (idempotent)."""
        ...


class DatabaseCredentialStore:
    """:class:`CredentialStore` on the database, one short transaction per write."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def replace_secret(self, mailbox_id: int, expected: bytes, new: bytes) -> bool:
        """Compare-and-swap the sealed secret."""
        async with self._db.session() as session:
            result = await session.execute(
                update(Mailbox)
                .where(Mailbox.id == mailbox_id, Mailbox.secret == expected)
                .values(secret=new)
            )
            return bool(getattr(result, "rowcount", 0) == 1)

    async def mark_disconnected(self, mailbox_id: int, reason: str) -> None:
        """Set ``disconnected`` with the reason and record a ``mailbox.disconnected`` event."""
        async with self._db.session() as session:
            mailbox = await session.get(Mailbox, mailbox_id)
            if mailbox is None or mailbox.status == MailboxStatus.DISCONNECTED:
                return
            mailbox.status = MailboxStatus.DISCONNECTED
            mailbox.status_reason = reason
            mailbox.paused_until = None
            # First steps queued for this mailbox may open their thread from another one.
            await session.execute(
                update(Enrollment)
                .where(
                    Enrollment.mailbox_id == mailbox.id,
                    Enrollment.next_step == 1,
                    Enrollment.status == EnrollmentStatus.ACTIVE,
                )
                .values(mailbox_id=None)
                .execution_options(synchronize_session=False)
            )
            repo.add_event(
                session,
                workspace_id=mailbox.workspace_id,
                at=self._clock.now(),
                kind="mailbox.disconnected",
                message=reason,
                mailbox_id=mailbox.id,
            )


@dataclass(frozen=True, slots=True)
class _Key:
    auth_kind: str
    token_endpoint: str | None
    client_id: str | None
    tenant: str | None
    secret: bytes | None


class _SealedSecret:
    """A mailbox's sealed secret as last read or written by this process."""

    def __init__(self, blob: bytes, value: dict[str, Any]) -> None:
        self.blob = blob
        self.value = value


class MailboxTokens:
    """One mailbox's token provider as the transport sees it: checked and disconnect-aware."""

    def __init__(
        self,
        inner: TokenProvider,
        *,
        mailbox_id: int,
        address: str,
        auth_kind: str,
        store: CredentialStore | None,
    ) -> None:
        self.inner = inner
        self.mailbox_id = mailbox_id
        self.address = address
        self.auth_kind = auth_kind
        self._store = store
        self.disconnected: str | None = None

    def __repr__(self) -> str:
        return f"MailboxTokens({self.address!r}, {self.auth_kind})"

    async def access_token(self, *, force_refresh: bool = False) -> AccessToken:
        """A fresh, audience-checked token; a refusal that needs a person disconnects."""
        try:
            token = await self.inner.access_token(force_refresh=force_refresh)
            check_audience(token)
        except TokenError as exc:
            refusal = exc.refusal
            if refusal is not None and refusal.disconnects:
                reason = disconnect_reason(self.address, self.auth_kind, refusal, str(exc))
                if self.disconnected is None and self._store is not None:
                    await self._store.mark_disconnected(self.mailbox_id, reason)
                self.disconnected = reason
            raise
        return token


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class CredentialCache:
    """One token provider per mailbox, kept so tokens are cached and shared."""

    def __init__(
        self,
        box: SecretBox,
        clock: Clock,
        http: httpx.AsyncClient | None = None,
        *,
        store: CredentialStore | None = None,
        msal_environment: MsalEnvironment | None = None,
        google_request: google.auth.transport.Request | None = None,
    ) -> None:
        self._box = box
        self._clock = clock
        self._http = http
        self._store = store
        self._msal = msal_environment
        self._google = google_request
        self._cache: dict[int, tuple[_Key, SmtpCredentials, _SealedSecret]] = {}
        self._shared: dict[str, TokenProvider] = {}

    def endpoint(self, mailbox: Mailbox) -> SmtpEndpoint:
        """The submission endpoint configured for ``mailbox``."""
        return SmtpEndpoint(
            host=mailbox.smtp_host,
            port=mailbox.smtp_port,
            security=mailbox.smtp_security,
            ca_file=mailbox.ca_file,
            helo_name=mailbox.address.rpartition("@")[2] or None,
        )

    def credentials(self, mailbox: Mailbox) -> SmtpCredentials:
        """The login of ``mailbox``; the same object while its stored secret is unchanged."""
        key = _Key(
            mailbox.auth_kind,
            mailbox.token_endpoint,
            mailbox.client_id,
            mailbox.tenant,
            mailbox.secret,
        )
        cached = self._cache.get(mailbox.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        if mailbox.secret is None:
            raise CredentialError(
                f"{mailbox.address} has no stored credentials; connect it with "
                f"`mailfleet mailbox connect {mailbox.address}`"
            )
        try:
            secret = self._box.open(mailbox.secret)
        except SecretError as exc:
            raise CredentialError(
                f"{mailbox.address}: {exc} (was MAILFLEET_SECRET_KEY or the key file replaced? "
                "keep old keys after the new one until `mailfleet keys rotate` has finished)"
            ) from exc
        sealed = _SealedSecret(mailbox.secret, secret)
        try:
            creds = self._build(mailbox, secret, sealed)
        except TokenCacheError as exc:
            raise CredentialError(
                f"{mailbox.address}: {exc}; re-connect with "
                f"`mailfleet mailbox connect {mailbox.address} --device-code`"
            ) from exc
        except TokenError as exc:
            raise CredentialError(str(exc)) from exc
        self._cache[mailbox.id] = (key, creds, sealed)
        return creds

    def _wrap(self, mailbox: Mailbox, inner: TokenProvider) -> SmtpCredentials:
        tokens = MailboxTokens(
            inner,
            mailbox_id=mailbox.id,
            address=mailbox.address,
            auth_kind=mailbox.auth_kind,
            store=self._store,
        )
        return SmtpCredentials(username=mailbox.address, tokens=tokens)

    def _shared_provider(self, fingerprint: str, build: Any) -> TokenProvider:
        provider = self._shared.get(fingerprint)
        if provider is None:
            provider = build()
            self._shared[fingerprint] = provider
        return provider

    def _build(
        self, mailbox: Mailbox, secret: dict[str, Any], sealed: _SealedSecret
    ) -> SmtpCredentials:
        kind = mailbox.auth_kind
        if kind == AuthKind.PASSWORD:
            return SmtpCredentials(
                username=str(secret.get("username") or mailbox.address),
                password=str(secret.get("password", "")),
            )
        if kind == AuthKind.OAUTH2_CLIENT:
            if not mailbox.token_endpoint or not mailbox.client_id:
                raise CredentialError(f"{mailbox.address} lacks a token endpoint or client id")
            url, client_id = mailbox.token_endpoint, mailbox.client_id
            client_secret = str(secret.get("client_secret", ""))
            scope = APP_ONLY_SCOPES.get(mailbox.provider, APP_ONLY_SCOPES["microsoft365"])
            inner = self._shared_provider(
                _fingerprint(kind, url, client_id, client_secret, scope),
                lambda: ClientCredentialsProvider(
                    token_url=url,
                    client_id=client_id,
                    client_secret=client_secret,
                    scope=scope,
                    clock=self._clock,
                    http=self._http,
                ),
            )
            return self._wrap(mailbox, inner)
        if kind in (AuthKind.M365_APP, AuthKind.M365_DELEGATED):
            if not mailbox.tenant or not mailbox.client_id:
                raise CredentialError(f"{mailbox.address} lacks a tenant or client id")
            env = self._msal_environment(mailbox)
            if kind == AuthKind.M365_APP:
                return self._wrap(mailbox, self._m365_app(mailbox, secret, env))
            return self._wrap(mailbox, self._m365_delegated(mailbox, secret, sealed, env))
        if kind == AuthKind.GOOGLE_OAUTH:
            if not mailbox.client_id or not secret.get("refresh_token"):
                raise CredentialError(f"{mailbox.address} lacks a client id or refresh token")
            inner = GoogleUserTokens(
                address=mailbox.address,
                client_id=mailbox.client_id,
                client_secret=str(secret.get("client_secret", "")),
                refresh_token=str(secret["refresh_token"]),
                clock=self._clock,
                token_uri=mailbox.token_endpoint or GOOGLE_TOKEN_URI,
                request=self._google,
                on_change=lambda update: self._write_back(
                    mailbox.id, mailbox.address, sealed, update
                ),
            )
            return self._wrap(mailbox, inner)
        if kind == AuthKind.GOOGLE_SERVICE_ACCOUNT:
            info = secret.get("service_account")
            if not isinstance(info, Mapping):
                raise CredentialError(f"{mailbox.address} lacks its service-account key")
            inner = GoogleServiceAccountTokens(
                address=mailbox.address,
                service_account_info=info,
                clock=self._clock,
                request=self._google,
            )
            return self._wrap(mailbox, inner)
        raise CredentialError(f"{mailbox.address}: unsupported auth kind {kind!r}")

    def _msal_environment(self, mailbox: Mailbox) -> MsalEnvironment:
        if self._msal is not None:
            return self._msal
        return MsalEnvironment(authority_host=mailbox.token_endpoint or LOGIN_HOST)

    def _m365_app(
        self, mailbox: Mailbox, secret: dict[str, Any], env: MsalEnvironment
    ) -> TokenProvider:
        assert mailbox.tenant is not None and mailbox.client_id is not None
        tenant, client_id = mailbox.tenant, mailbox.client_id
        credential: str | ClientCertificate
        if secret.get("private_key"):
            credential = ClientCertificate(
                str(secret["private_key"]),
                str(secret.get("thumbprint", "")),
                str(secret["public_certificate"]) if secret.get("public_certificate") else None,
            )
        elif secret.get("client_secret"):
            credential = str(secret["client_secret"])
        else:
            raise CredentialError(f"{mailbox.address} lacks the app's secret or certificate")
        fingerprint = _fingerprint(AuthKind.M365_APP, env.authority_host, tenant, client_id, secret)
        return self._shared_provider(
            fingerprint,
            lambda: MsalAppTokens(
                client_id=client_id,
                tenant=tenant,
                credential=credential,
                clock=self._clock,
                environment=env,
            ),
        )

    def _m365_delegated(
        self,
        mailbox: Mailbox,
        secret: dict[str, Any],
        sealed: _SealedSecret,
        env: MsalEnvironment,
    ) -> TokenProvider:
        assert mailbox.tenant is not None and mailbox.client_id is not None
        mailbox_id, address = mailbox.id, mailbox.address

        async def keep(state: str) -> None:
            await self._write_back(mailbox_id, address, sealed, {"token_cache": state})

        return MsalDelegatedTokens(
            address=address,
            client_id=mailbox.client_id,
            tenant=mailbox.tenant,
            token_cache=str(secret.get("token_cache") or "") or None,
            clock=self._clock,
            environment=env,
            on_cache_change=keep,
        )

    async def _write_back(
        self, mailbox_id: int, address: str, sealed: _SealedSecret, update: dict[str, Any]
    ) -> None:
        """Seal the renewed secret and store it unless someone re-connected meanwhile."""
        value = {**sealed.value, **update}
        blob = self._box.seal(value)
        if self._store is None:
            sealed.value = value  # no store: keep it for this process at least
            return
        if await self._store.replace_secret(mailbox_id, sealed.blob, blob):
            sealed.blob, sealed.value = blob, value
            cached = self._cache.get(mailbox_id)
            if cached is not None and cached[2] is sealed:
                old_key = cached[0]
                new_key = _Key(
                    old_key.auth_kind,
                    old_key.token_endpoint,
                    old_key.client_id,
                    old_key.tenant,
                    blob,
                )
                self._cache[mailbox_id] = (new_key, cached[1], sealed)
        else:
            log.info("%s: credentials changed meanwhile; renewed token cache not stored", address)
