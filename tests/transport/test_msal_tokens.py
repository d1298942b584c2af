"""MSAL against an in-process authority at https://login.test: sign-in, refresh, refusals."""

import asyncio
import datetime as dt
import json

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from fakes.msal_authority import FakeAuthority
from mailfleet.clock import VirtualClock, utc
from mailfleet.providers.identity import RefusalAction
from mailfleet.transport.msal_tokens import (
    BrowserSignIn,
    ClientCertificate,
    DeviceCodeSignIn,
    MsalAppTokens,
    MsalDelegatedTokens,
    MsalEnvironment,
    TokenCacheError,
)
from mailfleet.transport.oauth import TokenError, WrongAudienceError, jwt_claims

USER = "alex@contoso.com"
PUBLIC_CLIENT = "11111111-2222-3333-4444-555555555555"


@pytest.fixture
def authority() -> FakeAuthority:
    fake = FakeAuthority()
    fake.users.add(USER)
    return fake


def env(authority: FakeAuthority) -> MsalEnvironment:
    return MsalEnvironment("https://login.test", authority, instance_discovery=False)


async def sign_in(authority: FakeAuthority, clock: VirtualClock, polls: int = 2) -> str:
    authority.approve_device_code(USER, after_polls=polls)
    flow = DeviceCodeSignIn(
        address=USER,
        client_id=PUBLIC_CLIENT,
        tenant="contoso.com",
        clock=clock,
        environment=env(authority),
    )
    prompt = await flow.start()
    assert prompt.user_code == "ABCD-EFGH" and "devicelogin" in prompt.verification_uri
    signed = await flow.finish()
    assert signed.account == USER
    assert "rt-" in signed.token_cache and "rt-" not in repr(signed)
    return signed.token_cache


async def test_device_code_sign_in_then_refresh_rotates_and_persists_the_cache(
    authority: FakeAuthority,
) -> None:
    clock = VirtualClock(utc(2026, 3, 2, 9))
    cache = await sign_in(authority, clock)
    assert authority.grants("urn:ietf:params:oauth:grant-type:device_code") == 3
    stored: list[str] = []

    async def persist(state: str) -> None:
        stored.append(state)

    tokens = MsalDelegatedTokens(
        address=USER,
        client_id=PUBLIC_CLIENT,
        tenant="contoso.com",
        token_cache=cache,
        clock=clock,
        environment=env(authority),
        on_cache_change=persist,
    )
    first = await tokens.access_token()  # the signed-in token, straight from the cache
    assert authority.grants("refresh_token") == 0
    assert (jwt_claims(first.token) or {})["aud"] == "https://outlook.office.com"
    assert await tokens.access_token() is first
    clock.advance(dt.timedelta(minutes=56))  # inside the refresh margin on *our* clock
    second = await tokens.access_token()
    assert second.token != first.token and authority.grants("refresh_token") == 1
    assert len(stored) == 1  # the rotated refresh token was handed over to be sealed
    # Each refresh token works once: only the persisted cache can refresh again.
    again = MsalDelegatedTokens(
        address=USER,
        client_id=PUBLIC_CLIENT,
        tenant="contoso.com",
        token_cache=stored[-1],
        clock=clock,
        environment=env(authority),
        on_cache_change=persist,
    )
    third = await again.access_token(force_refresh=True)
    assert third.token not in (first.token, second.token) and len(stored) == 2
    stale = MsalDelegatedTokens(
        address=USER,
        client_id=PUBLIC_CLIENT,
        tenant="contoso.com",
        token_cache=cache,
        clock=clock,
        environment=env(authority),
    )
    with pytest.raises(TokenError) as caught:
        await stale.access_token(force_refresh=True)
    assert caught.value.codes == (70008,) and caught.value.disconnects


async def test_concurrent_senders_share_one_refresh(authority: FakeAuthority) -> None:
    clock = VirtualClock(utc(2026, 3, 2, 9))
    cache = await sign_in(authority, clock, polls=0)
    tokens = MsalDelegatedTokens(
        address=USER,
        client_id=PUBLIC_CLIENT,
        tenant="contoso.com",
        token_cache=cache,
        clock=clock,
        environment=env(authority),
    )
    results = await asyncio.gather(*(tokens.access_token(force_refresh=i == 0) for i in range(8)))
    assert len({r.token for r in results}) == 1
    assert authority.grants("refresh_token") == 1


async def test_revoked_refresh_token_is_a_disconnect_with_the_aadsts_code(
    authority: FakeAuthority,
) -> None:
    clock = VirtualClock(utc(2026, 3, 2, 9))
    cache = await sign_in(authority, clock, polls=0)
    authority.revoke(USER)
    tokens = MsalDelegatedTokens(
        address=USER,
        client_id=PUBLIC_CLIENT,
        tenant="contoso.com",
        token_cache=cache,
        clock=clock,
        environment=env(authority),
    )
    with pytest.raises(TokenError) as caught:
        await tokens.access_token(force_refresh=True)
    error = caught.value
    assert error.error == "invalid_grant" and error.codes == (50173,)
    assert error.refusal is not None and error.refusal.action is RefusalAction.RECONNECT
    assert error.disconnects and USER in str(error)


