"""Recipient domains: what a cap per recipient domain counts, and which domains are shared.

A recipient domain is the part of a normalised address after ``@``. Free-mail
and consumer providers (gmail.com, outlook.com, …) host millions of unrelated
people: a workspace-wide cap per domain would throttle them for nothing, and a
reply from one of them says nothing about anyone else there — so they are no
*company* domain (see :func:`company_domain`), while a mailbox's own daily cap
per recipient domain still applies to them.
"""

from __future__ import annotations

FREEMAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "aol.com",
        "fastmail.com",
        "gmail.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "googlemail.com",
        "hey.com",
        "hotmail.co.uk",
        "hotmail.com",
        "hotmail.de",
        "hotmail.fr",
        "icloud.com",
        "live.com",
        "mac.com",
        "mail.com",
        "mail.ru",
        "me.com",
        "msn.com",
        "outlook.com",
        "outlook.de",
        "outlook.fr",
        "proton.me",
        "protonmail.com",
        "qq.com",
        "t-online.de",
        "web.de",
        "yahoo.co.uk",
        "yahoo.com",
        "yahoo.de",
        "yahoo.fr",
        "yandex.ru",
        "zoho.com",
    }
)
"""Consumer mailbox providers: shared by unrelated people."""


def recipient_domain(address: str) -> str:
    """The lower-cased domain of ``address`` ("" when it has none)."""
    at = address.rfind("@")
    return address[at + 1 :].strip().lower() if at >= 0 else ""


def is_freemail(domain: str) -> bool:
    """Whether ``domain`` is a consumer mailbox provider."""
    return domain.lower() in FREEMAIL_DOMAINS


def company_domain(address: str) -> str | None:
    """The company ``address`` belongs to, by its domain; None for free-mail addresses."""
    domain = recipient_domain(address)
    if not domain or is_freemail(domain):
        return None
    return domain
