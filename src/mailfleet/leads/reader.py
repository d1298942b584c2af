"""Reading a CSV lead file into validated leads and row errors.

:func:`read_leads` streams (one :class:`ParsedLead` or :class:`RowError` per
row, for big files); :func:`parse_leads` collects everything into a
:class:`LeadParseResult`. Both only read the text stream they are given.

The file may start with a UTF-8 byte-order mark, use ``,``, ``;`` or tab
(sniffed from the header line), quote cells across line breaks and end lines
with CRLF. Open it with ``newline=""`` as the :mod:`csv` module asks. Cells
are stripped of surrounding whitespace; empty custom cells are not stored.
A row with more cells than the header is refused only when an extra cell
holds something: trailing delimiters are common in spreadsheet exports.
"""

from __future__ import annotations

import csv
import functools
import itertools
import re
import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TextIO

from mailfleet.leads.addresses import DomainAllowance, InvalidAddress, normalize_pair
from mailfleet.leads.columns import Column, map_columns
from mailfleet.leads.errors import LeadFileError, RowError, RowErrorKind

__all__ = [
    "ImportSummary",
    "LeadParseResult",
    "LeadReader",
    "ParsedLead",
    "canonical_timezone",
    "parse_leads",
    "read_leads",
]

Suppressed = Callable[[str], str | None]
"""Given a normalised address, the reason it is suppressed, or None."""

# Line breaks and other controls in a field that may end up in a header
# (names go into To:, any standard field into a Subject) — header injection.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_DELIMITERS = (",", ";", "\t")
_OPTIONAL = ("first_name", "last_name", "company", "title", "timezone")


@dataclass(frozen=True, slots=True)
class ParsedLead:
    """A valid row: the standard fields (None when empty), custom fields, and its row."""

    email: str
    email_normalized: str
    first_name: str | None
    last_name: str | None
    company: str | None
    title: str | None
    timezone: str | None
    fields: dict[str, str]
    row: int

    def template_context(self) -> dict[str, str | None]:
        """Return the lead's template variables: custom fields, then the standard ones."""
        context: dict[str, str | None] = dict(self.fields)
        context.update(
            email=self.email,
            first_name=self.first_name,
            last_name=self.last_name,
            company=self.company,
            title=self.title,
            timezone=self.timezone,
        )
        return context


@dataclass(frozen=True)
class ImportSummary:
    """Counts for one file: rows with content, accepted, blank, and errors by kind."""

    source: str
    total_rows: int
    accepted: int
    blank_rows: int
    errors_by_kind: Mapping[RowErrorKind, int]

    @property
    def rejected(self) -> int:
        """Rows skipped with an error."""
        return sum(self.errors_by_kind.values())

    def __str__(self) -> str:
        text = f"{self.source}: {self.total_rows} rows, {self.accepted} accepted"
        if self.errors_by_kind:
            kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.errors_by_kind.items()))
            text += f", {self.rejected} skipped ({kinds})"
        return text


@dataclass(frozen=True)
class LeadParseResult:
    """Everything read from one file."""

    source: str
    columns: tuple[Column, ...]
    leads: tuple[ParsedLead, ...]
    errors: tuple[RowError, ...]
    summary: ImportSummary

    @property
    def custom_fields(self) -> tuple[str, ...]:
        """Keys of the custom fields, in column order (for the templates' allowed names)."""
        return tuple(c.target for c in self.columns if c.target is not None and not c.standard)


@functools.cache
def _zone_names() -> dict[str, str]:
    """Map case-folded IANA names to their spelling, from the system's tz database."""
    return {name.casefold(): name for name in zoneinfo.available_timezones()}


def canonical_timezone(value: str) -> str | None:
    """Return the IANA name ``value`` denotes (case-insensitively), or None if none."""
    names = _zone_names()
    if names:
        return names.get(value.casefold())
    try:  # no tz list on this system (tzdata missing): ask zoneinfo directly
        zoneinfo.ZoneInfo(value)
    except (KeyError, ValueError, OSError):
        return None
    return value


def _sniff(line: str) -> str:
    """Pick the delimiter occurring most often outside quotes in the header line."""
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])  # ties go to the earlier, ","
    return best if counts[best] else ","


