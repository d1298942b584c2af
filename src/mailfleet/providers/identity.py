"""What an identity provider's refusal means, as data: AADSTS codes and OAuth 2.0 errors.

Microsoft Entra ID words every refusal as ``AADSTS<code>: <text>`` inside the
OAuth ``error_description``; Google answers with the bare OAuth ``error``
(``invalid_grant`` …). :func:`explain_refusal` turns either into a
:class:`Refusal` that says whether the mailbox is *disconnected* (a person must
re-connect it or fix the app registration) or the failure is transient, and
:func:`reconnect_command` names the command that re-connects a mailbox.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass


class RefusalAction(enum.StrEnum):
    """What has to happen after the identity provider refused to issue a token."""

    RECONNECT = "reconnect"  # the user's grant is gone: sign in again
    FIX_APP = "fix-app"  # the app registration, secret, consent or tenant is wrong
    RETRY = "retry"  # transient: try again later


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refusal, read: its AADSTS code (if any), what it means and what to do."""

    error: str
    code: int | None
    meaning: str
    action: RefusalAction
    remedy: str

    @property
    def disconnects(self) -> bool:
        """Whether the mailbox cannot get tokens until a person acts."""
        return self.action is not RefusalAction.RETRY

    @property
    def label(self) -> str:
        """``AADSTS70008`` or the OAuth error, for messages."""
        return f"AADSTS{self.code}" if self.code is not None else (self.error or "refused")


_SIGN_IN_AGAIN = "sign the mailbox in again"
_NEW_SECRET = "create a new client secret (or certificate) for the app and store it"

# code: (meaning, action, remedy)
AADSTS: dict[int, tuple[str, RefusalAction, str]] = {
    50173: (
        "the grant was revoked (password changed or sessions revoked)",
        RefusalAction.RECONNECT,
        _SIGN_IN_AGAIN,
    ),
    70008: (
        "the refresh token expired or was revoked",
        RefusalAction.RECONNECT,
        _SIGN_IN_AGAIN,
    ),
    700082: (
        "the refresh token expired after 90 days without use",
        RefusalAction.RECONNECT,
        _SIGN_IN_AGAIN,
    ),
    700084: ("the refresh token expired", RefusalAction.RECONNECT, _SIGN_IN_AGAIN),
    50076: (
        "multi-factor authentication is now required",
        RefusalAction.RECONNECT,
        _SIGN_IN_AGAIN + " and complete MFA",
    ),
    50079: (
        "the user must register for multi-factor authentication",
        RefusalAction.RECONNECT,
        _SIGN_IN_AGAIN + " and complete MFA registration",
    ),
    50158: (
        "an external security challenge was not satisfied",
        RefusalAction.RECONNECT,
        _SIGN_IN_AGAIN,
    ),
    65001: (
        "the user or an administrator has not consented to the app",
        RefusalAction.RECONNECT,
        "grant consent (admin consent for app-only) and sign in again",
    ),
    50126: ("invalid user name or password", RefusalAction.RECONNECT, _SIGN_IN_AGAIN),
    50053: (
        "the account is locked",
        RefusalAction.RECONNECT,
        "unlock the account in the admin center, then sign in again",
    ),
    50057: (
        "the user account is disabled",
        RefusalAction.FIX_APP,
        "enable the account in the admin center",
    ),
    53003: (
        "Conditional Access blocked the sign-in",
        RefusalAction.FIX_APP,
        "allow this app or location in the Conditional Access policy",
    ),
    7000215: ("the client secret is wrong", RefusalAction.FIX_APP, _NEW_SECRET),
    7000222: ("the client secret has expired", RefusalAction.FIX_APP, _NEW_SECRET),
    700027: (
        "the certificate assertion failed validation",
        RefusalAction.FIX_APP,
        "upload the certificate to the app registration, or store the right key/thumbprint",
    ),
    700016: (
        "no app with this client id in the tenant",
        RefusalAction.FIX_APP,
        "check the tenant and client (application) id, and that the app is consented there",
    ),
    90002: ("the tenant does not exist", RefusalAction.FIX_APP, "check the tenant id or domain"),
    900023: (
        "the tenant is neither a GUID nor a domain",
        RefusalAction.FIX_APP,
        "give the tenant as its GUID or a verified domain",
    ),
    70011: ("the scope is not valid", RefusalAction.FIX_APP, "use the documented scopes"),
    1002012: (
        "client-credentials scopes must end in /.default",
        RefusalAction.FIX_APP,
        "use https://outlook.office365.com/.default",
    ),
    500011: (
        "the resource is not known in the tenant",
        RefusalAction.FIX_APP,
        "grant the app admin consent for Office 365 Exchange Online",
    ),
    70000: ("the grant is not valid", RefusalAction.RECONNECT, _SIGN_IN_AGAIN),
    70020: (
        "the device code expired before the sign-in finished",
        RefusalAction.RECONNECT,
        "start the device-code sign-in again and finish it within 15 minutes",
    ),
    50196: ("too many sign-in attempts in a loop", RefusalAction.RETRY, "wait, then retry"),
}

