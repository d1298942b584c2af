import csv
import io
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailfleet.leads import (
    LeadFileError,
    LeadParseResult,
    ParsedLead,
    RowError,
    RowErrorKind,
    Suppressions,
    parse_leads,
    read_leads,
)


def _parse(text: str, **kwargs: object) -> LeadParseResult:
    return parse_leads(io.StringIO(text, newline=""), source="leads.csv", **kwargs)  # type: ignore[arg-type]


def _errors(result: LeadParseResult) -> list[tuple[int, RowErrorKind, str | None]]:
    return [(e.row, e.kind, e.field) for e in result.errors]


def test_a_clean_file_imports_every_row() -> None:
    result = _parse(
        "Email,First Name,Last Name,Company,Title,Timezone,LinkedIn URL\r\n"
        "anna@acme.com,Anna,Smith,Acme,CEO,Europe/Paris,https://linkedin.com/in/anna\r\n"
        "bob@globex.io,Bob,,Globex,,,\r\n"
    )
    assert result.errors == ()
    anna, bob = result.leads
    assert anna == ParsedLead(
        email="anna@acme.com",
        email_normalized="anna@acme.com",
        first_name="Anna",
        last_name="Smith",
        company="Acme",
        title="CEO",
        timezone="Europe/Paris",
        fields={"linkedin_url": "https://linkedin.com/in/anna"},
        row=2,
    )
    assert (bob.last_name, bob.title, bob.timezone, bob.fields, bob.row) == (
        None,
        None,
        None,
        {},
        3,
    )
    assert result.custom_fields == ("linkedin_url",)
    assert result.summary.total_rows == 2 and result.summary.accepted == 2


BAD_FILE = (
    "Email,First Name,Timezone,Notes\n"
    "ok@example.com,Ok,,\n"  # row 2
    ",Nobody,,\n"  # row 3: missing email
    "bob@@x.com,Bob,,\n"  # row 4: malformed
    "OK@Example.com,Again,,\n"  # row 5: duplicate of row 2
    "extra@example.com,Extra,,,surplus\n"  # row 6: more cells than headers
    "tz@example.com,Tz,Mars/Olympus,\n"  # row 7: invalid timezone
    '"inj@example.com","Eve\r\nBcc: victim@example.com",,\n'  # row 8: header injection
    "late@example.com,Late,,\n"  # row 9
)


def test_every_bad_row_kind_is_reported_with_its_row() -> None:
    result = _parse(BAD_FILE)
    assert [lead.row for lead in result.leads] == [2, 9]
    assert _errors(result) == [
        (3, RowErrorKind.MISSING_EMAIL, "Email"),
        (4, RowErrorKind.INVALID_EMAIL, "Email"),
        (5, RowErrorKind.DUPLICATE, "Email"),
        (6, RowErrorKind.TOO_MANY_CELLS, None),
        (7, RowErrorKind.INVALID_TIMEZONE, "Timezone"),
        (8, RowErrorKind.CONTROL_CHARACTERS, "First Name"),
    ]


def test_row_errors_read_like_a_spreadsheet_location() -> None:
    messages = [str(e) for e in _parse(BAD_FILE).errors]
    assert messages[0] == 'leads.csv row 3, column "Email": no address'
    assert messages[1].startswith(
        'leads.csv row 4, column "Email": "bob@@x.com" is not a valid address ('
    )
    assert messages[2] == 'leads.csv row 5, column "Email": "OK@Example.com" duplicates row 2'
    assert messages[3] == "leads.csv row 6: has 5 cells but the header has 4 columns"
    assert messages[4].startswith(
        'leads.csv row 7, column "Timezone": "Mars/Olympus" is not an IANA'
    )
    assert messages[5] == (
        'leads.csv row 8, column "First Name": "Eve\\r\\nBcc: victim@example.com" '
        "contains a line break or control character"
    )


def test_summary_counts_rows_by_outcome() -> None:
    summary = _parse(BAD_FILE + "\n,,,\n").summary
    assert (summary.total_rows, summary.accepted, summary.rejected, summary.blank_rows) == (
        8,
        2,
        6,
        2,
    )
    assert summary.errors_by_kind[RowErrorKind.DUPLICATE] == 1
    assert str(summary).startswith("leads.csv: 8 rows, 2 accepted, 6 skipped (")
    assert "1 duplicate, " in str(summary)


