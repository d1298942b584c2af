"""The public surface of ``mailfleet.providers``, guarded like httpx guards its exports."""

from __future__ import annotations

import dataclasses

import mailfleet.providers as providers
from mailfleet.providers import Outcome, OutcomeKind, Stage


def test_exported_names() -> None:
    assert set(providers.__all__) == {
        "GENERIC",
        "GOOGLE_WORKSPACE",
        "MICROSOFT_365",
        "PRESETS",
        "BounceKind",
        "ConfigWarning",
        "LimitOverrideError",
        "LimitOverrides",
        "Outcome",
        "OutcomeKind",
        "ProviderConfigError",
        "ProviderLimits",
        "ProviderPreset",
        "Stage",
        "bounce_kind",
        "classify_exception",
        "classify_reply",
        "effective_limits",
        "get_preset",
        "is_hard_bounce",
        "parse_enhanced",
        "parse_retry_after",
        "validate_endpoint",
    }
    for name in providers.__all__:
        assert getattr(providers, name) is not None


def test_outcome_kinds_fit_the_send_outcome_column() -> None:
    # store.models.Send.outcome is String(32).
    assert all(len(kind.value) <= 32 for kind in OutcomeKind)
    assert {kind.value for kind in OutcomeKind} == {
        "accepted",
        "retry",
        "slow",
        "pause_mailbox",
        "pause_tenant",
        "fix_config",
        "drop_recipient",
        "rejected",
        "unknown",
    }


def test_stages_carry_the_transport_stage_values() -> None:
    assert {
        "connect",
        "banner",
        "ehlo",
        "starttls",
        "tls",
        "token",
        "auth",
        "mail",
        "rcpt",
        "data",
        "rset",
        "quit",
    } == {stage.value for stage in Stage}


def test_outcome_is_frozen() -> None:
    assert dataclasses.is_dataclass(Outcome)
    assert Outcome.__dataclass_params__.frozen  # type: ignore[attr-defined]
