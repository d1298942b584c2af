"""The token service over HTTP answers like Azure AD's token endpoint and RFC 7662."""

from __future__ import annotations

import httpx

from mailfleet.clock import VirtualClock
from mailfleet.sandbox import Sandbox

from .support import APP_SCOPE, CLIENT_ID, CLIENT_SECRET, SENDER, TENANT


def credentials(**overrides: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": APP_SCOPE,
    }
    form.update(overrides)
    return form


async def test_client_credentials_grant_returns_a_bearer_token(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(sandbox.token_url(TENANT), data=credentials())
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert sandbox.tokens.check(body["access_token"], SENDER).valid


async def test_a_wrong_secret_gets_401_with_aadsts7000215(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            sandbox.token_url(TENANT), data=credentials(client_secret="nope")
        )
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert body["error_codes"] == [7000215]


async def test_malformed_requests_get_400(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as http:
        missing = await http.post(
            sandbox.token_url(TENANT), data={"grant_type": "client_credentials"}
        )
        wrong_grant = await http.post(
            sandbox.token_url(TENANT), data=credentials(grant_type="password")
        )
        no_tenant = await http.post(sandbox.token_url("nowhere"), data=credentials())
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
    assert "AADSTS900144" in missing.json()["error_description"]
    assert (wrong_grant.status_code, wrong_grant.json()["error"]) == (
        400,
        "unsupported_grant_type",
    )
    assert no_tenant.json()["error_description"].startswith("AADSTS90002: ")


async def test_introspection_reports_active_then_expired(
    sandbox: Sandbox, clock: VirtualClock
) -> None:
    token = sandbox.tokens.issue_delegated(SENDER)
    url = sandbox.introspection_url
    async with httpx.AsyncClient() as http:
        active = (await http.post(url, data={"token": token.value})).json()
        clock.advance(3599)
        expired = (await http.post(url, data={"token": token.value})).json()
        unknown = (await http.post(url, data={"token": "nope"})).json()
    assert active["active"] is True
    assert active["username"] == SENDER
    assert active["exp"] == int(token.expires_at.timestamp())
    assert expired == {"active": False}
    assert unknown == {"active": False}


async def test_introspection_of_an_app_token_names_the_mailbox_asked_about(
    sandbox: Sandbox,
) -> None:
    token = sandbox.tokens.issue(TENANT, CLIENT_ID, CLIENT_SECRET, APP_SCOPE).value
    async with httpx.AsyncClient() as http:
        body = (
            await http.post(sandbox.introspection_url, data={"token": token, "user": SENDER})
        ).json()
        by_header = (
            await http.get(sandbox.introspection_url, headers={"Authorization": f"Bearer {token}"})
        ).json()
    assert (body["active"], body["username"]) == (True, SENDER)
    assert by_header["active"] is True
    assert by_header["sub"] == CLIENT_ID
