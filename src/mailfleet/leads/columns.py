"""Which column of a lead file is which field.

Headers are matched to the standard lead fields by alias, ignoring case,
spaces, underscores, dashes and dots, so the exports of Smartlead, Instantly,
Apollo, Lemlist and EmailBison import as they are ("Email", "E-mail",
"Email Address", "email_address", "Work Email", "firstName", "Company Name",
"Job Title", "Time Zone", …). Every other column is a custom field whose key is
a snake_case Jinja identifier, usable in templates as ``{{ linkedin_url }}``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mailfleet.content.templates import LEAD_VARIABLES, SENDER_VARIABLES
from mailfleet.leads.errors import LeadFileError

__all__ = ["STANDARD_FIELDS", "Column", "custom_key", "header_key", "map_columns"]

STANDARD_FIELDS: tuple[str, ...] = (
    "email",
    "first_name",
    "last_name",
    "company",
    "title",
    "timezone",
)
"""Lead fields with their own column in the store, in display order."""

# Aliases as header_key() sees them, best first: when two columns match one
# field (Apollo has "Company" and "Company Name for Emails"), the better alias
# wins and the other column stays a custom field.
_ALIASES: dict[str, tuple[str, ...]] = {
    "email": ("email", "emailaddress", "workemail", "businessemail", "professionalemail"),
    "first_name": ("firstname", "first", "givenname", "fname"),
    "last_name": ("lastname", "last", "surname", "familyname", "lname"),
    "company": (
        "company",
        "companyname",
        "organization",
        "organisation",
        "organizationname",
        "organisationname",
        "accountname",
    ),
    "title": ("title", "jobtitle", "position", "role"),
    "timezone": ("timezone", "tz", "leadtimezone"),
}

# Names a custom key must not take: they are lead fields, sender variables,
# or mean something else to Jinja ({{ none }}, {{ self }}, {{ loop }}…).
_RESERVED = (
    LEAD_VARIABLES
    | SENDER_VARIABLES
    | frozenset(
        {
            "and",
            "or",
            "not",
            "in",
            "is",
            "if",
            "else",
            "true",
            "false",
            "none",
            "self",
            "loop",
            "caller",
            "varargs",
            "kwargs",
        }
    )
)

_KEY_NOISE = re.compile(r"[\s_\-.]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the file: its position, header, and the field it fills.

    ``target`` is a standard field name or a custom key; ``None`` means the
    column is ignored (an explicit mapping to "").
    """

    index: int
    header: str
    target: str | None
    standard: bool


def header_key(header: str) -> str:
    """Return the form headers are compared in: case-folded, without spaces, _ - or dots."""
    return _KEY_NOISE.sub("", header.casefold())


def custom_key(header: str) -> str:
    """Return a snake_case identifier for ``header`` ("LinkedIn URL" gives "linkedin_url").

    May be empty when the header has no letters or digits; a leading digit gets
    a ``field_`` prefix so the key stays a valid Jinja name.
    """
    folded = unicodedata.normalize("NFKD", header)
    ascii_only = folded.encode("ascii", "ignore").decode("ascii")
    # Split camelCase only in one-word headers: "phoneNumber" is two words, while
    # in "LinkedIn URL" the capital I is branding.
    if not _KEY_NOISE.search(ascii_only.strip()):
        ascii_only = _CAMEL.sub("_", ascii_only)
    snake = _NON_WORD.sub("_", ascii_only.lower()).strip("_")
    if snake[:1].isdigit():
        snake = f"field_{snake}"
    return snake


def _unique(key: str, taken: set[str]) -> str:
    if key not in taken and key not in _RESERVED:
        return key
    n = 2
    while f"{key}_{n}" in taken:
        n += 1
    return f"{key}_{n}"


def _target(value: str) -> tuple[str | None, bool]:
    """Read a mapping value: a standard field (by alias-free key), a custom key, or ignore."""
    if not value.strip():
        return None, False
    for name in STANDARD_FIELDS:
        if header_key(value) == header_key(name):
            return name, True
    return custom_key(value), False


def map_columns(
    headers: Sequence[str], *, source: str, mapping: Mapping[str, str] | None = None
) -> tuple[Column, ...]:
    """Assign every header a target; raise :class:`LeadFileError` if there is no email column.

    ``mapping`` (header → field) overrides the aliases: its keys are matched like
    headers, its values name a standard field, a custom key, or "" to ignore.
    """
    assigned: dict[int, tuple[str | None, bool]] = {}
    keys = [header_key(h) for h in headers]
    for wanted, value in (mapping or {}).items():
        matches = [i for i, h in enumerate(headers) if h == wanted] or [
            i for i, k in enumerate(keys) if k == header_key(wanted)
        ]
        if not matches:
            raise LeadFileError(
                source, f'the mapping names a column "{wanted}" not in the file', headers
            )
        target, standard = _target(value)
        if standard and any(t == (target, True) for t in assigned.values()):
            raise LeadFileError(source, f"the mapping assigns {target} to two columns", headers)
        assigned[matches[0]] = (target, standard)

    for name in STANDARD_FIELDS:
        if any(t == (name, True) for t in assigned.values()):
            continue
        for alias in _ALIASES[name]:
            free = [i for i, k in enumerate(keys) if k == alias and i not in assigned]
            if free:
                assigned[free[0]] = (name, True)
                break

    if not any(t == ("email", True) for t in assigned.values()):
        raise LeadFileError(source, "no email column (name one with a mapping)", headers)

    taken: set[str] = set()
    columns: list[Column] = []
    for index, header in enumerate(headers):
        target, standard = assigned.get(index, (custom_key(header), False))
        if target is not None and not standard:
            target = _unique(target or f"column_{index + 1}", taken)
            taken.add(target)
        columns.append(Column(index=index, header=header, target=target, standard=standard))
    return tuple(columns)
