"""What each provider offers and allows, as data: endpoints, auth and limits."""

from mailfleet.providers.presets import (
    GENERIC,
    GOOGLE_WORKSPACE,
    MICROSOFT_365,
    PRESETS,
    ProviderLimits,
    ProviderPreset,
    get_preset,
)

__all__ = [
    "GENERIC",
    "GOOGLE_WORKSPACE",
    "MICROSOFT_365",
    "PRESETS",
    "ProviderLimits",
    "ProviderPreset",
    "get_preset",
]
