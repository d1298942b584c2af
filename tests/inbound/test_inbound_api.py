"""The classifier's public surface: exported names, a frozen result, the callbacks and options."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import mailfleet.inbound as inbound
from mailfleet.inbound import Action, Classification, Kind, classify

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
OOO_NO_DATE_HEADER = (
    b"From: Mike Ross <mike@pearson.example>\r\nTo: anna@brand-mail.com\r\n"
    b"Subject: Re: hello\r\nX-Autoreply: yes\r\n\r\n"
    b"I'm away from the office and will be back on Monday.\r\n"
)


def test_exported_names() -> None:
    assert set(inbound.__all__) == {
        "DEFAULT_WARMUP_MARKER",
        "MAX_MESSAGE_BYTES",
        "MAX_RESULT_TEXT",
        "Action",
        "BounceReason",
        "Classification",
        "Complaint",
        "Kind",
        "Recipient",
        "bounce_reason",
        "classify",
        "new_text",
        "thread_subject",
    }
    assert [k.value for k in Kind] == [
        "bounce",
        "delivered",
        "auto_reply",
        "complaint",
        "unsubscribe",
        "reply",
        "warmup",
        "other",
    ]


def test_result_is_frozen() -> None:
    result = classify((CORPUS / "gmail_reply_en.eml").read_bytes())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.kind = Kind.OTHER  # type: ignore[misc]
    assert isinstance(result, Classification)


def test_hard_bounce_property() -> None:
    assert classify((CORPUS / "gmail_user_unknown.eml").read_bytes()).hard_bounce
    assert not classify((CORPUS / "gmail_over_quota.eml").read_bytes()).hard_bounce
    assert not classify((CORPUS / "gmail_reply_en.eml").read_bytes()).hard_bounce


def test_our_message_ids_picks_the_matching_reference() -> None:
    raw = (
        b"From: tom@acme.example\r\nTo: anna@brand-mail.com\r\nSubject: Re: hi\r\n"
        b"In-Reply-To: <theirs@acme.example>\r\n"
        b"References: <first@brand-mail.com> <ours@brand-mail.com> <theirs@acme.example>\r\n"
        b"\r\nSounds good.\r\n"
    )
    ours = {"<first@brand-mail.com>", "<ours@brand-mail.com>"}
    result = classify(raw, our_message_ids=ours.__contains__)
    assert result.kind is Kind.REPLY
    assert result.in_reply_to == "<theirs@acme.example>"
    assert result.matched_message_id == "<ours@brand-mail.com>"  # newest of ours first
    assert classify(raw).matched_message_id is None


def test_now_anchors_relative_dates_only_without_a_date_header() -> None:
    wednesday = datetime(2025, 3, 5, 9, 0, tzinfo=UTC)
    friday = datetime(2025, 3, 7, 9, 0, tzinfo=UTC)
    assert classify(OOO_NO_DATE_HEADER, now=wednesday).return_date == date(2025, 3, 10)
    assert classify(OOO_NO_DATE_HEADER, now=friday).return_date == date(2025, 3, 10)
    assert classify(OOO_NO_DATE_HEADER).return_date is None
    dated = OOO_NO_DATE_HEADER.replace(
        b"X-Autoreply", b"Date: Tue, 11 Mar 2025 08:00 +0000\r\nX-Autoreply"
    )
    assert classify(dated, now=wednesday).return_date == date(2025, 3, 17)


def test_warmup_marker_is_configurable_and_can_be_off() -> None:
    raw = (CORPUS / "warmup_header_marker.eml").read_bytes()
    assert classify(raw).kind is Kind.WARMUP
    assert classify(raw, warmup_marker=None).kind is Kind.REPLY
    assert classify(raw, warmup_marker="other-marker").kind is Kind.REPLY
    with pytest.raises(ValueError):
        classify(raw, warmup_marker="ab")


def test_a_bounce_of_warmup_mail_is_a_bounce() -> None:
    raw = (CORPUS / "qmail_user_unknown.eml").read_bytes()
    assert classify(raw, warmup_marker="Worth a 15").kind is Kind.BOUNCE


def test_max_bytes_caps_what_is_read() -> None:
    raw = (CORPUS / "gmail_reply_en.eml").read_bytes()
    result = classify(raw, max_bytes=200)
    assert result.truncated
    assert result.from_address == "tom.baker@acme.example"


def test_exim_bounce_with_auto_submitted_is_not_an_auto_reply() -> None:
    result = classify((CORPUS / "exim_user_unknown.eml").read_bytes())
    assert result.kind is Kind.BOUNCE
    assert result.recipients[0].action is Action.FAILED
    assert result.recipients[0].hard
