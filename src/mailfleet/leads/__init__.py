"""Lead import: CSV files from any common sequencer into validated leads.

Pure: reads only the text stream it is given (and the system's list of IANA
timezones). Bad rows are skipped and reported with file, row, column and
reason; the rest are imported.
"""

from mailfleet.leads.addresses import InvalidAddress, LeadAddress, Suppressions, normalize_address
from mailfleet.leads.columns import STANDARD_FIELDS, Column, custom_key, header_key, map_columns
from mailfleet.leads.errors import LeadFileError, RowError, RowErrorKind
from mailfleet.leads.reader import (
    ImportSummary,
    LeadParseResult,
    LeadReader,
    ParsedLead,
    Suppressed,
    canonical_timezone,
    parse_leads,
    read_leads,
)

__all__ = [
    "STANDARD_FIELDS",
    "Column",
    "ImportSummary",
    "InvalidAddress",
    "LeadAddress",
    "LeadFileError",
    "LeadParseResult",
    "LeadReader",
    "ParsedLead",
    "RowError",
    "RowErrorKind",
    "Suppressed",
    "Suppressions",
    "canonical_timezone",
    "custom_key",
    "header_key",
    "map_columns",
    "normalize_address",
    "parse_leads",
    "read_leads",
]
