"""Validating and normalising lead addresses, and suppression lists.

``email_validator.validate_email`` is the authority (syntax only, no DNS), but
it costs about 50 µs an address, most of it in Unicode domain checks, which
would make a 100,000-row import take five seconds. Plain ASCII addresses, the
overwhelming majority, take a fast path that accepts only what
``validate_email`` accepts and normalises them the same way (a property test
holds the two together); everything else, including every address that is
invalid, goes through ``validate_email`` for its verdict and its message.

Addresses whose local part is not ASCII are refused: they need SMTPUTF8,
which mailfleet does not send.

The normalised form, used to find duplicates and to match suppressions, is the
ASCII form (IDNA domain) lower-cased throughout. Local parts are case-sensitive
by the letter of RFC 5321, but no mainstream mailbox provider treats them so,
and ``Bob@x.com`` and ``bob@x.com`` in one list are the same person. Gmail's
dots and ``+tags`` are left alone: elsewhere they are distinct mailboxes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import email_validator
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

__all__ = ["DomainAllowance", "InvalidAddress", "LeadAddress", "Suppressions", "normalize_address"]

DomainAllowance = bool | Literal["reserved"]
"""False: real domains only; True: also ``*.test`` (the sandbox); ``"reserved"``: every
special-use domain (``.test``, ``.local``, ``.localhost``, ``.invalid``, …), for rehearsals
against test servers (``leads import --allow-reserved-domains``)."""

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"(?:[A-Za-z0-9][A-Za-z0-9-]{0,61})?[A-Za-z]"  # every TLD ends with a letter
_PLAIN = re.compile(rf"([{_ATEXT}]+(?:\.[{_ATEXT}]+)*)@((?:{_LABEL}\.)+{_TLD})")
# "ab--" labels are either Punycode, which needs IDNA checks, or invalid (RFC 5891).
_HYPHENS34 = re.compile(r"(?:^|\.)..--")
_CASE_INSENSITIVE = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)
_MAX_ADDRESS = 254
_MAX_DOMAIN = 253


def _special_suffixes(allow_test_domains: DomainAllowance) -> tuple[str, ...]:
    names = [d for d in email_validator.SPECIAL_USE_DOMAIN_NAMES]
    if allow_test_domains == "reserved":
        return ()
    if allow_test_domains:
        names = [d for d in names if d != "test"]
    return tuple(f".{d}" for d in names)


_SPECIAL: dict[DomainAllowance, tuple[str, ...]] = {
    flag: _special_suffixes(flag) for flag in (False, True, "reserved")
}


class InvalidAddress(ValueError):
    """An address ``validate_email`` refuses; the message is its explanation."""


@dataclass(frozen=True, slots=True)
class LeadAddress:
    """A valid address: as it will be sent to, and normalised for matching."""

    email: str
    normalized: str


def _fast(raw: str, allow_test_domains: DomainAllowance) -> tuple[str, str] | None:
    """Return (email, normalised) for a plain ASCII address, or None: validate_email decides."""
    match = _PLAIN.fullmatch(raw)
    if match is None or len(raw) > _MAX_ADDRESS:
        return None
    local, domain = match.groups()
    domain = domain.lower()
    if (
        len(domain) > _MAX_DOMAIN
        or ("--" in domain and _HYPHENS34.search(domain))
        or f".{domain}".endswith(_SPECIAL[allow_test_domains])
    ):
        return None
    if local.lower() in _CASE_INSENSITIVE:  # RFC 2142 names, lower-cased as validate_email does
        local = local.lower()
    email = f"{local}@{domain}"
    return email, email.lower()


def normalize_address(raw: str, *, allow_test_domains: DomainAllowance = False) -> LeadAddress:
    """Validate ``raw`` (syntax only) and return it normalised; raise :class:`InvalidAddress`.

    ``allow_test_domains`` accepts ``@*.test`` addresses, for the sandbox.
    """
    email, normalized = normalize_pair(raw, allow_test_domains)
    return LeadAddress(email=email, normalized=normalized)


def normalize_pair(raw: str, allow_test_domains: DomainAllowance) -> tuple[str, str]:
    """:func:`normalize_address` as a bare ``(email, normalized)`` tuple, for hot loops."""
    fast = _fast(raw, allow_test_domains)
    if fast is not None:
        return fast
    if allow_test_domains == "reserved":
        reserved = _reserved_pair(raw)
        if reserved is not None:
            return reserved
    try:
        result = validate_email(
            raw,
            check_deliverability=False,
            allow_smtputf8=False,
            test_environment=bool(allow_test_domains),
        )
    except EmailNotValidError as exc:
        message = str(exc).rstrip(".")
        if "special-use" in message:
            message += " (a rehearsal against test servers: --allow-reserved-domains)"
        raise InvalidAddress(message) from exc
    # allow_smtputf8=False guarantees an ASCII form exists.
    ascii_email = result.ascii_email or result.normalized
    return result.normalized, ascii_email.lower()


def _reserved_pair(raw: str) -> tuple[str, str] | None:
    """An address at a special-use domain, validated as if its suffix were ``.test``."""
    local, at, domain = raw.rpartition("@")
    low = domain.lower()
    suffix = next(
        (d for d in email_validator.SPECIAL_USE_DOMAIN_NAMES if low == d or low.endswith(f".{d}")),
        None,
    )
    if not at or suffix is None:
        return None
    stand_in = f"{local}@{domain[: len(domain) - len(suffix)]}test"
    try:
        result = validate_email(
            stand_in, check_deliverability=False, allow_smtputf8=False, test_environment=True
        )
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc).rstrip(".")) from exc
    ascii_email = result.ascii_email or result.normalized
    return (
        result.normalized[:-4] + suffix,
        (ascii_email[:-4] + suffix).lower(),
    )


@dataclass(frozen=True)
class Suppressions:
    """Addresses and domains no campaign may mail, each with its reason ("hard_bounce"…).

    Call it with a normalised address to get the reason, or None. A domain
    entry covers its subdomains too (``acme.com`` covers ``eu.acme.com``).
    """

    emails: Mapping[str, str] = field(default_factory=dict)
    domains: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Callers may hold mixed-case entries; compare lower-cased.
        object.__setattr__(self, "emails", {k.lower(): v for k, v in self.emails.items()})
        object.__setattr__(self, "domains", {k.lower(): v for k, v in self.domains.items()})

    def __call__(self, normalized: str) -> str | None:
        """Return why ``normalized`` is suppressed, or None."""
        reason = self.emails.get(normalized)
        if reason is not None or not self.domains:
            return reason
        domain = normalized.rpartition("@")[2]
        while domain:
            reason = self.domains.get(domain)
            if reason is not None:
                return reason
            domain = domain.partition(".")[2]
        return None
