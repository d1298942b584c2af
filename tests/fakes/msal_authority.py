"""An in-process Entra ID for MSAL: ``https://login.test/<tenant>`` without a socket.

MSAL only accepts https authorities; tests give it ``instance_discovery=False``
and :class:`FakeAuthority` as ``http_client``. It answers OpenID discovery, the
device-code endpoint, and the token endpoint for the device-code,
authorization-code, refresh-token (rotating: each refresh token works once) and
client-credentials grants, with Azure AD's error shapes (``AADSTS`` codes).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOST = "https://login.test"
OUTLOOK = "https://outlook.office.com"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims: dict[str, Any]) -> str:
    header = b64url(json.dumps({"typ": "JWT", "alg": "none"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}.c2ln"


class FakeResponse:
    """The shape MSAL reads: status_code, text, headers, json(), raise_for_status()."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        self.status_code = status_code
        self.text = json.dumps(body)
        self.headers: dict[str, str] = {"Content-Type": "application/json"}

    def json(self) -> Any:
        return json.loads(self.text)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise RuntimeError(f"HTTP {self.status_code}")


def aad_error(status: int, error: str, code: int, text: str) -> FakeResponse:
    return FakeResponse(
        status,
        {
            "error": error,
            "error_description": f"AADSTS{code}: {text}\r\nTrace ID: 0000",
            "error_codes": [code],
        },
    )


Minter = Callable[[str | None, str, list[str]], tuple[str, int]]
"""(user or None for app-only, tenant, scopes) -> (access token, expires_in)."""


@dataclass
class App:
    client_id: str
    secret: str | None = None
    thumbprint: str | None = None


