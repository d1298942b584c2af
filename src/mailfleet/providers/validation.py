"""Checking a mailbox's endpoint and limits against its provider before anything connects.

:func:`validate_endpoint` refuses configurations that cannot work (Microsoft 365
on port 465, plaintext to a remote host) with a :class:`ProviderConfigError` that
says what to use instead, and returns :class:`ConfigWarning`\\ s for ones that work
today but should change (basic auth on Microsoft 365). :func:`effective_limits`
applies per-mailbox overrides, which may only lower the provider's limits.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from mailfleet.providers.presets import PRESETS, ProviderLimits, get_preset

SECURITY_MODES = ("starttls", "tls", "plain")
AUTH_KINDS = (
    "oauth2_delegated",
    "oauth2_client",
    "password",
    "m365_delegated",
    "m365_app",
    "google_oauth",
    "google_service_account",
)
#: Providers whose mailboxes may speak plaintext SMTP, and then only to loopback.
PLAIN_ALLOWED = frozenset({"generic", "sandbox"})
_KNOWN_PROVIDERS = frozenset(PRESETS) | {"sandbox"}


class ProviderConfigError(ValueError):
    """A mailbox configuration its provider cannot accept; the message says what to use."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class LimitOverrideError(ProviderConfigError):
    """A per-mailbox limit override above the provider's limit, or not a positive number."""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message, field=limit)
        self.limit = limit


@dataclass(frozen=True, slots=True)
class ConfigWarning:
    """A configuration that works today but should change; ``code`` is a stable id."""

    code: str
    field: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class LimitOverrides:
    """Per-mailbox limits; ``None`` keeps the provider's. Values may only lower limits."""

    messages_per_minute: int | None = None
    recipients_per_day: int | None = None
    messages_per_day: int | None = None
    recipients_per_message: int | None = None
    concurrent_connections: int | None = None


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (127.0.0.0/8, ::1 or localhost)."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def validate_endpoint(
    provider: str,
    *,
    smtp_host: str,
    smtp_port: int,
    smtp_security: str,
    auth_kind: str,
) -> list[ConfigWarning]:
    """Check a mailbox's submission endpoint against its provider.

    Raises :class:`ProviderConfigError` for a configuration that cannot work and
    returns the warnings for one that works but should change.
    """
    if provider not in _KNOWN_PROVIDERS:
        known = ", ".join(sorted(_KNOWN_PROVIDERS))
        raise ProviderConfigError(
            f"unknown provider {provider!r}; known providers: {known}", field="provider"
        )
    host = (smtp_host or "").strip()
    if not host:
        raise ProviderConfigError(
            "smtp_host is empty: give the submission server's host name", field="smtp_host"
        )
    if isinstance(smtp_port, bool) or not isinstance(smtp_port, int) or not 0 < smtp_port < 65536:
        raise ProviderConfigError(
            f"smtp_port {smtp_port!r} is not a TCP port (1–65535)", field="smtp_port"
        )
    if smtp_security not in SECURITY_MODES:
        raise ProviderConfigError(
            f"smtp_security {smtp_security!r} is not one of {', '.join(SECURITY_MODES)}",
            field="smtp_security",
        )
    if auth_kind not in AUTH_KINDS:
        raise ProviderConfigError(
            f"auth_kind {auth_kind!r} is not one of {', '.join(AUTH_KINDS)}", field="auth_kind"
        )
    loopback = is_loopback(host)
    _check_plain(provider, host, smtp_security, loopback)
    if provider == "microsoft365":
        return _microsoft(host, smtp_port, smtp_security, auth_kind, loopback)
    if provider == "google":
        return _google(host, smtp_port, smtp_security, auth_kind, loopback)
    return _generic(smtp_port, smtp_security)


def _check_plain(provider: str, host: str, security: str, loopback: bool) -> None:
    if security != "plain":
        return
    if provider not in PLAIN_ALLOWED:
        title = get_preset(provider).title
        raise ProviderConfigError(
            f"{title} needs TLS: use smtp_security 'starttls' on port 587; 'plain' is only for "
            "the sandbox or a generic server on this machine",
            field="smtp_security",
        )
    if not loopback:
        raise ProviderConfigError(
            f"smtp_security 'plain' would send credentials and mail unencrypted to {host}: it "
            "is allowed only to a loopback host (127.0.0.1, ::1, localhost); use 'starttls' "
            "or 'tls'",
            field="smtp_security",
        )


