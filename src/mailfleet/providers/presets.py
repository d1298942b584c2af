"""Provider presets: endpoints, TLS modes, auth mechanisms and limits (PROVIDERS.md)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ProviderLimits:
    """Client-submission limits of one mailbox; ``None`` means the provider sets none."""

    messages_per_minute: int | None
    recipients_per_day: int | None  # rolling 24 hours, recipients not messages
    messages_per_day: int | None  # rolling 24 hours
    recipients_per_message: int
    concurrent_connections: int | None


@dataclass(frozen=True, slots=True)
class ProviderPreset:
    """Everything mailfleet knows about a provider before a mailbox is configured."""

    name: str
    title: str
    smtp_host: str | None
    smtp_port: int
    smtp_security: str  # "starttls", "tls" or "plain" (sandbox only)
    imap_host: str | None
    imap_port: int
    pop3_host: str | None
    pop3_port: int
    auth_mechanisms: tuple[str, ...]
    limits: ProviderLimits
    oauth_scopes: tuple[str, ...] = field(default=())
    # DNS a sending domain publishes for this provider (issue 8): the SPF include,
    # the DKIM selectors and how they are published ("cname" for Microsoft 365,
    # "txt" for Google), and the MX host pattern ({domain_dashed} = dots to dashes).
    spf_include: str | None = None
    dkim_selectors: tuple[str, ...] = field(default=())
    dkim_publish: str = "txt"
    mx_host: str | None = None


MICROSOFT_365 = ProviderPreset(
    name="microsoft365",
    title="Microsoft 365 (Exchange Online)",
    smtp_host="smtp.office365.com",
    smtp_port=587,
    smtp_security="starttls",
    imap_host="outlook.office365.com",
    imap_port=993,
    pop3_host="outlook.office365.com",
    pop3_port=995,
    auth_mechanisms=("XOAUTH2", "LOGIN"),
    limits=ProviderLimits(
        messages_per_minute=30,
        recipients_per_day=10_000,
        messages_per_day=None,
        recipients_per_message=500,
        concurrent_connections=3,
    ),
    oauth_scopes=(
        "https://outlook.office.com/SMTP.Send",
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/POP.AccessAsUser.All",
        "offline_access",
    ),
    spf_include="spf.protection.outlook.com",
    dkim_selectors=("selector1", "selector2"),
    dkim_publish="cname",
    mx_host="{domain_dashed}.mail.protection.outlook.com",
)

GOOGLE_WORKSPACE = ProviderPreset(
    name="google",
    title="Google Workspace",
    smtp_host="smtp.gmail.com",
    smtp_port=587,
    smtp_security="starttls",
    imap_host="imap.gmail.com",
    imap_port=993,
    pop3_host="pop.gmail.com",
    pop3_port=995,
    auth_mechanisms=("XOAUTH2", "PLAIN", "LOGIN"),
    limits=ProviderLimits(
        messages_per_minute=None,
        recipients_per_day=10_000,
        messages_per_day=2_000,
        recipients_per_message=100,
        concurrent_connections=None,
    ),
    oauth_scopes=("https://mail.google.com/",),
    spf_include="_spf.google.com",
    dkim_selectors=("google",),
    dkim_publish="txt",
    mx_host="smtp.google.com",
)

GENERIC = ProviderPreset(
    name="generic",
    title="Generic SMTP/IMAP host",
    smtp_host=None,
    smtp_port=587,
    smtp_security="starttls",
    imap_host=None,
    imap_port=993,
    pop3_host=None,
    pop3_port=995,
    auth_mechanisms=("XOAUTH2", "PLAIN", "LOGIN"),
    limits=ProviderLimits(
        messages_per_minute=None,
        recipients_per_day=None,
        messages_per_day=None,
        recipients_per_message=100,
        concurrent_connections=None,
    ),
)

PRESETS: dict[str, ProviderPreset] = {p.name: p for p in (MICROSOFT_365, GOOGLE_WORKSPACE, GENERIC)}


def get_preset(name: str) -> ProviderPreset:
    """Return the preset called ``name``; unknown names raise ``KeyError`` listing the known."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise KeyError(f"unknown provider {name!r}; known providers: {known}") from None
