"""The token service: who may get a token, for what, and for how long (on the injected clock)."""

from __future__ import annotations

import base64
import json

import pytest

from mailfleet.clock import VirtualClock, utc
from mailfleet.sandbox import Directory, TokenError, TokenService, TokenStatus

from .support import APP_SCOPE, CLIENT_ID, CLIENT_SECRET, PEER, SENDER, TENANT

OTHER_TENANT = "fabrikam.onmicrosoft.com"
STRANGER = "eve@fabrikam.test"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(utc(2025, 3, 3, 9))


@pytest.fixture
def service(clock: VirtualClock) -> TokenService:
    directory = Directory()
    directory.add_tenant(TENANT)
    directory.add_tenant(OTHER_TENANT)
    directory.add_mailbox(SENDER, TENANT)
    directory.add_mailbox(PEER, TENANT)
    directory.add_mailbox(STRANGER, OTHER_TENANT)
    tokens = TokenService(clock, directory)
    tokens.register_app(TENANT, CLIENT_ID, CLIENT_SECRET)
    return tokens


def claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def test_an_app_token_is_valid_for_every_mailbox_of_its_tenant(service: TokenService) -> None:
    token = service.issue(TENANT, CLIENT_ID, CLIENT_SECRET, APP_SCOPE).value
    assert service.check(token, SENDER).status is TokenStatus.VALID
    assert service.check(token, PEER.upper()).valid
    assert service.check(token, STRANGER).status is TokenStatus.WRONG_USER


def test_an_app_granted_some_mailboxes_is_valid_only_for_those(service: TokenService) -> None:
    service.register_app(TENANT, "narrow-app", "pw", mailboxes={SENDER})
    token = service.issue(TENANT, "narrow-app", "pw", APP_SCOPE).value
    assert service.check(token, SENDER).valid
    assert service.check(token, PEER).status is TokenStatus.WRONG_USER


def test_tokens_live_3599_seconds_of_the_injected_clock(
    service: TokenService, clock: VirtualClock
) -> None:
    token = service.issue(TENANT, CLIENT_ID, CLIENT_SECRET, APP_SCOPE)
    assert token.expires_in(clock.now()) == 3599
    clock.advance(3598)
    assert service.check(token.value, SENDER).valid
    clock.advance(1)
    assert service.check(token.value, SENDER).status is TokenStatus.EXPIRED


def test_an_unknown_or_revoked_token_is_unknown(service: TokenService) -> None:
    assert service.check("made-up", SENDER).status is TokenStatus.UNKNOWN
    token = service.issue(TENANT, CLIENT_ID, CLIENT_SECRET, APP_SCOPE).value
    service.revoke(token)
    assert service.check(token, SENDER).status is TokenStatus.UNKNOWN


def test_a_graph_token_has_the_wrong_audience(service: TokenService) -> None:
    token = service.issue(TENANT, CLIENT_ID, CLIENT_SECRET, "https://graph.microsoft.com/.default")
    assert claims(token.value)["aud"] == "https://graph.microsoft.com"
    assert service.check(token.value, SENDER).status is TokenStatus.WRONG_AUDIENCE


def test_an_app_without_smtp_permission_cannot_send(service: TokenService) -> None:
    service.register_app(TENANT, "imap-only", "pw", protocols={"IMAP"})
    token = service.issue(TENANT, "imap-only", "pw", APP_SCOPE).value
    assert service.check(token, SENDER, "IMAP").valid
    assert service.check(token, SENDER, "SMTP").status is TokenStatus.MISSING_PERMISSION


def test_delegated_tokens_are_for_their_user_and_their_scopes(service: TokenService) -> None:
    token = service.issue_delegated(SENDER).value
    assert claims(token)["upn"] == SENDER
    assert claims(token)["scp"] == "SMTP.Send"
    assert service.check(token, SENDER).valid
    assert service.check(token, PEER).status is TokenStatus.WRONG_USER
    assert service.check(token, SENDER, "IMAP").status is TokenStatus.MISSING_PERMISSION


def test_tokens_carry_tenant_audience_and_roles_like_microsofts(service: TokenService) -> None:
    token = service.issue(TENANT, CLIENT_ID, CLIENT_SECRET, APP_SCOPE)
    body = claims(token.value)
    assert body["aud"] == "https://outlook.office365.com"
    assert body["tid"] == TENANT
    assert body["exp"] == int(token.expires_at.timestamp())
    assert "SMTP.SendAsApp" in body["roles"]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("tenant", "client_id", "secret", "scope", "status", "error", "code"),
    [
        (TENANT, CLIENT_ID, "wrong", APP_SCOPE, 401, "invalid_client", 7000215),
        ("nowhere", CLIENT_ID, CLIENT_SECRET, APP_SCOPE, 400, "invalid_request", 90002),
        (TENANT, "unknown-app", CLIENT_SECRET, APP_SCOPE, 400, "unauthorized_client", 700016),
        (
            TENANT,
            CLIENT_ID,
            CLIENT_SECRET,
            "https://outlook.office.com/SMTP.Send",
            400,
            "invalid_scope",
            1002012,
        ),
        (
            TENANT,
            CLIENT_ID,
            CLIENT_SECRET,
            "https://example.test/.default",
            400,
            "invalid_resource",
            500011,
        ),
    ],
)
def test_refusals_carry_azure_ad_codes(
    service: TokenService,
    tenant: str,
    client_id: str,
    secret: str,
    scope: str,
    status: int,
    error: str,
    code: int,
) -> None:
    with pytest.raises(TokenError) as failure:
        service.issue(tenant, client_id, secret, scope)
    assert (failure.value.http_status, failure.value.error, failure.value.code) == (
        status,
        error,
        code,
    )
    assert failure.value.description.startswith(f"AADSTS{code}: ")


def test_introspection_follows_the_clock(service: TokenService, clock: VirtualClock) -> None:
    token = service.issue(TENANT, CLIENT_ID, CLIENT_SECRET, APP_SCOPE).value
    assert service.introspect(token, SENDER).active
    assert service.introspect(token, SENDER).subject == SENDER
    assert not service.introspect(token, STRANGER).active
    clock.advance(3600)
    assert not service.introspect(token, SENDER).active