def _microsoft(
    host: str, port: int, security: str, auth_kind: str, loopback: bool
) -> list[ConfigWarning]:
    if port == 465 or security == "tls":
        raise ProviderConfigError(
            "Microsoft 365 does not offer implicit TLS or port 465 for submission: use "
            "smtp.office365.com port 587 with STARTTLS (smtp_security 'starttls')",
            field="smtp_port" if port == 465 else "smtp_security",
        )
    warnings: list[ConfigWarning] = []
    if not loopback:
        if port not in (587, 25):
            raise ProviderConfigError(
                f"Microsoft 365 accepts submission on port 587 with STARTTLS, not {port}",
                field="smtp_port",
            )
        if port == 25:
            warnings.append(
                ConfigWarning(
                    "m365.port_25",
                    "smtp_port",
                    "port 25 with STARTTLS works for Microsoft 365, but 587 is the rule and "
                    "port 25 is often blocked outbound: use 587",
                )
            )
        if host.lower().rstrip(".") != "smtp.office365.com":
            warnings.append(
                ConfigWarning(
                    "m365.unusual_host",
                    "smtp_host",
                    f"Microsoft 365 submission is smtp.office365.com, not {host}",
                )
            )
    if auth_kind == "password":
        warnings.append(
            ConfigWarning(
                "m365.basic_auth_deprecated",
                "auth_kind",
                "basic authentication (password) for Microsoft 365 SMTP is being retired: "
                "expect '550 5.7.30 Basic authentication is not supported for Client "
                "Submission'; move this mailbox to OAuth (XOAUTH2)",
            )
        )
    return warnings


def _google(
    host: str, port: int, security: str, auth_kind: str, loopback: bool
) -> list[ConfigWarning]:
    if (port, security) == (465, "starttls") or (port, security) == (587, "tls"):
        raise ProviderConfigError(
            f"Google Workspace speaks {'implicit TLS' if port == 465 else 'STARTTLS'} on port "
            f"{port}: use 587 with 'starttls' or 465 with 'tls'",
            field="smtp_security",
        )
    warnings: list[ConfigWarning] = []
    if not loopback:
        if port not in (587, 465):
            raise ProviderConfigError(
                f"Google Workspace accepts submission on 587 (STARTTLS) or 465 (TLS), not {port}",
                field="smtp_port",
            )
        if host.lower().rstrip(".") != "smtp.gmail.com":
            warnings.append(
                ConfigWarning(
                    "google.unusual_host",
                    "smtp_host",
                    f"Google Workspace submission is smtp.gmail.com, not {host} (the "
                    "smtp-relay service has other rules and limits)",
                )
            )
    if auth_kind == "password":
        warnings.append(
            ConfigWarning(
                "google.password",
                "auth_kind",
                "Google accepts a password over SMTP only as an app password with 2-Step "
                "Verification on ('535 5.7.8' otherwise); OAuth is preferred",
            )
        )
    return warnings


def _generic(port: int, security: str) -> list[ConfigWarning]:
    warnings: list[ConfigWarning] = []
    # RFC 8314: 465 is implicit TLS and 587 is STARTTLS; a mismatch usually fails
    # with "wrong version number", but some servers do it differently.
    if (port, security) in ((465, "starttls"), (587, "tls")):
        expected = "tls" if port == 465 else "starttls"
        warnings.append(
            ConfigWarning(
                "generic.port_security_mismatch",
                "smtp_security",
                f"port {port} usually speaks '{expected}', not '{security}'",
            )
        )
    return warnings


def effective_limits(
    preset_limits: ProviderLimits,
    overrides: LimitOverrides | Mapping[str, int | None] | None,
    *,
    provider: str | None = None,
) -> ProviderLimits:
    """Return the provider's limits lowered by per-mailbox ``overrides``.

    An override above the provider's limit, or below 1, raises
    :class:`LimitOverrideError` naming the limit; ``None`` keeps the provider's.
    """
    if overrides is None:
        return preset_limits
    values = _override_values(overrides)
    who = (
        PRESETS[provider].title if provider is not None and provider in PRESETS else "the provider"
    )
    changes: dict[str, int] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LimitOverrideError(
                f"{name} override must be a whole number of at least 1, not {value!r}",
                limit=name,
            )
        ceiling = getattr(preset_limits, name)
        if ceiling is not None and value > ceiling:
            raise LimitOverrideError(
                f"{name} override {value} is above {who}'s limit of {ceiling}; overrides "
                "may only lower a provider's limits",
                limit=name,
            )
        changes[name] = value
    return replace(preset_limits, **changes)


def _override_values(
    overrides: LimitOverrides | Mapping[str, int | None],
) -> dict[str, int | None]:
    names = [f.name for f in fields(ProviderLimits)]
    if isinstance(overrides, LimitOverrides):
        return {name: getattr(overrides, name) for name in names}
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise LimitOverrideError(
            f"unknown limit {unknown[0]!r}; limits are: {', '.join(names)}", limit=unknown[0]
        )
    return dict(overrides)
