"""Google tokens against an in-process token endpoint: refresh token and service account."""

import json
from typing import Any
from urllib.parse import parse_qsl

import google.auth.transport
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailfleet.clock import VirtualClock, utc
from mailfleet.transport.google_tokens import (
    GOOGLE_MAIL_SCOPE,
    GoogleServiceAccountTokens,
    GoogleUserTokens,
    validate_service_account,
)
from mailfleet.transport.oauth import TokenError


class Answer(google.auth.transport.Response):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self._status = status
        self._data = json.dumps(body).encode()

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> dict[str, str]:
        return {"content-type": "application/json"}

    @property
    def data(self) -> bytes:
        return self._data


class FakeGoogle(google.auth.transport.Request):
    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []
        self.revoked = False
        self.rotate_to: str | None = None

    def __call__(  # type: ignore[override]
        self, url: str, method: str = "GET", body: Any = None, headers: Any = None, **kw: Any
    ) -> Answer:
        assert url == "https://oauth2.googleapis.com/token"
        form = dict(parse_qsl(body.decode() if isinstance(body, bytes) else str(body)))
        self.forms.append(form)
        if self.revoked:
            return Answer(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                },
            )
        answer = {
            "access_token": f"ya29.{len(self.forms)}",
            "expires_in": 3599,
            "scope": GOOGLE_MAIL_SCOPE,
        }
        if self.rotate_to:
            answer["refresh_token"] = self.rotate_to
        return Answer(200, answer)


async def test_refresh_token_gives_tokens_and_a_rotated_one_is_kept() -> None:
    google = FakeGoogle()
    google.rotate_to = "1//new-refresh"
    kept: list[dict[str, Any]] = []

    async def keep(update: dict[str, Any]) -> None:
        kept.append(update)

    tokens = GoogleUserTokens(
        address="a@brand.example",
        client_id="cid.apps.googleusercontent.com",
        client_secret="csecret",
        refresh_token="1//old-refresh",
        clock=VirtualClock(utc(2026, 3, 2, 9)),
        request=google,
        on_change=keep,
    )
    first = await tokens.access_token()
    assert first.token == "ya29.1" and await tokens.access_token() is first
    assert google.forms[0]["grant_type"] == "refresh_token"
    assert google.forms[0]["refresh_token"] == "1//old-refresh"
    assert kept == [{"refresh_token": "1//new-refresh"}]
    assert "csecret" not in repr(tokens) and "refresh" not in repr(tokens)


async def test_revoked_google_grant_disconnects() -> None:
    google = FakeGoogle()
    google.revoked = True
    tokens = GoogleUserTokens(
        address="a@brand.example",
        client_id="cid",
        client_secret="csecret",
        refresh_token="1//gone",
        clock=VirtualClock(utc(2026, 3, 2, 9)),
        request=google,
    )
    with pytest.raises(TokenError) as caught:
        await tokens.access_token()
    assert caught.value.error == "invalid_grant" and caught.value.disconnects
    assert "a@brand.example" in str(caught.value) and "1//gone" not in str(caught.value)


def service_account_key() -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "client_email": "sender@project.iam.gserviceaccount.com",
        "private_key": pem,
        "private_key_id": "k1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


async def test_service_account_acts_as_the_mailbox() -> None:
    google = FakeGoogle()
    info = validate_service_account(service_account_key())
    tokens = GoogleServiceAccountTokens(
        address="a@brand.example",
        service_account_info=info,
        clock=VirtualClock(utc(2026, 3, 2, 9)),
        request=google,
    )
    token = await tokens.access_token()
    assert token.token == "ya29.1"
    assertion = google.forms[0]["assertion"]
    payload = assertion.split(".")[1]
    claims = json.loads(__import__("base64").urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == "a@brand.example" and claims["scope"] == GOOGLE_MAIL_SCOPE
    assert "PRIVATE" not in repr(tokens)


def test_bad_service_account_keys_are_named() -> None:
    with pytest.raises(ValueError, match="not 'service_account'"):
        validate_service_account({"type": "authorized_user"})
    with pytest.raises(ValueError, match="lacks private_key"):
        validate_service_account({"type": "service_account", "client_email": "x", "token_uri": "u"})
    with pytest.raises(
        TokenError, match=r"a@brand\.example: the service-account key is not usable"
    ):
        GoogleServiceAccountTokens(
            address="a@brand.example",
            service_account_info={**service_account_key(), "private_key": "garbage"},
            clock=VirtualClock(utc(2026, 3, 2, 9)),
        )
