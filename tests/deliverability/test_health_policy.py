"""Health policy: rates, score, the auto-pause thresholds and the acknowledged evidence."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailfleet.clock import utc
from mailfleet.deliverability.health import (
    Counts,
    HealthPolicy,
    MailboxEvidence,
    Rates,
    assess_domain,
    assess_fleet,
    assess_mailbox,
    is_auth_failure,
    score,
    window_starts,
)

POLICY = HealthPolicy()
NOW = utc(2026, 3, 30, 12)


def evidence(
    address: str = "a@s.example",
    month: Counts = Counts(),
    *,
    status: str = "active",
    since_ack: Counts | None = None,
    junk: float | None = None,
) -> MailboxEvidence:
    return MailboxEvidence(
        mailbox_id=hash(address) % 1000,
        address=address,
        domain=address.partition("@")[2],
        status=status,
        week=month,
        month=month,
        since_ack=since_ack,
        acknowledged_at=NOW - timedelta(days=2) if since_ack is not None else None,
        junk_share_28d=junk,
    )


def test_hard_bounces_over_two_percent_pause_once_twenty_sends_are_in() -> None:
    paused = assess_mailbox(evidence(month=Counts(sends=100, hard_bounces=3)), POLICY)
    assert paused.pause is not None and paused.pause.rule == "hard_bounce_rate"
    assert "3.0%" in paused.pause.reason and "100 cold sends" in paused.pause.reason
    at_threshold = assess_mailbox(evidence(month=Counts(sends=100, hard_bounces=2)), POLICY)
    assert at_threshold.pause is None  # "passes" 2 %: exactly 2 % is not past it
    too_few = assess_mailbox(evidence(month=Counts(sends=19, hard_bounces=5)), POLICY)
    assert too_few.pause is None and "too few to judge" in too_few.notes[0]


def test_complaints_over_a_tenth_of_a_percent_pause() -> None:
    health = assess_mailbox(evidence(month=Counts(sends=2000, complaints=3)), POLICY)
    assert health.pause is not None and health.pause.rule == "complaint_rate"
    assert assess_mailbox(evidence(month=Counts(sends=2000, complaints=2)), POLICY).pause is None


def test_after_a_resume_only_new_evidence_counts() -> None:
    old = Counts(sends=100, hard_bounces=10)
    calm = assess_mailbox(evidence(month=old, since_ack=Counts(sends=30)), POLICY)
    assert calm.pause is None and calm.month.hard_bounce == pytest.approx(0.1)
    again = assess_mailbox(evidence(month=old, since_ack=Counts(sends=30, hard_bounces=2)), POLICY)
    assert again.pause is not None and "since it was resumed" in again.pause.reason


def test_score_falls_with_each_signal_and_stays_in_range() -> None:
    clean = score(Rates.of(Counts(sends=100)), POLICY)
    bouncing = score(Rates.of(Counts(sends=100, hard_bounces=1)), POLICY)
    junked = score(Rates.of(Counts(sends=100)), POLICY, junk_share=0.5)
    assert clean == 100 and bouncing == 80 and junked == 70
    assert score(Rates.of(Counts()), POLICY) == 100  # nothing sent: nothing wrong yet


@given(
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.none() | st.floats(0, 1),
)
def test_score_is_always_between_0_and_100(
    sends: int, hard: int, complaints: int, auth: int, junk: float | None
) -> None:
    counts = Counts(sends=sends, hard_bounces=hard, complaints=complaints, auth_failures=auth)
    assert 0 <= score(Rates.of(counts), POLICY, junk) <= 100


def test_a_domain_is_flagged_when_most_of_its_mailboxes_are_paused() -> None:
    boxes, domains = assess_fleet(
        [
            evidence("a@s.example", status="paused"),
            evidence("b@s.example", Counts(sends=50, hard_bounces=5)),  # about to be paused
            evidence("c@s.example"),
            evidence("d@t.example", status="paused"),
            evidence("e@t.example"),
        ],
        POLICY,
    )
    assert boxes[0].evidence.address == "a@s.example"
    flagged = {d.name: d for d in domains}
    assert flagged["s.example"].flagged and flagged["s.example"].paused == 2
    assert "2 of 3 mailboxes" in (flagged["s.example"].reason or "")
    assert not flagged["t.example"].flagged  # half is not "mostly"
    assert assess_domain("empty.example", [], POLICY).flagged is False


def test_auth_failures_are_read_from_status_or_words() -> None:
    assert is_auth_failure("5.7.26", "")
    assert is_auth_failure("5.7.1", "message rejected: DMARC policy of sender domain")
    assert not is_auth_failure("5.7.1", "relaying denied")
    assert not is_auth_failure(None, None)
    noted = assess_mailbox(evidence(month=Counts(sends=40, auth_failures=2)), POLICY)
    assert any("SPF/DKIM/DMARC" in n for n in noted.notes)


def test_bad_policies_are_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="hard_bounce_rate"):
        HealthPolicy(hard_bounce_rate=2)
    with pytest.raises(ValueError, match="short_window"):
        HealthPolicy(short_window=timedelta(days=40))
    with pytest.raises(ValueError, match="min_sends"):
        HealthPolicy(min_sends=0)
    week, month = window_starts(NOW, POLICY)
    assert (NOW - week, NOW - month) == (timedelta(days=7), timedelta(days=28))
