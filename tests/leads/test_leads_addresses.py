import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailfleet.leads import InvalidAddress, LeadAddress, Suppressions, normalize_address


def _reference(raw: str, allow_test_domains: bool = False) -> tuple[str, str] | None:
    """What validate_email alone says: (email, normalised) or None when invalid."""
    try:
        result = validate_email(
            raw,
            check_deliverability=False,
            allow_smtputf8=False,
            test_environment=allow_test_domains,
        )
    except EmailNotValidError:
        return None
    return result.normalized, (result.ascii_email or result.normalized).lower()


def _ours(raw: str, allow_test_domains: bool = False) -> tuple[str, str] | None:
    try:
        address = normalize_address(raw, allow_test_domains=allow_test_domains)
    except InvalidAddress:
        return None
    return address.email, address.normalized


def test_plain_address_keeps_local_case_and_lowers_the_domain() -> None:
    assert normalize_address("Bob.Smith@Example.COM") == LeadAddress(
        email="Bob.Smith@example.com", normalized="bob.smith@example.com"
    )


def test_role_addresses_are_lowered_like_validate_email_does() -> None:
    assert normalize_address("Info@Acme.com").email == "info@acme.com"


def test_internationalised_domain_normalises_to_idna() -> None:
    address = normalize_address("bob@Bücher.de")
    assert (address.email, address.normalized) == ("bob@bücher.de", "bob@xn--bcher-kva.de")


@pytest.mark.parametrize(
    "raw",
    ["bob@@x.com", "bob", "bob@localhost", "a@b.test", "a@-x.com", "jürgen@x.com", "a b@x.com"],
)
def test_invalid_addresses_carry_validate_emails_reason(raw: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        normalize_address(raw)
    assert str(info.value)
    assert not str(info.value).endswith(".")


ATEXT = "abcXYZ019.!#$%&'*+/=?^_`{|}~-"
LABEL = st.text(alphabet="abcxyzXN019-", min_size=1, max_size=12)
TLD = st.sampled_from(["com", "io", "de", "test", "local", "arpa", "c0m", "x1", "museum", "q"])
ADDRESS = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join([*labels, tld])}",
    st.text(alphabet=ATEXT, min_size=0, max_size=20),
    st.lists(LABEL, min_size=0, max_size=3),
    TLD,
)


@settings(max_examples=1000)
@given(raw=ADDRESS, allow_test=st.booleans())
@example(raw="postmaster@example.com", allow_test=False)
@example(raw="a@xn--bcher-kva.de", allow_test=False)
@example(raw="a@ab--cd.com", allow_test=False)
@example(raw="a@b.c1", allow_test=False)
@example(raw="x@" + "a" * 63 + ".com", allow_test=False)
@example(raw="x@" + "a" * 64 + ".com", allow_test=False)
@example(raw="x" * 240 + "@example.com", allow_test=False)
def test_fast_path_agrees_with_validate_email(raw: str, allow_test: bool) -> None:
    assert _ours(raw, allow_test) == _reference(raw, allow_test)


@settings(max_examples=300)
@given(st.text(max_size=30))
def test_any_text_agrees_with_validate_email(raw: str) -> None:
    assert _ours(raw) == _reference(raw)


def test_suppressions_match_addresses_and_parent_domains() -> None:
    suppressed = Suppressions(emails={"A@X.com": "unsubscribe"}, domains={"Acme.com": "manual"})
    assert suppressed("a@x.com") == "unsubscribe"
    assert suppressed("b@x.com") is None
    assert suppressed("ceo@acme.com") == "manual"
    assert suppressed("ceo@eu.sales.acme.com") == "manual"
    assert suppressed("ceo@notacme.com") is None


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Bob@Mail.LOCAL", "bob@mail.local"),
        ("ops@localhost", "ops@localhost"),
        ("a@b.test", "a@b.test"),
        ("x@srv.invalid", "x@srv.invalid"),
        ("plain@acme.com", "plain@acme.com"),
    ],
)
def test_reserved_domains_are_accepted_only_for_a_rehearsal(raw: str, normalized: str) -> None:
    assert normalize_address(raw, allow_test_domains="reserved").normalized == normalized
    if "." in normalized.rpartition("@")[2] and not normalized.endswith("acme.com"):
        with pytest.raises(InvalidAddress, match="--allow-reserved-domains"):
            normalize_address(raw)


def test_a_reserved_domain_is_still_checked_for_syntax() -> None:
    with pytest.raises(InvalidAddress, match="SPACE"):
        normalize_address("a b@c.local", allow_test_domains="reserved")