async def test_expired_device_code_is_a_clear_error(authority: FakeAuthority) -> None:
    clock = VirtualClock(utc(2026, 3, 2, 9))
    authority.expire_device_codes()
    flow = DeviceCodeSignIn(
        address=USER,
        client_id=PUBLIC_CLIENT,
        tenant="contoso.com",
        clock=clock,
        environment=env(authority),
    )
    await flow.start()
    with pytest.raises(TokenError, match="AADSTS70020") as caught:
        await flow.finish()
    assert caught.value.error == "expired_token" and USER in str(caught.value)


async def test_unknown_tenant_and_wrong_account_are_named(authority: FakeAuthority) -> None:
    clock = VirtualClock(utc(2026, 3, 2, 9))
    flow = DeviceCodeSignIn(
        address=USER,
        client_id=PUBLIC_CLIENT,
        tenant="nowhere.example",
        clock=clock,
        environment=env(authority),
    )
    with pytest.raises(TokenError) as caught:
        await flow.start()
    assert caught.value.codes == (90002,) and "tenant" in str(caught.value)
    authority.approve_device_code("sam@contoso.com")
    other = DeviceCodeSignIn(
        address=USER,
        client_id=PUBLIC_CLIENT,
        tenant="contoso.com",
        clock=clock,
        environment=env(authority),
    )
    await other.start()
    with pytest.raises(TokenError, match=r"sam@contoso\.com, not alex@contoso\.com"):
        await other.finish()


def test_corrupt_token_cache_is_refused_before_any_request(authority: FakeAuthority) -> None:
    clock = VirtualClock(utc(2026, 3, 2, 9))
    for bad in ("{not json", json.dumps([1, 2]), json.dumps({"AccessToken": 3})):
        with pytest.raises(TokenCacheError):
            MsalDelegatedTokens(
                address=USER,
                client_id=PUBLIC_CLIENT,
                tenant="contoso.com",
                token_cache=bad,
                clock=clock,
                environment=env(authority),
            )
    assert authority.requests == []


async def test_app_only_secret_token_is_cached_and_refused_secret_is_explained(
    authority: FakeAuthority,
) -> None:
    clock = VirtualClock(utc(2026, 3, 2, 9))
    authority.add_app("app-1", secret="right-secret")
    tokens = MsalAppTokens(
        client_id="app-1",
        tenant="contoso.com",
        credential="right-secret",
        clock=clock,
        environment=env(authority),
    )
    first = await tokens.access_token()
    assert await tokens.access_token() is first
    forced = await tokens.access_token(force_refresh=True)
    assert forced.token != first.token and authority.grants("client_credentials") == 2
    scopes = {
        f["scope"] for _, _, f in authority.requests if f.get("grant_type") == "client_credentials"
    }
    assert scopes == {"https://outlook.office365.com/.default"}
    assert "right-secret" not in repr(tokens)
    wrong = MsalAppTokens(
        client_id="app-1",
        tenant="contoso.com",
        credential="wrong",
        clock=clock,
        environment=env(authority),
    )
    with pytest.raises(TokenError) as caught:
        await wrong.access_token()
    assert caught.value.codes == (7000215,) and caught.value.disconnects
    assert caught.value.refusal is not None
    assert caught.value.refusal.action is RefusalAction.FIX_APP
    assert "wrong" not in str(caught.value).replace("wrong_", "")


async def test_app_only_with_a_certificate(authority: FakeAuthority) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailfleet")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    thumbprint = cert.fingerprint(hashes.SHA1()).hex()
    authority.add_app("app-2", thumbprint=thumbprint)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    credential = ClientCertificate(pem, thumbprint)
    assert "PRIVATE" not in repr(credential)
    tokens = MsalAppTokens(
        client_id="app-2",
        tenant="contoso.com",
        credential=credential,
        clock=VirtualClock(utc(2026, 3, 2, 9)),
        environment=env(authority),
    )
    assert (await tokens.access_token()).token
    assert any("client_assertion" in f for _, _, f in authority.requests)


async def test_a_graph_token_is_refused_before_use(authority: FakeAuthority) -> None:
    authority.audience = "https://graph.microsoft.com"
    authority.add_app("app-1", secret="s")
    tokens = MsalAppTokens(
        client_id="app-1",
        tenant="contoso.com",
        credential="s",
        clock=VirtualClock(utc(2026, 3, 2, 9)),
        environment=env(authority),
    )
    with pytest.raises(WrongAudienceError, match="Microsoft Graph"):
        await tokens.access_token()


async def test_browser_sign_in_through_a_loopback_redirect(authority: FakeAuthority) -> None:
    clock = VirtualClock(utc(2026, 3, 2, 9))
    tasks: list[asyncio.Task[httpx.Response]] = []

    def browser(url: str) -> None:
        answer = authority.authorize(url, USER)
        assert answer["redirect_uri"].startswith("http://127.0.0.1:")

        async def follow() -> httpx.Response:
            async with httpx.AsyncClient() as client:
                return await client.post(
                    answer["redirect_uri"],
                    data={"code": answer["code"], "state": answer["state"]},
                )

        tasks.append(asyncio.get_running_loop().create_task(follow()))

    signed = await BrowserSignIn(
        address=USER,
        client_id=PUBLIC_CLIENT,
        tenant="contoso.com",
        clock=clock,
        environment=env(authority),
    ).run(open_browser=browser, wait_seconds=10)
    assert signed.account == USER and "rt-" in signed.token_cache
    page = await tasks[0]
    assert page.status_code == 200 and "Signed in" in page.text