def test_rows_count_records_not_lines() -> None:
    text = 'Email,Notes\na@example.com,"line one\nline two\nline three"\nb@@example.com,x\n'
    result = _parse(text)
    assert result.leads[0].fields == {"notes": "line one\nline two\nline three"}
    assert _errors(result) == [(3, RowErrorKind.INVALID_EMAIL, "Email")]


def test_blank_rows_are_skipped_but_keep_numbering() -> None:
    result = _parse("Email\n\na@example.com\n   \n\nb@@x\n")
    assert [lead.row for lead in result.leads] == [3]
    assert _errors(result) == [(6, RowErrorKind.INVALID_EMAIL, "Email")]
    assert result.summary.blank_rows == 3


def test_leading_blank_lines_move_the_header() -> None:
    result = _parse("\n\nEmail\na@example.com\n")
    assert result.leads[0].row == 4


def test_trailing_empty_cells_are_not_extra_cells() -> None:
    result = _parse("Email,Name\na@example.com,Ann,,,\n")
    assert result.errors == () and len(result.leads) == 1


def test_short_rows_leave_fields_empty() -> None:
    (lead,) = _parse("Email,First Name,Company\na@example.com\n").leads
    assert (lead.first_name, lead.company) == (None, None)


def test_bom_semicolons_and_crlf() -> None:
    text = '\ufeffE-Mail;Vorname;Firma\r\nanna@acme.de;Anna;Acme GmbH\r\nbob@acme.de;Bob;"A;B"\r\n'
    result = _parse(text, mapping={"Vorname": "first_name", "Firma": "company"})
    assert [(x.email, x.first_name, x.company) for x in result.leads] == [
        ("anna@acme.de", "Anna", "Acme GmbH"),
        ("bob@acme.de", "Bob", "A;B"),
    ]


def test_tab_delimited() -> None:
    (lead,) = _parse("email\tfirst_name\tcompany\nann@acme.com\tAnn\tAcme, Inc.\n").leads
    assert (lead.first_name, lead.company) == ("Ann", "Acme, Inc.")


def test_cells_are_stripped() -> None:
    (lead,) = _parse("Email,First Name\n  ann@acme.com  ,  Ann \n").leads
    assert (lead.email, lead.first_name) == ("ann@acme.com", "Ann")


def test_no_email_column_is_a_file_error_listing_headers() -> None:
    with pytest.raises(LeadFileError) as info:
        _parse("Name,Phone,Website\nAnn,1,x\n")
    message = str(info.value)
    assert message.startswith("leads.csv: no email column")
    assert '"Name", "Phone", "Website"' in message
    assert info.value.headers == ("Name", "Phone", "Website")


def test_an_explicit_mapping_names_the_email_column() -> None:
    (lead,) = _parse("Mail,Name\nann@acme.com,Ann\n", mapping={"Mail": "email"}).leads
    assert lead.email == "ann@acme.com" and lead.fields == {"name": "Ann"}


@pytest.mark.parametrize("text", ["", "\n\n  \n", "\ufeff"])
def test_empty_file_is_a_file_error(text: str) -> None:
    with pytest.raises(LeadFileError, match=r"leads\.csv: the file is empty"):
        _parse(text)


def test_duplicates_match_case_insensitively_and_after_idna() -> None:
    result = _parse("Email\nBob@Bücher.de\nbob@xn--bcher-kva.de\nBOB@BÜCHER.DE\n")
    (lead,) = result.leads
    assert lead.email == "Bob@bücher.de"
    assert lead.email_normalized == "bob@xn--bcher-kva.de"
    assert [e.reason for e in result.errors] == ["duplicates row 2", "duplicates row 2"]


def test_non_ascii_local_parts_are_refused() -> None:
    result = _parse("Email\njürgen@example.com\n")
    assert _errors(result) == [(2, RowErrorKind.INVALID_EMAIL, "Email")]
    assert "Internationalized characters before the @-sign" in result.errors[0].reason


def test_timezones_are_canonicalised() -> None:
    (lead,) = _parse("Email,TZ\nann@acme.com,america/new_york\n").leads
    assert lead.timezone == "America/New_York"


