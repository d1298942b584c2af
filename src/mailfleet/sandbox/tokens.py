"""The sandbox's OAuth token service: Azure AD's client-credentials flow, in memory.

Tokens look like Microsoft's (three base64url parts with ``aud``, ``tid``, ``exp``,
``roles`` or ``scp`` claims, so a client can read the audience before connecting)
but are validated by lookup, never by signature: only tokens this service issued
are known. Lifetimes are measured on the injected clock.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from mailfleet.clock import Clock
from mailfleet.sandbox.directory import Directory, normalize_address

DEFAULT_LIFETIME = 3599
"""Seconds an access token lives; Azure AD answers ``expires_in: 3599``."""

OUTLOOK_OFFICE365 = "https://outlook.office365.com"
OUTLOOK_OFFICE = "https://outlook.office.com"
GRAPH = "https://graph.microsoft.com"
EXCHANGE_AUDIENCES = frozenset({OUTLOOK_OFFICE365, OUTLOOK_OFFICE})
_KNOWN_RESOURCES = frozenset({OUTLOOK_OFFICE365, OUTLOOK_OFFICE, GRAPH})

MailProtocol = Literal["SMTP", "IMAP", "POP"]
ALL_PROTOCOLS: frozenset[MailProtocol] = frozenset({"SMTP", "IMAP", "POP"})
# What an app-only token must carry in ``roles``, and a delegated one in ``scp``.
APP_ROLES: dict[MailProtocol, str] = {
    "SMTP": "SMTP.SendAsApp",
    "IMAP": "IMAP.AccessAsApp",
    "POP": "POP.AccessAsApp",
}
DELEGATED_SCOPES: dict[MailProtocol, str] = {
    "SMTP": "SMTP.Send",
    "IMAP": "IMAP.AccessAsUser.All",
    "POP": "POP.AccessAsUser.All",
}
SANDBOX_PUBLIC_CLIENT = "00000000-0000-0000-0000-5a4db0c11e47"


class TokenStatus(StrEnum):
    """Why a token was accepted or refused."""

    VALID = "valid"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    WRONG_USER = "wrong_user"
    WRONG_AUDIENCE = "wrong_audience"
    MISSING_PERMISSION = "missing_permission"


@dataclass(frozen=True, slots=True)
class OAuthApp:
    """An app registration with admin consent; ``mailboxes`` None means every mailbox."""

    tenant: str
    client_id: str
    client_secret: str
    mailboxes: frozenset[str] | None
    protocols: frozenset[MailProtocol]


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An issued token; ``user`` is set for delegated tokens, None for app-only ones."""

    value: str
    tenant: str
    client_id: str
    audience: str
    issued_at: datetime
    expires_at: datetime
    user: str | None
    scopes: frozenset[str]
    roles: frozenset[str]

    def expires_in(self, now: datetime) -> int:
        """Whole seconds left at ``now`` (never negative)."""
        return max(0, int((self.expires_at - now).total_seconds()))


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """The verdict on one token for one user and protocol."""

    status: TokenStatus
    token: AccessToken | None = None

    @property
    def valid(self) -> bool:
        """Whether the token grants the access asked for."""
        return self.status is TokenStatus.VALID


@dataclass(frozen=True, slots=True)
class Introspection:
    """RFC 7662's answer about one token; ``subject`` is the mailbox it was checked for."""

    active: bool
    token: AccessToken | None = None
    subject: str | None = None


class TokenError(Exception):
    """A refused token request, worded like Azure AD (``error`` and an AADSTS code)."""

    def __init__(self, http_status: int, error: str, code: int, message: str) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.http_status = http_status
        self.error = error
        self.code = code
        self.message = message

    @property
    def description(self) -> str:
        """The ``error_description`` Azure AD would send."""
        return f"AADSTS{self.code}: {self.message}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _jwt_shaped(claims: dict[str, object]) -> str:
    header = {"typ": "JWT", "alg": "RS256", "kid": "mailfleet-sandbox"}
    parts = [json.dumps(header).encode(), json.dumps(claims).encode(), secrets.token_bytes(32)]
    return ".".join(_b64url(p) for p in parts)


