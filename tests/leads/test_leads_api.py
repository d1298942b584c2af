import mailfleet.leads


def test_public_names_are_exactly_these() -> None:
    assert sorted(mailfleet.leads.__all__) == [
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
        "STANDARD_FIELDS",
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
    for name in mailfleet.leads.__all__:
        assert getattr(mailfleet.leads, name) is not None


def test_errors_are_value_errors() -> None:
    assert issubclass(mailfleet.leads.LeadFileError, ValueError)
    assert issubclass(mailfleet.leads.InvalidAddress, ValueError)
