import asyncio
import json
from datetime import timedelta

import httpx
import pytest

from mailfleet.clock import VirtualClock, utc
from mailfleet.transport.oauth import ClientCredentialsProvider, TokenError


def fake_endpoint(calls: list[dict[str, str]], *, fail: bool = False) -> httpx.AsyncClient:
    async def handler(request: httpx.Request) -> httpx.Response:
        form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
        calls.append(form)
        await asyncio.sleep(0.01)
        if fail:
            body = {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
            }
            return httpx.Response(401, json=body)
        return httpx.Response(
            200,
            content=json.dumps(
                {"token_type": "Bearer", "expires_in": 3599, "access_token": f"tok{len(calls)}"}
            ),
        )

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_token_is_cached_refreshed_ahead_of_expiry_and_shared() -> None:
    clock = VirtualClock(utc(2026, 3, 2, 9))
    calls: list[dict[str, str]] = []
    provider = ClientCredentialsProvider(
        token_url="https://login.test/t/oauth2/v2.0/token",
        client_id="app",
        client_secret="sup3r-secret",
        scope="https://outlook.office365.com/.default",
        clock=clock,
        http=fake_endpoint(calls),
    )
    tokens = await asyncio.gather(*(provider.access_token() for _ in range(5)))
    assert {t.token for t in tokens} == {"tok1"} and len(calls) == 1  # one refresh at a time
    assert calls[0]["grant_type"] == "client_credentials"
    clock.advance(timedelta(minutes=50))
    assert (await provider.access_token()).token == "tok1"
    clock.advance(timedelta(minutes=6))  # inside the five-minute margin
    assert (await provider.access_token()).token == "tok2"
    assert (await provider.access_token(force_refresh=True)).token == "tok3"
    assert "sup3r-secret" not in repr(provider)
    assert "tok3" not in repr(await provider.access_token())


async def test_refusal_carries_the_identity_providers_reason() -> None:
    clock = VirtualClock(utc(2026, 3, 2, 9))
    provider = ClientCredentialsProvider(
        token_url="https://login.test/t/oauth2/v2.0/token",
        client_id="app",
        client_secret="bad",
        scope="x",
        clock=clock,
        http=fake_endpoint([], fail=True),
    )
    with pytest.raises(TokenError, match="AADSTS7000215") as info:
        await provider.access_token()
    assert info.value.status == 401
