import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailfleet.content import LEAD_VARIABLES, SENDER_VARIABLES, compile_template, render
from mailfleet.leads import LeadFileError, custom_key, header_key, map_columns


def _targets(headers: list[str], mapping: dict[str, str] | None = None) -> dict[str, str | None]:
    return {c.header: c.target for c in map_columns(headers, source="f.csv", mapping=mapping)}


SEQUENCER_EXPORTS = {
    "smartlead": (
        ["email", "first_name", "last_name", "company_name", "phone_number", "linkedin_profile"],
        {"email", "first_name", "last_name", "company"},
        ["phone_number", "linkedin_profile"],
    ),
    "instantly": (
        ["Email", "First Name", "Last Name", "Company Name", "Personalization", "Website"],
        {"email", "first_name", "last_name", "company"},
        ["personalization", "website"],
    ),
    "apollo": (
        [
            "First Name",
            "Last Name",
            "Title",
            "Company",
            "Company Name for Emails",
            "Email",
            "Email Status",
            "Person Linkedin Url",
            "# Employees",
        ],
        {"email", "first_name", "last_name", "company", "title"},
        ["company_name_for_emails", "email_status", "person_linkedin_url", "employees"],
    ),
    "lemlist": (
        ["email", "firstName", "lastName", "companyName", "jobTitle", "linkedinUrl", "icebreaker"],
        {"email", "first_name", "last_name", "company", "title"},
        ["linkedin_url", "icebreaker"],
    ),
    "emailbison": (
        ["email", "first_name", "last_name", "company", "title", "Time Zone", "custom_notes"],
        {"email", "first_name", "last_name", "company", "title", "timezone"},
        ["custom_notes"],
    ),
    "crm": (
        ["Work Email", "FirstName", "Surname", "Organization", "Position", "tz"],
        {"email", "first_name", "last_name", "company", "title", "timezone"},
        [],
    ),
}


@pytest.mark.parametrize("name", sorted(SEQUENCER_EXPORTS))
def test_sequencer_exports_map_as_they_are(name: str) -> None:
    headers, standard, custom = SEQUENCER_EXPORTS[name]
    columns = map_columns(headers, source="f.csv")
    assert {c.target for c in columns if c.standard} == standard
    assert [c.target for c in columns if not c.standard] == custom


@pytest.mark.parametrize(
    "header", ["Email", "email", "E-mail", "Email Address", "email_address", "Work Email", "EMAIL"]
)
def test_email_aliases(header: str) -> None:
    assert _targets([header, "Name"])[header] == "email"


def test_header_key_ignores_case_spaces_underscores_and_dashes() -> None:
    keys = {
        header_key(h)
        for h in ["First Name", "first_name", "firstName", "FIRST-NAME", " first name "]
    }
    assert keys == {"firstname"}


def test_the_better_alias_wins_and_the_other_stays_custom() -> None:
    targets = _targets(["Company Name for Emails", "Organization", "Company", "Email"])
    assert targets["Company"] == "company"
    assert targets["Organization"] == "organization"


def test_a_repeated_header_keeps_both_columns() -> None:
    targets = [c.target for c in map_columns(["Email", "email", "Email"], source="f.csv")]
    assert targets == ["email", "email_2", "email_3"]


def test_mapping_overrides_aliases() -> None:
    targets = _targets(
        ["Email", "Personal Email", "Vorname", "Title", "Junk"],
        mapping={"personal email": "email", "Vorname": "First Name", "Title": "job", "Junk": ""},
    )
    assert targets == {
        "Email": "email_2",
        "Personal Email": "email",
        "Vorname": "first_name",
        "Title": "job",
        "Junk": None,
    }


def test_mapping_a_missing_column_is_a_file_error() -> None:
    with pytest.raises(LeadFileError, match='names a column "Mail" not in the file'):
        map_columns(["Email"], source="f.csv", mapping={"Mail": "email"})


def test_mapping_one_field_twice_is_a_file_error() -> None:
    with pytest.raises(LeadFileError, match="assigns email to two columns"):
        map_columns(["A", "B"], source="f.csv", mapping={"A": "email", "B": "email"})


def test_no_email_column_names_the_file_and_headers() -> None:
    with pytest.raises(LeadFileError) as info:
        map_columns(["Name", "Phone"], source="prospects.csv")
    assert str(info.value) == (
        'prospects.csv: no email column (name one with a mapping); headers found: "Name", "Phone"'
    )


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("LinkedIn URL", "linkedin_url"),
        ("linkedinUrl", "linkedin_url"),
        ("phoneNumber", "phone_number"),
        ("Company Name for Emails", "company_name_for_emails"),
        ("Prénom", "prenom"),
        ("# Employees", "employees"),
        ("2024 Revenue ($)", "field_2024_revenue"),
        ("---", ""),
    ],
)
def test_custom_keys_are_snake_case(header: str, key: str) -> None:
    assert custom_key(header) == key


def test_custom_keys_avoid_reserved_and_empty_names() -> None:
    targets = _targets(["Email", "sender_name", "None", "", "loop", "Self"])
    assert targets == {
        "Email": "email",
        "sender_name": "sender_name_2",
        "None": "none_2",
        "": "column_4",
        "loop": "loop_2",
        "Self": "self_2",
    }


@given(st.lists(st.text(max_size=12), min_size=1, max_size=8))
def test_custom_keys_are_unique_identifiers(headers: list[str]) -> None:
    columns = map_columns(["Email", *headers], source="f.csv")
    keys = [c.target for c in columns if not c.standard]
    assert len(keys) == len(set(keys))
    for key in keys:
        assert key is not None and key.isidentifier() and key.isascii()
        assert "__" not in key
        assert key not in LEAD_VARIABLES | SENDER_VARIABLES
        # The real test: a template can use the key and gets the lead's value.
        template = compile_template(f"{{{{ {key} }}}}", field="f", allowed={key})
        assert render(template, {key: "value"}, "seed") == "value"
