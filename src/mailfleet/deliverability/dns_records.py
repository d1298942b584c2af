"""The records a sending domain should publish for its provider, as text to paste."""

from __future__ import annotations

import re

from mailfleet.providers import ProviderPreset

MAX_SPF_LOOKUPS = 10
# MX hosts each provider hands out (suffixes, lowercase); any one of them is right.
PROVIDER_MX_SUFFIXES: dict[str, tuple[str, ...]] = {
    "microsoft365": (".mail.protection.outlook.com", ".mx.microsoft"),
    "google": ("google.com", "googlemail.com"),
}
_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")


def normalize_domain(text: str) -> str | None:
    """``text`` as a lowercase domain name, or ``None`` when it is not one."""
    name = text.strip().lower().rstrip(".")
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    return name if _HOSTNAME.match(name) else None


def tenant_name(tenant: str | None) -> str:
    """The ``onmicrosoft.com`` label of a Microsoft 365 tenant, or a placeholder."""
    if not tenant:
        return "<tenant>"
    return tenant.lower().removesuffix(".onmicrosoft.com")


def txt(name: str, value: str) -> str:
    """A TXT record as one would type it into a DNS panel."""
    return f'{name} TXT "{value}"'


def spf_value(preset: ProviderPreset, existing: str | None = None) -> str:
    """The SPF record to publish: ``existing`` with the provider include added, or a fresh one."""
    include = f"include:{preset.spf_include}" if preset.spf_include else None
    if existing and include:
        head, _, rest = existing.partition(" ")
        return f"{head} {include} {rest}".strip()
    return f"v=spf1 {include} -all" if include else "v=spf1 mx -all"


def expected_mx(domain: str, preset: ProviderPreset) -> str:
    """The MX record the provider asks for."""
    host = (preset.mx_host or f"mail.{domain}").format(domain_dashed=domain.replace(".", "-"))
    priority = 0 if preset.name == "microsoft365" else 1
    return f"{domain} MX {priority} {host}"


def mx_matches(host: str, preset: ProviderPreset) -> bool:
    """True when ``host`` is one of the provider's MX hosts (always true for generic)."""
    suffixes = PROVIDER_MX_SUFFIXES.get(preset.name)
    if suffixes is None:
        return True
    host = host.lower().rstrip(".")
    return any(host == s.lstrip(".") or host.endswith("." + s.lstrip(".")) for s in suffixes)


def dkim_fix(domain: str, selector: str, preset: ProviderPreset, tenant: str | None) -> str:
    """The DKIM record to publish for ``selector``."""
    name = f"{selector}._domainkey.{domain}"
    if preset.dkim_publish == "cname":
        dashed = domain.replace(".", "-")
        target = f"{selector}-{dashed}._domainkey.{tenant_name(tenant)}.onmicrosoft.com"
        return (
            f"{name} CNAME {target} — then turn DKIM signing on: "
            f"Set-DkimSigningConfig -Identity {domain} -Enabled $true"
        )
    where = (
        "Admin console > Apps > Google Workspace > Gmail > Authenticate email"
        if preset.name == "google"
        else "your provider's DKIM settings"
    )
    return txt(name, f"v=DKIM1; k=rsa; p=<public key from {where}>")


def dmarc_value(domain: str, policy: str = "quarantine") -> str:
    """The DMARC record to publish (relaxed alignment, aggregate reports to the domain)."""
    return f"v=DMARC1; p={policy}; rua=mailto:dmarc@{domain}; adkim=r; aspf=r"


def dmarc_fix(domain: str, policy: str = "quarantine") -> str:
    """The DMARC TXT record, named."""
    return txt(f"_dmarc.{domain}", dmarc_value(domain, policy))
