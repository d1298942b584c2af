"""How a mailbox signs in: the credential kinds and what each keeps sealed.

``Mailbox.auth_kind`` holds one of :class:`AuthKind`; ``Mailbox.secret`` holds a
Fernet blob of a JSON object whose fields depend on the kind (``SECRET_FIELDS``).
Non-secret settings live in columns: ``tenant`` and ``client_id`` for the OAuth
kinds, ``token_endpoint`` for the token URL (``oauth2_client``, Google) or the
sign-in authority host (Microsoft 365; empty means login.microsoftonline.com).
"""

from __future__ import annotations

import enum


class AuthKind(enum.StrEnum):
    """Credential kinds behind the one ``TokenProvider`` interface (or a password)."""

    PASSWORD = "password"  # generic hosts, Google app passwords; M365 with a warning
    OAUTH2_CLIENT = "oauth2_client"  # plain OAuth client credentials (sandbox, generic)
    M365_DELEGATED = "m365_delegated"  # MSAL public client, per-mailbox token cache
    M365_APP = "m365_app"  # MSAL confidential client, one app per tenant
    GOOGLE_OAUTH = "google_oauth"  # installed-app refresh token
    GOOGLE_SERVICE_ACCOUNT = "google_service_account"  # domain-wide delegation


SECRET_FIELDS: dict[AuthKind, tuple[str, ...]] = {
    AuthKind.PASSWORD: ("password", "username"),
    AuthKind.OAUTH2_CLIENT: ("client_secret",),
    AuthKind.M365_DELEGATED: ("token_cache", "account"),
    AuthKind.M365_APP: ("client_secret", "private_key", "thumbprint", "public_certificate"),
    AuthKind.GOOGLE_OAUTH: ("refresh_token", "client_secret"),
    AuthKind.GOOGLE_SERVICE_ACCOUNT: ("service_account",),
}
"""Fields a kind's sealed JSON may hold (all of them secret, never shown)."""


def is_oauth(kind: str) -> bool:
    """Whether ``kind`` logs in with XOAUTH2 rather than a password."""
    return kind != AuthKind.PASSWORD