class TokenService:
    """Registers apps, issues bearer tokens and checks them against the clock."""

    def __init__(
        self,
        clock: Clock,
        directory: Directory | None = None,
        *,
        lifetime: int = DEFAULT_LIFETIME,
    ) -> None:
        self._clock = clock
        self.directory = directory if directory is not None else Directory()
        self.lifetime = lifetime
        self._apps: dict[tuple[str, str], OAuthApp] = {}
        self._tokens: dict[str, AccessToken] = {}

    def register_app(
        self,
        tenant: str,
        client_id: str,
        client_secret: str,
        mailboxes: Iterable[str] | Literal["all"] = "all",
        protocols: Iterable[MailProtocol] = ALL_PROTOCOLS,
    ) -> OAuthApp:
        """Register an app in ``tenant`` granted ``protocols`` on ``mailboxes`` (or all)."""
        if not self.directory.has_tenant(tenant):
            raise KeyError(f"unknown tenant {tenant!r}; add it with add_tenant first")
        granted = None if mailboxes == "all" else frozenset(map(normalize_address, mailboxes))
        app = OAuthApp(tenant, client_id, client_secret, granted, frozenset(protocols))
        self._apps[(tenant, client_id)] = app
        return app

    def issue(self, tenant: str, client_id: str, client_secret: str, scope: str) -> AccessToken:
        """Issue an app-only token (client-credentials grant) or raise :class:`TokenError`."""
        if not self.directory.has_tenant(tenant):
            raise TokenError(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        app = self._apps.get((tenant, client_id))
        if app is None:
            raise TokenError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'.",
            )
        if not secrets.compare_digest(app.client_secret, client_secret):
            raise TokenError(401, "invalid_client", 7000215, "Invalid client secret provided.")
        resource = _client_credentials_resource(scope, tenant)
        roles = frozenset(APP_ROLES[p] for p in app.protocols)
        return self._mint(tenant, client_id, resource, user=None, scopes=frozenset(), roles=roles)

    def issue_delegated(
        self,
        user: str,
        scopes: Iterable[str] = (f"{OUTLOOK_OFFICE}/SMTP.Send",),
        client_id: str = SANDBOX_PUBLIC_CLIENT,
    ) -> AccessToken:
        """Issue a delegated token for ``user``, as a finished device-code sign-in would."""
        mailbox = self.directory.mailbox(user)
        if mailbox is None:
            raise KeyError(f"unknown mailbox {user!r}")
        resources = set()
        names = set()
        for scope in scopes:
            if scope == "offline_access":
                continue
            resource, _, name = scope.rpartition("/")
            resources.add(resource)
            names.add(name)
        if len(resources) != 1:
            raise ValueError(f"delegated scopes must name exactly one resource: {scopes!r}")
        return self._mint(
            mailbox.tenant,
            client_id,
            resources.pop(),
            user=mailbox.address,
            scopes=frozenset(names),
            roles=frozenset(),
        )

    def _mint(
        self,
        tenant: str,
        client_id: str,
        audience: str,
        *,
        user: str | None,
        scopes: frozenset[str],
        roles: frozenset[str],
    ) -> AccessToken:
        now = self._clock.now()
        expires_at = now + timedelta(seconds=self.lifetime)
        claims: dict[str, object] = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{tenant}/",
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "tid": tenant,
            "appid": client_id,
            "uti": secrets.token_urlsafe(16),
        }
        if user is not None:
            claims.update(upn=user, unique_name=user, scp=" ".join(sorted(scopes)))
        else:
            claims["roles"] = sorted(roles)
        token = AccessToken(
            value=_jwt_shaped(claims),
            tenant=tenant,
            client_id=client_id,
            audience=audience,
            issued_at=now,
            expires_at=expires_at,
            user=user,
            scopes=scopes,
            roles=roles,
        )
        self._tokens[token.value] = token
        return token

    def revoke(self, token: str) -> None:
        """Forget ``token``: it is unknown from now on."""
        self._tokens.pop(token, None)

    def revoke_app_tokens(self, tenant: str, client_id: str) -> int:
        """Forget every token issued to app ``client_id`` of ``tenant``; return how many."""
        doomed = [
            value
            for value, issued in self._tokens.items()
            if issued.tenant == tenant and issued.client_id == client_id
        ]
        for value in doomed:
            del self._tokens[value]
        return len(doomed)

    def lookup(self, token: str) -> AccessToken | None:
        """The issued token with this value, expired or not."""
        return self._tokens.get(token)

    def check(self, token: str, user: str, protocol: MailProtocol = "SMTP") -> TokenCheck:
        """Whether ``token`` lets ``user`` use ``protocol`` now."""
        issued = self._tokens.get(token)
        if issued is None:
            return TokenCheck(TokenStatus.UNKNOWN)
        if self._clock.now() >= issued.expires_at:
            return TokenCheck(TokenStatus.EXPIRED, issued)
        if issued.audience not in EXCHANGE_AUDIENCES:
            return TokenCheck(TokenStatus.WRONG_AUDIENCE, issued)
        if not self._may_act_as(issued, normalize_address(user)):
            return TokenCheck(TokenStatus.WRONG_USER, issued)
        if issued.user is not None:
            granted = DELEGATED_SCOPES[protocol] in issued.scopes
        else:
            granted = APP_ROLES[protocol] in issued.roles
        if not granted:
            return TokenCheck(TokenStatus.MISSING_PERMISSION, issued)
        return TokenCheck(TokenStatus.VALID, issued)

    def introspect(self, token: str, user: str | None = None) -> Introspection:
        """Whether ``token`` is active, for ``user`` (or its own user) on any mail protocol."""
        issued = self._tokens.get(token)
        if issued is None or self._clock.now() >= issued.expires_at:
            return Introspection(active=False)
        subject = normalize_address(user) if user else issued.user
        if subject is None:
            # An app-only token asked about without a mailbox: live is all one can say.
            return Introspection(active=True, token=issued)
        active = any(self.check(token, subject, p).valid for p in sorted(ALL_PROTOCOLS))
        if not active:
            return Introspection(active=False)
        return Introspection(active=True, token=issued, subject=subject)

    def _may_act_as(self, token: AccessToken, user: str) -> bool:
        if token.user is not None:
            return token.user == user
        mailbox = self.directory.mailbox(user)
        if mailbox is None or mailbox.tenant != token.tenant:
            return False
        app = self._apps.get((token.tenant, token.client_id))
        return app is not None and (app.mailboxes is None or user in app.mailboxes)


def _client_credentials_resource(scope: str, tenant: str) -> str:
    """The one resource a client-credentials ``scope`` names, or the AADSTS refusal."""
    entries = scope.split()
    if not entries or any(not entry.endswith("/.default") for entry in entries):
        raise TokenError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows "
            "must have a scope value with /.default suffixed to the resource identifier "
            "(application ID URI).",
        )
    resources = {entry.removesuffix("/.default").rstrip("/") for entry in entries}
    if len(resources) != 1:
        raise TokenError(
            400,
            "invalid_scope",
            28000,
            f"Provided value for the input parameter scope is not valid because it contains "
            f"more than one resource. Scope {scope} is not valid.",
        )
    resource = resources.pop()
    if resource not in _KNOWN_RESOURCES:
        raise TokenError(
            400,
            "invalid_resource",
            500011,
            f"The resource principal named {resource} was not found in the tenant named {tenant}.",
        )
    return resource
