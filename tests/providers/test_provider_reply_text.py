"""Parsing enhanced status codes, reply codes and retry hints out of reply text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailfleet.providers import parse_enhanced, parse_retry_after
from mailfleet.providers.reply_text import MAX_RETRY_AFTER, normalize_text, parse_code


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("535 5.7.139 Authentication unsuccessful", "5.7.139"),
        ("5.7.139 Authentication unsuccessful", "5.7.139"),
        ("421-4.7.0 [203.0.113.9] Our system has detected", "4.7.0"),
        (
            "451 4.7.500 Server busy. Please try again later from [40.107.22.55]. (S77719)",
            "4.7.500",
        ),
        ("554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException", "5.2.0"),
        ("smtp; 550 5.1.10 RESOLVER.ADR.RecipientNotFound", "5.1.10"),
        ("Remote server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'", "5.1.1"),
        ("\n250 2.0.0 OK", "2.0.0"),
        ("from [10.4.5.6] busy", None),
        ("Version 1.2.3 of the server", None),
        ("550 Requested action not taken", None),
        ("5.07.1 leading zero", None),
        ("3.1.1 not a class", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_enhanced(text: str | None, expected: str | None) -> None:
    assert parse_enhanced(text) == expected


def test_the_code_at_the_start_wins_over_one_later_in_the_text() -> None:
    assert parse_enhanced("550 5.7.1 see also 5.1.1 below") == "5.7.1"
    assert parse_enhanced("blocked, see 5.7.1 and 5.1.1") == "5.7.1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("250 OK", 250),
        ("421-4.7.0 busy", 421),
        ("550", 550),
        ("25", None),
        ("6000 x", None),
        ("x 550", None),
        ("", None),
    ],
)
def test_parse_code(text: str, expected: int | None) -> None:
    assert parse_code(text) == expected


def test_normalize_text_joins_lines_without_their_codes() -> None:
    text = "421-4.7.0 unusual rate of\n421-4.7.0 unsolicited mail\n421 4.7.0 from your IP."
    assert normalize_text(text) == "unusual rate of unsolicited mail from your IP."


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("try again in 5 minutes", 300.0),
        ("Please retry in 30 seconds", 30.0),
        ("Try again after 2 hours", 7200.0),
        ("wait 90 secs", 90.0),
        ("try again in 1.5 min", 90.0),
        ("Please try again later", None),
        ("Try again later (10).", None),
        ("try again in 99999999 hours", MAX_RETRY_AFTER),
        ("", None),
    ],
)
def test_parse_retry_after(text: str, seconds: float | None) -> None:
    assert parse_retry_after(text) == seconds


_CODE = st.builds(
    "{}.{}.{}".format,
    st.sampled_from(["2", "4", "5"]),
    st.integers(0, 999),
    st.integers(0, 999),
)
_TAIL = st.text(alphabet=st.characters(exclude_characters="0123456789"), max_size=60).filter(
    lambda s: not s.startswith(".")
)


@given(enhanced=_CODE, basic=st.integers(200, 599), tail=_TAIL, sep=st.sampled_from([" ", "-"]))
def test_an_enhanced_code_after_the_basic_code_is_always_found(
    enhanced: str, basic: int, tail: str, sep: str
) -> None:
    assert parse_enhanced(f"{basic}{sep}{enhanced} {tail}") == enhanced


@given(st.text(max_size=300))
def test_parse_enhanced_returns_none_or_a_code_that_is_in_the_text(text: str) -> None:
    found = parse_enhanced(text)
    if found is not None:
        assert re.fullmatch(r"[245]\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})", found)
        assert found in text


@given(st.tuples(*[st.integers(0, 255)] * 4))
def test_an_ip_address_is_never_read_as_an_enhanced_code(ip: tuple[int, int, int, int]) -> None:
    address = ".".join(map(str, ip))
    assert parse_enhanced(f"Server busy from [{address}] (S77719)") is None
    assert parse_enhanced(f"from {address}") is None


@given(st.text(max_size=300))
def test_text_helpers_never_raise(text: str) -> None:
    normalize_text(text)
    parse_code(text)
    seconds = parse_retry_after(text)
    assert seconds is None or 0 <= seconds <= MAX_RETRY_AFTER


@given(amount=st.integers(0, 10_000), unit=st.sampled_from(["seconds", "minutes", "hours"]))
def test_retry_after_converts_units(amount: int, unit: str) -> None:
    factor = {"seconds": 1, "minutes": 60, "hours": 3600}[unit]
    expected = min(amount * factor, MAX_RETRY_AFTER)
    assert parse_retry_after(f"421 4.7.0 try again in {amount} {unit}") == expected
