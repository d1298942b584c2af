"""Endpoint validation against the provider, and per-mailbox limit overrides."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailfleet.providers import (
    GENERIC,
    GOOGLE_WORKSPACE,
    MICROSOFT_365,
    ConfigWarning,
    LimitOverrideError,
    LimitOverrides,
    ProviderConfigError,
    ProviderLimits,
    effective_limits,
    validate_endpoint,
)
from mailfleet.providers.validation import is_loopback


def _check(
    provider: str, host: str, port: int, security: str, auth: str = "oauth2_delegated"
) -> list[ConfigWarning]:
    return validate_endpoint(
        provider, smtp_host=host, smtp_port=port, smtp_security=security, auth_kind=auth
    )


def test_the_presets_themselves_validate_without_warnings() -> None:
    assert _check("microsoft365", "smtp.office365.com", 587, "starttls") == []
    assert _check("google", "smtp.gmail.com", 587, "starttls") == []


@pytest.mark.parametrize(("port", "security"), [(465, "tls"), (465, "starttls"), (587, "tls")])
def test_microsoft_365_refuses_465_and_implicit_tls_saying_use_587_with_starttls(
    port: int, security: str
) -> None:
    with pytest.raises(ProviderConfigError, match="587 with STARTTLS") as caught:
        _check("microsoft365", "smtp.office365.com", port, security)
    assert caught.value.field in ("smtp_port", "smtp_security")


def test_microsoft_365_basic_auth_is_accepted_with_a_deprecation_warning() -> None:
    (warning,) = _check("microsoft365", "smtp.office365.com", 587, "starttls", "password")
    assert warning.code == "m365.basic_auth_deprecated"
    assert warning.field == "auth_kind"
    assert "550 5.7.30" in warning.message
    assert "OAuth" in str(warning)


def test_microsoft_365_port_25_works_with_a_warning() -> None:
    (warning,) = _check("microsoft365", "smtp.office365.com", 25, "starttls")
    assert warning.code == "m365.port_25"


def test_microsoft_365_other_ports_are_refused() -> None:
    with pytest.raises(ProviderConfigError, match="587"):
        _check("microsoft365", "smtp.office365.com", 2525, "starttls")


def test_microsoft_365_on_loopback_is_the_sandbox_and_may_use_any_port() -> None:
    assert _check("microsoft365", "127.0.0.1", 2587, "starttls") == []


def test_microsoft_365_on_an_unusual_host_warns() -> None:
    (warning,) = _check("microsoft365", "smtp-legacy.office365.com", 587, "starttls")
    assert warning.code == "m365.unusual_host"


def test_google_465_with_implicit_tls_is_fine() -> None:
    assert _check("google", "smtp.gmail.com", 465, "tls") == []


@pytest.mark.parametrize(("port", "security"), [(465, "starttls"), (587, "tls")])
def test_google_port_and_mode_must_agree(port: int, security: str) -> None:
    with pytest.raises(ProviderConfigError, match="587 with 'starttls' or 465 with 'tls'"):
        _check("google", "smtp.gmail.com", port, security)


def test_google_password_warns_about_app_passwords() -> None:
    (warning,) = _check("google", "smtp.gmail.com", 587, "starttls", "password")
    assert "app password" in warning.message


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.53", "LOCALHOST."]
)
@pytest.mark.parametrize("provider", ["generic", "sandbox"])
def test_plain_is_allowed_for_the_sandbox_and_generic_on_loopback(host: str, provider: str) -> None:
    assert _check(provider, host, 2525, "plain", "password") == []


@pytest.mark.parametrize("host", ["mail.example.com", "10.0.0.5", "localhost.example.com"])
def test_plain_to_a_remote_host_is_refused(host: str) -> None:
    with pytest.raises(ProviderConfigError, match="loopback") as caught:
        _check("generic", host, 25, "plain")
    assert caught.value.field == "smtp_security"


@pytest.mark.parametrize("provider", ["microsoft365", "google"])
def test_plain_is_refused_for_real_providers_even_on_loopback(provider: str) -> None:
    with pytest.raises(ProviderConfigError, match="needs TLS"):
        _check(provider, "127.0.0.1", 2525, "plain")


def test_generic_port_and_mode_mismatch_only_warns() -> None:
    (warning,) = _check("generic", "mail.example.com", 465, "starttls")
    assert warning.code == "generic.port_security_mismatch"


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"provider": "yahoo"}, "provider", "known providers: generic, google, microsoft365"),
        ({"host": ""}, "smtp_host", "empty"),
        ({"port": 0}, "smtp_port", "1–65535"),
        ({"port": 70000}, "smtp_port", "1–65535"),
        ({"security": "ssl"}, "smtp_security", "starttls, tls, plain"),
        ({"auth": "ntlm"}, "auth_kind", "oauth2_delegated"),
    ],
)
def test_invalid_values_name_the_field(kwargs: dict[str, object], field: str, words: str) -> None:
    args: dict[str, object] = {
        "provider": "generic",
        "host": "mail.example.com",
        "port": 587,
        "security": "starttls",
        "auth": "password",
    }
    args.update(kwargs)
    with pytest.raises(ProviderConfigError, match=words) as caught:
        _check(**args)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_is_loopback() -> None:
    assert is_loopback("127.1.2.3") and is_loopback("app.localhost")
    assert not is_loopback("example.com") and not is_loopback("192.168.1.1")


# ---- limits ------------------------------------------------------------------


def test_overrides_may_lower_limits() -> None:
    limits = effective_limits(
        MICROSOFT_365.limits, LimitOverrides(messages_per_minute=10, recipients_per_day=500)
    )
    assert limits.messages_per_minute == 10
    assert limits.recipients_per_day == 500
    assert limits.concurrent_connections == 3  # untouched


def test_no_overrides_keeps_the_provider_limits() -> None:
    assert effective_limits(MICROSOFT_365.limits, None) == MICROSOFT_365.limits
    assert effective_limits(MICROSOFT_365.limits, LimitOverrides()) == MICROSOFT_365.limits
    assert effective_limits(GOOGLE_WORKSPACE.limits, {"messages_per_day": None}) == (
        GOOGLE_WORKSPACE.limits
    )


def test_an_override_above_the_provider_limit_is_refused_naming_the_limit() -> None:
    with pytest.raises(
        LimitOverrideError, match="messages_per_minute override 40 is above"
    ) as caught:
        effective_limits(
            MICROSOFT_365.limits, LimitOverrides(messages_per_minute=40), provider="microsoft365"
        )
    assert caught.value.limit == "messages_per_minute"
    assert "Microsoft 365" in str(caught.value)
    assert "limit of 30" in str(caught.value)


def test_a_limit_the_provider_does_not_set_may_be_set_by_the_mailbox() -> None:
    limits = effective_limits(GENERIC.limits, {"messages_per_day": 300, "messages_per_minute": 5})
    assert (limits.messages_per_day, limits.messages_per_minute) == (300, 5)


@pytest.mark.parametrize("value", [0, -1, True, 2.5, "10"])
def test_an_override_must_be_a_positive_whole_number(value: object) -> None:
    with pytest.raises(LimitOverrideError, match="at least 1"):
        overrides: dict[str, Any] = {"recipients_per_message": value}
        effective_limits(GENERIC.limits, overrides)


def test_an_unknown_limit_name_is_refused() -> None:
    with pytest.raises(LimitOverrideError, match="unknown limit 'per_hour'"):
        effective_limits(GENERIC.limits, {"per_hour": 5})


def test_validation_errors_are_value_errors() -> None:
    assert issubclass(LimitOverrideError, ProviderConfigError)
    assert issubclass(ProviderConfigError, ValueError)


_LIMIT_NAMES = [f.name for f in fields(ProviderLimits)]


@given(
    preset=st.sampled_from([MICROSOFT_365, GOOGLE_WORKSPACE, GENERIC]),
    wanted=st.dictionaries(st.sampled_from(_LIMIT_NAMES), st.integers(1, 50_000)),
)
def test_effective_limits_never_exceed_the_provider(preset: object, wanted: dict[str, int]) -> None:
    limits: ProviderLimits = preset.limits  # type: ignore[attr-defined]
    try:
        result = effective_limits(limits, wanted)
    except LimitOverrideError as error:
        ceiling = getattr(limits, error.limit)
        assert ceiling is not None and wanted[error.limit] > ceiling
        return
    for name in _LIMIT_NAMES:
        ceiling, value = getattr(limits, name), getattr(result, name)
        if ceiling is not None:
            assert value is not None and value <= ceiling
        assert value == wanted.get(name, ceiling)
