"""What each provider offers, allows and means, as data: endpoints, auth, limits and replies."""

from mailfleet.providers.bounces import BounceKind, bounce_kind, is_hard_bounce
from mailfleet.providers.faults import classify_exception
from mailfleet.providers.outcomes import Outcome, OutcomeKind, Stage
from mailfleet.providers.presets import (
    GENERIC,
    GOOGLE_WORKSPACE,
    MICROSOFT_365,
    PRESETS,
    ProviderLimits,
    ProviderPreset,
    get_preset,
)
from mailfleet.providers.replies import classify_reply
from mailfleet.providers.reply_text import parse_enhanced, parse_retry_after
from mailfleet.providers.validation import (
    ConfigWarning,
    LimitOverrideError,
    LimitOverrides,
    ProviderConfigError,
    effective_limits,
    validate_endpoint,
)

__all__ = [
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
]