def test_suppressed_addresses_and_domains_are_skipped_with_reason() -> None:
    suppressed = Suppressions(
        emails={"Gone@Acme.com": "hard_bounce"}, domains={"competitor.com": "manual"}
    )
    result = _parse(
        "Email\ngone@acme.com\nceo@eu.competitor.com\nok@acme.com\n", suppressed=suppressed
    )
    assert [lead.email for lead in result.leads] == ["ok@acme.com"]
    assert [str(e) for e in result.errors] == [
        'leads.csv row 2, column "Email": "gone@acme.com" is suppressed (hard_bounce)',
        'leads.csv row 3, column "Email": "ceo@eu.competitor.com" is suppressed (manual)',
    ]


def test_any_callable_can_suppress() -> None:
    result = _parse(
        "Email\na@x.com\nb@x.com\n", suppressed=lambda e: "unsubscribe" if e[0] == "a" else None
    )
    assert [e.kind for e in result.errors] == [RowErrorKind.SUPPRESSED]


def test_test_domains_only_when_allowed() -> None:
    assert _errors(_parse("Email\nann@prospects.test\n"))[0][1] is RowErrorKind.INVALID_EMAIL
    assert len(_parse("Email\nann@prospects.test\n", allow_test_domains=True).leads) == 1


def test_unreadable_rows_are_reported_and_reading_goes_on() -> None:
    huge = "x" * (csv.field_size_limit() + 1)
    result = _parse(f'Email,Notes\na@example.com,"{huge}"\nc@example.com,y\n')
    assert [lead.email for lead in result.leads] == ["c@example.com"]
    assert _errors(result) == [(2, RowErrorKind.UNREADABLE, None)]
    assert "cannot be read as CSV (field larger than field limit" in str(result.errors[0])


def test_old_mac_line_ends_are_line_ends() -> None:
    result = _parse("Email,Name\ra@example.com,x\rb@example.com,y\r")
    assert [lead.row for lead in result.leads] == [2, 3]


def test_read_leads_streams_the_same_items() -> None:
    reader = read_leads(io.StringIO(BAD_FILE, newline=""), source="leads.csv")
    assert reader.headers == ("Email", "First Name", "Timezone", "Notes")
    items = list(reader)
    result = _parse(BAD_FILE)
    assert [i for i in items if isinstance(i, ParsedLead)] == list(result.leads)
    assert [i for i in items if isinstance(i, RowError)] == list(result.errors)
    assert reader.summary == result.summary


def test_template_context_has_every_variable() -> None:
    (lead,) = _parse("Email,First Name,Icebreaker\nann@acme.com,Ann,Loved your talk\n").leads
    assert lead.template_context() == {
        "email": "ann@acme.com",
        "first_name": "Ann",
        "last_name": None,
        "company": None,
        "title": None,
        "timezone": None,
        "icebreaker": "Loved your talk",
    }


HEADER = ["Email", "First Name", "Notes"]
CELL = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
EMAIL = st.sampled_from(["a@example.com", "B@example.com", "bad@@x", "", " c@example.org ", "x"])
ROW = st.tuples(EMAIL, st.lists(CELL, max_size=4)).map(lambda t: [t[0], *t[1]])


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(ROW, max_size=12), delimiter=st.sampled_from([",", ";", "\t"]))
def test_every_row_is_accepted_or_reported_exactly_once(
    rows: list[list[str]], delimiter: str
) -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(HEADER)
    writer.writerows(rows)
    result = _parse(out.getvalue())

    seen = Counter([lead.row for lead in result.leads] + [e.row for e in result.errors])
    assert all(count == 1 for count in seen.values())
    expected = {i + 2 for i, row in enumerate(rows) if any(cell.strip() for cell in row)}
    assert set(seen) == expected
    summary = result.summary
    assert summary.total_rows == summary.accepted + summary.rejected == len(expected)
    assert summary.blank_rows == len(rows) - len(expected)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=200))
def test_parsing_arbitrary_text_never_crashes(text: str) -> None:
    try:
        result = _parse("Email," + text)
    except LeadFileError:
        return
    summary = result.summary
    assert summary.total_rows == len(result.leads) + len(result.errors)
    rows = [lead.row for lead in result.leads] + [e.row for e in result.errors]
    assert len(rows) == len(set(rows))
