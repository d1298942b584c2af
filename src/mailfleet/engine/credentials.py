"""Turn a stored mailbox into what the transport needs: an endpoint and a login."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from mailfleet.clock import Clock
from mailfleet.store import Mailbox
from mailfleet.transport.oauth import ClientCredentialsProvider
from mailfleet.transport.secrets import SecretBox, SecretError
from mailfleet.transport.smtp import SmtpCredentials, SmtpEndpoint

APP_ONLY_SCOPES = {
    "microsoft365": "https://outlook.office365.com/.default",
    "google": "https://mail.google.com/",
}


class CredentialError(Exception):
    """A mailbox's stored login is missing or unreadable."""


@dataclass(frozen=True, slots=True)
class _Key:
    auth_kind: str
    token_endpoint: str | None
    client_id: str | None
    secret: bytes | None


class CredentialCache:
    """One token provider per mailbox, kept so tokens are cached and shared."""

    def __init__(self, box: SecretBox, clock: Clock, http: httpx.AsyncClient | None = None) -> None:
        self._box = box
        self._clock = clock
        self._http = http
        self._cache: dict[int, tuple[_Key, SmtpCredentials]] = {}

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
        key = _Key(mailbox.auth_kind, mailbox.token_endpoint, mailbox.client_id, mailbox.secret)
        cached = self._cache.get(mailbox.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        if mailbox.secret is None:
            raise CredentialError(f"{mailbox.address} has no stored credentials")
        try:
            secret = self._box.open(mailbox.secret)
        except SecretError as exc:
            raise CredentialError(f"{mailbox.address}: {exc}") from exc
        if mailbox.auth_kind == "oauth2_client":
            if not mailbox.token_endpoint or not mailbox.client_id:
                raise CredentialError(f"{mailbox.address} lacks a token endpoint or client id")
            provider = ClientCredentialsProvider(
                token_url=mailbox.token_endpoint,
                client_id=mailbox.client_id,
                client_secret=str(secret.get("client_secret", "")),
                scope=APP_ONLY_SCOPES.get(mailbox.provider, APP_ONLY_SCOPES["microsoft365"]),
                clock=self._clock,
                http=self._http,
            )
            creds = SmtpCredentials(username=mailbox.address, tokens=provider)
        elif mailbox.auth_kind == "password":
            creds = SmtpCredentials(
                username=str(secret.get("username") or mailbox.address),
                password=str(secret.get("password", "")),
            )
        else:
            raise CredentialError(f"{mailbox.address}: unsupported auth kind {mailbox.auth_kind!r}")
        self._cache[mailbox.id] = (key, creds)
        return creds
