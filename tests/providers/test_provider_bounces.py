"""Hard bounces are dead addresses; everything else is soft, even with a 5xx code."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailfleet.providers import BounceKind, bounce_kind, is_hard_bounce

HARD = BounceKind.HARD
SOFT = BounceKind.SOFT


@pytest.mark.parametrize(
    ("enhanced", "text", "expected"),
    [
        ("5.1.1", "550 5.1.1 The email account that you tried to reach does not exist.", HARD),
        ("5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found", HARD),
        ("5.1.2", "550 5.1.2 Host unknown", HARD),
        ("5.2.1", "550 5.2.1 The email account that you tried to reach is disabled.", HARD),
        (None, "550 5.4.4 SMTPSEND.DNS.NonExistentDomain; nonexistent domain", HARD),
        (None, "550 User unknown", HARD),
        (None, "Diagnostic-Code: smtp; 550 5.1.1 <x@example.org>: user unknown", HARD),
        ("5.2.2", "552 5.2.2 The email account that you tried to reach is over quota.", SOFT),
        ("5.7.1", "550 5.7.1 Message rejected as spam", SOFT),
        (
            "5.7.520",
            "550 5.7.520 Message blocked because it contains content identified as spam",
            SOFT,
        ),
        ("5.1.1", "550 5.1.1 blocked by policy", SOFT),
        ("5.3.4", "552 5.3.4 Message size exceeds fixed maximum message size", SOFT),
        ("4.1.1", "450 4.1.1 user unknown (temporarily)", SOFT),
        ("4.4.7", "Message expired in queue", SOFT),
        (None, "451 Greylisted, try again later", SOFT),
        (None, "550 5.7.26 unauthenticated sender: DMARC policy", SOFT),
        (None, "550 5.1.8 Sender address rejected: Domain not found", SOFT),
        (None, "", SOFT),
    ],
)
def test_bounce_kind(enhanced: str | None, text: str, expected: BounceKind) -> None:
    assert bounce_kind(enhanced, text) is expected


def test_a_transient_basic_code_is_always_soft() -> None:
    assert bounce_kind("5.1.1", "user unknown", code=450) is SOFT
    assert bounce_kind("5.1.1", "user unknown", code=550) is HARD


def test_is_hard_bounce_agrees_with_bounce_kind() -> None:
    assert is_hard_bounce("5.1.1", "no such user")
    assert not is_hard_bounce("5.2.2", "mailbox full")


@given(
    enhanced=st.one_of(st.none(), st.from_regex(r"\A[245]\.\d{1,3}\.\d{1,3}\Z")),
    text=st.text(max_size=200),
    code=st.one_of(st.none(), st.integers(0, 999)),
)
def test_bounce_kind_never_raises_and_4xx_is_never_hard(
    enhanced: str | None, text: str, code: int | None
) -> None:
    kind = bounce_kind(enhanced, text, code=code)
    if (code is not None and 400 <= code < 500) or (enhanced or "").startswith("4."):
        assert kind is SOFT