# OAuth 2.0 ``error`` values (RFC 6749 §5.2, RFC 8628 §3.5) when no AADSTS code says more.
OAUTH_ERRORS: dict[str, tuple[str, RefusalAction, str]] = {
    "invalid_grant": (
        "the refresh token or authorization code is no longer valid",
        RefusalAction.RECONNECT,
        _SIGN_IN_AGAIN,
    ),
    "interaction_required": (
        "the user must sign in interactively",
        RefusalAction.RECONNECT,
        _SIGN_IN_AGAIN,
    ),
    "consent_required": ("consent is missing", RefusalAction.RECONNECT, "grant consent"),
    "login_required": ("the user must sign in", RefusalAction.RECONNECT, _SIGN_IN_AGAIN),
    "invalid_client": ("the client credentials were refused", RefusalAction.FIX_APP, _NEW_SECRET),
    "unauthorized_client": (
        "the app may not use this grant",
        RefusalAction.FIX_APP,
        "check the app registration (public client flows, API permissions)",
    ),
    "invalid_scope": ("the scope is not valid", RefusalAction.FIX_APP, "use documented scopes"),
    "invalid_request": ("the request was malformed", RefusalAction.FIX_APP, "check the settings"),
    "unsupported_grant_type": (
        "the server does not support this grant",
        RefusalAction.FIX_APP,
        "check the token endpoint",
    ),
    "access_denied": ("the user declined", RefusalAction.RECONNECT, _SIGN_IN_AGAIN),
    "expired_token": (
        "the device code expired before the sign-in finished",
        RefusalAction.RECONNECT,
        "start the device-code sign-in again and finish it within 15 minutes",
    ),
    "temporarily_unavailable": ("the service is busy", RefusalAction.RETRY, "retry later"),
    "server_error": ("the service failed", RefusalAction.RETRY, "retry later"),
}

_AADSTS = re.compile(r"AADSTS(\d{4,8})")


def aadsts_code(text: str) -> int | None:
    """The first ``AADSTS<code>`` in ``text``, as a number."""
    found = _AADSTS.search(text or "")
    return int(found.group(1)) if found else None


def explain_refusal(
    error: str, description: str = "", *, status: int | None = None, codes: tuple[int, ...] = ()
) -> Refusal:
    """Read a refusal from its OAuth ``error``, ``error_description``, HTTP status and codes."""
    code = codes[0] if codes else aadsts_code(description)
    if code is not None and code in AADSTS:
        meaning, action, remedy = AADSTS[code]
        return Refusal(error, code, meaning, action, remedy)
    if error in OAUTH_ERRORS:
        meaning, action, remedy = OAUTH_ERRORS[error]
        return Refusal(error, code, meaning, action, remedy)
    if status is not None and (status >= 500 or status == 429):
        return Refusal(error, code, "the identity provider is unavailable", RefusalAction.RETRY, "")
    if status is not None and 400 <= status < 500:
        return Refusal(
            error, code, "the identity provider refused", RefusalAction.FIX_APP, "check settings"
        )
    return Refusal(error, code, "no token was issued", RefusalAction.RETRY, "retry later")


# --- tenants -----------------------------------------------------------------------------

_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
MULTI_TENANT_ALIASES = frozenset({"common", "organizations", "consumers"})


def normalize_tenant(value: str, *, allow_aliases: bool = False) -> str:
    """A tenant id as Entra ID accepts it: a GUID or a domain, lower-cased.

    Raises :class:`ValueError` saying what is wrong. ``common``/``organizations``
    are accepted only with ``allow_aliases`` (delegated sign-in; never app-only).
    """
    text = (value or "").strip().lower()
    if not text:
        raise ValueError("the tenant is empty: give its GUID or a domain such as contoso.com")
    if text in MULTI_TENANT_ALIASES:
        if allow_aliases:
            return text
        raise ValueError(
            f"tenant {value!r} is a multi-tenant alias; app-only access needs the tenant's "
            "own GUID or domain"
        )
    try:
        return str(uuid.UUID(text))
    except ValueError:
        pass
    if _DOMAIN.match(text):
        return text
    raise ValueError(
        f"tenant {value!r} is neither a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) nor a "
        "domain (contoso.onmicrosoft.com)"
    )


# --- re-connecting -------------------------------------------------------------------------


def reconnect_command(address: str, auth_kind: str) -> str:
    """The command a person runs to re-connect ``address`` signed in with ``auth_kind``."""
    base = f"mailfleet mailbox connect {address}"
    commands = {
        "m365_delegated": f"{base} --device-code",
        "oauth2_delegated": f"{base} --device-code",
        "m365_app": f"{base} --tenant TENANT --client-id CLIENT_ID --client-secret-env VAR",
        "oauth2_client": f"{base} --token-url URL --client-id CLIENT_ID --client-secret-env VAR",
        "google_oauth": f"{base} --google --client-id CLIENT_ID --client-secret-env VAR "
        "--refresh-token-env VAR",
        "google_service_account": f"{base} --service-account KEY.json",
        "password": f"{base} --password-env VAR",
    }
    return commands.get(auth_kind, base)


def disconnect_reason(address: str, auth_kind: str, refusal: Refusal, detail: str) -> str:
    """The ``status_reason`` of a mailbox disconnected by ``refusal``."""
    remedy = f"; {refusal.remedy}" if refusal.remedy else ""
    return (
        f"{refusal.label}: {refusal.meaning} ({detail.strip()[:300]}){remedy}; "
        f"re-connect with `{reconnect_command(address, auth_kind)}`"
    )
