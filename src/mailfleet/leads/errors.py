"""What can be wrong with a lead file: the whole file, or one row of it.

A file-level problem (empty file, no email column, a mapping naming a missing
column) raises :class:`LeadFileError` and nothing is imported. A row-level
problem is a :class:`RowError` value: the row is skipped, reported, and the
rest of the file is processed.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LeadFileError", "RowError", "RowErrorKind"]

_SHOW_MAX = 80
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


class RowErrorKind(enum.StrEnum):
    """Why a row was skipped; the summary counts rows by these."""

    MISSING_EMAIL = "missing_email"
    INVALID_EMAIL = "invalid_email"
    DUPLICATE = "duplicate"
    TOO_MANY_CELLS = "too_many_cells"
    INVALID_TIMEZONE = "invalid_timezone"
    CONTROL_CHARACTERS = "control_characters"
    SUPPRESSED = "suppressed"
    UNREADABLE = "unreadable"


def show(value: str) -> str:
    """Quote ``value`` for a message: control characters escaped, long values cut."""
    shown = _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], value)
    if len(shown) > _SHOW_MAX:
        shown = shown[: _SHOW_MAX - 1] + "…"
    return f'"{shown}"'


@dataclass(frozen=True, slots=True)
class RowError:
    """One skipped row: where (file, spreadsheet row, column header), the value, and why.

    ``row`` counts as a spreadsheet does: the header is row 1 and a quoted cell
    spanning several lines is still one row. ``reason`` reads after the value,
    e.g. ``is not a valid address (…)``.
    """

    source: str
    row: int
    field: str | None
    value: str | None
    kind: RowErrorKind
    reason: str

    def __str__(self) -> str:
        where = f"{self.source} row {self.row}"
        if self.field is not None:
            where += f', column "{self.field}"'
        if self.value is None:
            return f"{where}: {self.reason}"
        return f"{where}: {show(self.value)} {self.reason}"


class LeadFileError(ValueError):
    """The file as a whole cannot be imported; ``headers`` lists what its header row held."""

    def __init__(self, source: str, problem: str, headers: Sequence[str] = ()) -> None:
        self.source = source
        self.problem = problem
        self.headers = tuple(headers)
        message = f"{source}: {problem}"
        if self.headers:
            message += "; headers found: " + ", ".join(show(h) for h in self.headers)
        super().__init__(message)