@dataclass
class FakeAuthority:
    """Tenants, apps, users and the tokens issued; every request is recorded."""

    tenants: set[str] = field(default_factory=lambda: {"contoso.com"})
    apps: dict[str, App] = field(default_factory=dict)
    users: set[str] = field(default_factory=set)
    lifetime: int = 3599
    minter: Minter | None = None
    audience: str = OUTLOOK
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    # device codes: code -> {"user": str | None, "pending": int, "expired": bool}
    device_codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token -> user
    revoked_users: set[str] = field(default_factory=set)
    auth_codes: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # user, PKCE, nonce
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- what tests arrange ---------------------------------------------------------------

    def add_app(self, client_id: str, secret: str | None = None, thumbprint: str | None = None):  # type: ignore[no-untyped-def]
        self.apps[client_id] = App(client_id, secret, thumbprint)

    def approve_device_code(self, user: str, after_polls: int = 0) -> None:
        """The next device code issued is signed in as ``user`` after ``after_polls`` polls."""
        self._next_device = {"user": user, "pending": after_polls, "expired": False}

    def expire_device_codes(self) -> None:
        self._next_device = {"user": None, "pending": 0, "expired": True}

    def revoke(self, user: str) -> None:
        """The user changed the password: every refresh token of theirs dies."""
        self.revoked_users.add(user)

    def grants(self, kind: str) -> int:
        return sum(1 for _, _, form in self.requests if form.get("grant_type", "") == kind)

    # -- the HTTP client MSAL calls -----------------------------------------------------------

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> FakeResponse:
        self.requests.append(("GET", url, {}))
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.netloc == "login.test", url
        tenant = parts.path.strip("/").split("/")[0]
        if tenant not in self.tenants:
            return aad_error(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID.",
            )
        base = f"{HOST}/{tenant}"
        return FakeResponse(
            200,
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            },
        )

    def post(
        self,
        url: str,
        params: Any = None,
        data: Any = None,
        headers: Any = None,
        **kwargs: Any,
    ) -> FakeResponse:
        form = (
            {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in data.items()}
            if isinstance(data, dict)
            else {}
        )
        if isinstance(data, str):
            form = {k: v[0] for k, v in parse_qs(data).items()}
        with self._lock:
            self.requests.append(("POST", url, form))
            tenant = urlsplit(url).path.strip("/").split("/")[0]
            if url.endswith("/devicecode"):
                return self._device_code(form)
            grant = form.get("grant_type", "")
            if grant == "urn:ietf:params:oauth:grant-type:device_code":
                return self._device_grant(tenant, form)
            if grant == "refresh_token":
                return self._refresh(tenant, form)
            if grant == "client_credentials":
                return self._client_credentials(tenant, form)
            if grant == "authorization_code":
                return self._auth_code(tenant, form)
            return aad_error(400, "unsupported_grant_type", 70003, f"grant {grant!r}")

    def close(self) -> None:
        return None

    # -- grants -------------------------------------------------------------------------------

    def _device_code(self, form: dict[str, str]) -> FakeResponse:
        code = f"dc-{next(self._serial)}"
        self.device_codes[code] = dict(
            getattr(self, "_next_device", {"user": None, "pending": 0, "expired": True}),
            scope=form.get("scope", ""),
        )
        return FakeResponse(
            200,
            {
                "device_code": code,
                "user_code": "ABCD-EFGH",
                "verification_uri": "https://microsoft.test/devicelogin",
                "expires_in": 900,
                "interval": 0,
                "message": "To sign in, open https://microsoft.test/devicelogin and enter "
                "ABCD-EFGH.",
            },
        )

    def _device_grant(self, tenant: str, form: dict[str, str]) -> FakeResponse:
        state = self.device_codes.get(form.get("device_code", ""))
        if state is None or state["expired"]:
            return aad_error(
                400,
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not valid. "
                "Device codes expire after 15 minutes.",
            )
        if state["pending"] > 0:
            state["pending"] -= 1
            return aad_error(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending.",
            )
        return self._user_tokens(tenant, state["user"], dict(form, scope=state["scope"]))

    def _refresh(self, tenant: str, form: dict[str, str]) -> FakeResponse:
        token = form.get("refresh_token", "")
        user = self.refresh_tokens.pop(token, None)  # each refresh token works once
        if user is None:
            return aad_error(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity.",
            )
        if user in self.revoked_users:
            return aad_error(
                400,
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is "
                "needed. The user might have changed or reset their password.",
            )
        return self._user_tokens(tenant, user, form)

    def _auth_code(self, tenant: str, form: dict[str, str]) -> FakeResponse:
        entry = self.auth_codes.pop(form.get("code", ""), None)
        if entry is None:
            return aad_error(400, "invalid_grant", 70000, "The provided code is not valid.")
        user, challenge, nonce = entry
        verifier = form.get("code_verifier", "")
        if b64url(hashlib.sha256(verifier.encode()).digest()) != challenge:
            return aad_error(400, "invalid_grant", 501481, "The Code_Verifier does not match.")
        return self._user_tokens(tenant, user, form, nonce=nonce)

    def authorize(self, auth_uri: str, user: str) -> dict[str, str]:
        """What the browser would do: sign ``user`` in and return the redirect's query."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(auth_uri).query).items()}
        code = f"code-{next(self._serial)}"
        self.auth_codes[code] = (user, query["code_challenge"], query.get("nonce", ""))
        return {"code": code, "state": query["state"], "redirect_uri": query["redirect_uri"]}

    def _client_credentials(self, tenant: str, form: dict[str, str]) -> FakeResponse:
        app = self.apps.get(form.get("client_id", ""))
        if app is None:
            return aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form.get('client_id')}' was not found in the "
                f"directory '{tenant}'.",
            )
        if "client_secret" in form:
            if form["client_secret"] != app.secret:
                return aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        elif "client_assertion" in form:
            head = form["client_assertion"].split(".")[0]
            header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
            if app.thumbprint is None or ("x5t" not in header and "x5t#S256" not in header):
                return aad_error(
                    401, "invalid_client", 700027, "Client assertion failed signature validation."
                )
        else:
            return aad_error(400, "invalid_client", 7000218, "client_secret missing")
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            return aad_error(400, "invalid_scope", 1002012, f"scope {scope} is not valid.")
        value, lifetime = self._mint(None, tenant, scope.split())
        return FakeResponse(
            200,
            {"token_type": "Bearer", "expires_in": lifetime, "access_token": value},
        )

    def _user_tokens(
        self, tenant: str, user: str, form: dict[str, str], nonce: str = ""
    ) -> FakeResponse:
        scopes = [s for s in form.get("scope", "").split() if s.startswith("https://")]
        value, lifetime = self._mint(user, tenant, scopes)
        refresh = f"rt-{next(self._serial)}-{user}"
        self.refresh_tokens[refresh] = user
        uid = hashlib.sha1(user.encode()).hexdigest()[:12]
        now = int(time.time())
        return FakeResponse(
            200,
            {
                "token_type": "Bearer",
                "scope": " ".join(scopes),
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": value,
                "refresh_token": refresh,
                "id_token": jwt(
                    {
                        "aud": form.get("client_id", ""),
                        "iss": f"{HOST}/{tenant}/v2.0",
                        "iat": now,
                        "exp": now + 3600,
                        "sub": uid,
                        "oid": uid,
                        "tid": tenant,
                        "preferred_username": user,
                        "name": user,
                        "nonce": nonce,
                    }
                ),
                "client_info": b64url(json.dumps({"uid": uid, "utid": tenant}).encode()),
            },
        )

    def _mint(self, user: str | None, tenant: str, scopes: list[str]) -> tuple[str, int]:
        if self.minter is not None:
            return self.minter(user, tenant, scopes)
        claims: dict[str, Any] = {
            "aud": self.audience,
            "tid": tenant,
            "exp": int(time.time()) + self.lifetime,
            "n": next(self._serial),
        }
        if user:
            claims["upn"] = user
        return jwt(claims), self.lifetime