class LeadReader:
    """Iterate a lead file row by row; the header is read (and checked) on construction.

    Each item is a :class:`ParsedLead` or a :class:`RowError`; :attr:`summary`
    is complete once the iteration has ended.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        source: str,
        mapping: Mapping[str, str] | None = None,
        suppressed: Suppressed | None = None,
        allow_test_domains: DomainAllowance = False,
    ) -> None:
        self.source = source
        self._suppressed = suppressed
        self._allow_test = allow_test_domains
        self._accepted = 0
        self._blank = 0
        self._errors: Counter[RowErrorKind] = Counter()

        first = stream.readline()
        self._header_row = 1
        if first.startswith("\ufeff"):
            first = first[1:]
        while first and not first.strip():
            first = stream.readline()
            self._header_row += 1
        if not first:
            raise LeadFileError(source, "the file is empty")
        self._reader = csv.reader(itertools.chain([first], stream), delimiter=_sniff(first))
        try:
            headers = [h.strip() for h in next(self._reader)]
        except csv.Error as exc:
            raise LeadFileError(source, f"the header row cannot be read ({exc})") from exc
        self.headers = tuple(headers)
        self.columns = map_columns(headers, source=source, mapping=mapping)
        self._rows = self._iterate()

    @property
    def summary(self) -> ImportSummary:
        """Counts so far; final once iteration is over."""
        return ImportSummary(
            source=self.source,
            total_rows=self._accepted + sum(self._errors.values()),
            accepted=self._accepted,
            blank_rows=self._blank,
            errors_by_kind=dict(self._errors),
        )

    def __iter__(self) -> LeadReader:
        return self

    def __next__(self) -> ParsedLead | RowError:
        return next(self._rows)

    def _error(
        self, row: int, column: Column | None, value: str | None, kind: RowErrorKind, reason: str
    ) -> RowError:
        self._errors[kind] += 1
        header = column.header if column is not None else None
        return RowError(self.source, row, header, value, kind, reason)

    def _iterate(self) -> Iterator[ParsedLead | RowError]:
        # A hot loop over up to millions of rows: everything it needs is local,
        # and short rows are padded so every index below is in range.
        width = len(self.columns)
        by_target = {c.target: c for c in self.columns if c.standard}
        email_col = by_target["email"]
        email_i = email_col.index
        # Absent standard columns read the always-empty pad cell at index `width`.
        std_cols = [by_target.get(name) for name in _OPTIONAL]
        std_idx = [width if c is None else c.index for c in std_cols]
        custom = [(c.index, c.target) for c in self.columns if c.target and not c.standard]
        tz_col = by_target.get("timezone")
        suppressed = self._suppressed
        allow_test = self._allow_test
        control = _CONTROL.search
        error = self._error
        zones: dict[str, str | None] = {}
        seen: dict[str, int] = {}
        reader = self._reader
        row = self._header_row
        pad = [""] * (width + 1)

        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row += 1
                reason = f"cannot be read as CSV ({exc})"
                yield error(row, None, None, RowErrorKind.UNREADABLE, reason)
                continue
            row += 1
            n = len(cells)
            if n > width:
                if any(c.strip() for c in cells[width:]):
                    reason = f"has {n} cells but the header has {width} columns"
                    yield error(row, None, None, RowErrorKind.TOO_MANY_CELLS, reason)
                    continue
                cells = cells[:width]
                n = width
            cells.extend(pad[n:])
            raw_email = cells[email_i].strip()
            if not raw_email:
                if not any(c.strip() for c in cells):
                    self._blank += 1
                    continue
                yield error(row, email_col, None, RowErrorKind.MISSING_EMAIL, "no address")
                continue

            first, last, company, title, tz = values = [cells[i].strip() for i in std_idx]
            if control(raw_email) or control("".join(values)):
                column, value = next(
                    (c, v)
                    for c, v in [(email_col, raw_email), *zip(std_cols, values, strict=True)]
                    if c is not None and control(v)
                )
                reason = "contains a line break or control character"
                yield error(row, column, value, RowErrorKind.CONTROL_CHARACTERS, reason)
                continue

            try:
                email, normalized = normalize_pair(raw_email, allow_test)
            except InvalidAddress as exc:
                reason = f"is not a valid address ({exc})"
                yield error(row, email_col, raw_email, RowErrorKind.INVALID_EMAIL, reason)
                continue

            if tz:
                canonical = zones.get(tz, "")
                if canonical == "":
                    canonical = zones[tz] = canonical_timezone(tz)
                if canonical is None:
                    reason = 'is not an IANA timezone (such as "Europe/Paris")'
                    yield error(row, tz_col, tz, RowErrorKind.INVALID_TIMEZONE, reason)
                    continue
                tz = canonical

            if suppressed is not None:
                why = suppressed(normalized)
                if why is not None:
                    reason = f"is suppressed ({why})"
                    yield error(row, email_col, raw_email, RowErrorKind.SUPPRESSED, reason)
                    continue
            first_row = seen.get(normalized)
            if first_row is not None:
                reason = f"duplicates row {first_row}"
                yield error(row, email_col, raw_email, RowErrorKind.DUPLICATE, reason)
                continue
            seen[normalized] = row

            self._accepted += 1
            yield ParsedLead(
                email=email,
                email_normalized=normalized,
                first_name=first or None,
                last_name=last or None,
                company=company or None,
                title=title or None,
                timezone=tz or None,
                fields={key: v for index, key in custom if (v := cells[index].strip())},
                row=row,
            )


def read_leads(
    stream: TextIO,
    *,
    source: str,
    mapping: Mapping[str, str] | None = None,
    suppressed: Suppressed | None = None,
    allow_test_domains: DomainAllowance = False,
) -> LeadReader:
    """Open a lead file for streaming; raise :class:`LeadFileError` if its header is unusable."""
    return LeadReader(
        stream,
        source=source,
        mapping=mapping,
        suppressed=suppressed,
        allow_test_domains=allow_test_domains,
    )


def parse_leads(
    stream: TextIO,
    *,
    source: str,
    mapping: Mapping[str, str] | None = None,
    suppressed: Suppressed | None = None,
    allow_test_domains: DomainAllowance = False,
) -> LeadParseResult:
    """Read a whole lead file: valid leads, skipped rows with reasons, and a summary."""
    reader = read_leads(
        stream,
        source=source,
        mapping=mapping,
        suppressed=suppressed,
        allow_test_domains=allow_test_domains,
    )
    leads: list[ParsedLead] = []
    errors: list[RowError] = []
    for item in reader:
        if isinstance(item, ParsedLead):
            leads.append(item)
        else:
            errors.append(item)
    return LeadParseResult(
        source=source,
        columns=reader.columns,
        leads=tuple(leads),
        errors=tuple(errors),
        summary=reader.summary,
    )
