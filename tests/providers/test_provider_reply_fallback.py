"""Replies outside the table: RFC 3463 class and subject, basic code class, malformed replies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailfleet.providers import OutcomeKind, Stage, classify_reply

K = OutcomeKind


@pytest.mark.parametrize(
    ("code", "text", "stage", "kind", "rule"),
    [
        (
            250,
            "250 2.0.0 OK <a1@brand-mail.com> [Hostname=AM6PR.outlook.com]",
            Stage.DATA,
            K.ACCEPTED,
            "rfc3463.positive",
        ),
        (
            354,
            "354 Start mail input; end with <CRLF>.<CRLF>",
            Stage.DATA,
            K.ACCEPTED,
            "rfc5321.positive",
        ),
        (235, "235 2.7.0 Authentication successful", Stage.AUTH, K.ACCEPTED, "rfc3463.positive"),
        (
            451,
            "451 4.3.0 Temporary server error. Please try again later",
            Stage.DATA,
            K.RETRY,
            "rfc3463.transient",
        ),
        (
            450,
            "450 4.2.0 <x@example.org>: Recipient address rejected: Greylisted",
            Stage.RCPT,
            K.RETRY,
            "rfc3463.transient",
        ),
        (
            451,
            "451 Requested action aborted: local error in processing",
            Stage.DATA,
            K.RETRY,
            "rfc5321.transient",
        ),
        (
            421,
            "421 Service not available, closing transmission channel",
            Stage.MAIL,
            K.RETRY,
            "rfc5321.closing",
        ),
        (550, "550 5.1.2 Host unknown", Stage.RCPT, K.DROP_RECIPIENT, "rfc3463.address_dead"),
        (
            550,
            "550 5.1.3 Bad destination mailbox address syntax",
            Stage.RCPT,
            K.DROP_RECIPIENT,
            "rfc3463.address_dead",
        ),
        (
            550,
            "550 5.1.6 Mailbox has moved, no forwarding address",
            Stage.DATA,
            K.DROP_RECIPIENT,
            "rfc3463.address_dead",
        ),
        (
            550,
            "550 5.2.1 The email account that you tried to reach is disabled.",
            Stage.RCPT,
            K.DROP_RECIPIENT,
            "rfc3463.address_dead",
        ),
        (550, "550 No such user here", Stage.RCPT, K.DROP_RECIPIENT, "rfc5321.address_dead"),
        (
            552,
            "552-5.2.2 The email account that you tried to reach is over quota.",
            Stage.RCPT,
            K.REJECTED,
            "rfc3463.rejected",
        ),
        (
            550,
            "550 5.1.1 <x@example.org> blocked by policy: spam source",
            Stage.RCPT,
            K.REJECTED,
            "rfc3463.rejected",
        ),
        (550, "550 5.1.0 Address rejected", Stage.RCPT, K.REJECTED, "rfc3463.rejected"),
        (
            554,
            "554 5.7.1 <x@example.org>: Relay access denied",
            Stage.RCPT,
            K.REJECTED,
            "rfc3463.rejected",
        ),
        (
            550,
            "550 Requested action not taken: mailbox unavailable",
            Stage.RCPT,
            K.REJECTED,
            "rfc5321.rejected",
        ),
        (554, "554 Transaction failed", Stage.DATA, K.REJECTED, "rfc5321.rejected"),
        (
            552,
            "552 5.3.4 Message size exceeds fixed maximum message size",
            Stage.MAIL,
            K.REJECTED,
            "rfc3463.rejected",
        ),
        (
            553,
            "553 5.1.7 The sender address is not a valid address",
            Stage.MAIL,
            K.PAUSE_MAILBOX,
            "rfc3463.sender_refused",
        ),
        (
            535,
            "535 5.7.8 Error: authentication failed",
            Stage.AUTH,
            K.PAUSE_MAILBOX,
            "rfc3463.auth_refused",
        ),
        (535, "535 Authentication failed", Stage.AUTH, K.PAUSE_MAILBOX, "rfc5321.auth_refused"),
        (
            501,
            "501 5.5.2 Cannot decode response",
            Stage.AUTH,
            K.FIX_CONFIG,
            "rfc3463.session_refused",
        ),
        (
            554,
            "554 5.7.1 Client host [203.0.113.9] blocked using zen.spamhaus.org",
            Stage.BANNER,
            K.PAUSE_MAILBOX,
            "rfc3463.client_refused",
        ),
        (554, "554 No SMTP service here", Stage.BANNER, K.FIX_CONFIG, "rfc5321.session_refused"),
        (
            502,
            "502 5.5.1 Unrecognized command",
            Stage.STARTTLS,
            K.FIX_CONFIG,
            "rfc3463.session_refused",
        ),
        (501, "501 5.5.4 Invalid domain name", Stage.EHLO, K.FIX_CONFIG, "rfc3463.session_refused"),
        (554, "554 5.5.1 Error: no valid recipients", Stage.RSET, K.RETRY, "rfc3463.reset_refused"),
        (550, "550 anything at all", Stage.QUIT, K.ACCEPTED, "smtp.quit"),
    ],
)
def test_fallback_by_class_subject_and_stage(
    code: int, text: str, stage: Stage, kind: OutcomeKind, rule: str
) -> None:
    outcome = classify_reply(code, text, stage=stage, provider="generic")
    assert (outcome.kind, outcome.rule) == (kind, rule)


def test_a_421_always_asks_for_a_new_connection() -> None:
    assert classify_reply(421, "421 4.3.2 Service not available", stage=Stage.MAIL).reconnect
    assert not classify_reply(451, "451 4.3.0 try later", stage=Stage.MAIL).reconnect


def test_auth_failures_outside_the_table_refresh_the_token_first() -> None:
    outcome = classify_reply(535, "535 5.7.8 bad", stage=Stage.AUTH, provider="generic")
    assert outcome.refresh_token_first


def test_the_basic_code_decides_transience_when_the_enhanced_class_disagrees() -> None:
    outcome = classify_reply(451, "451 5.3.0 odd server", stage=Stage.DATA, provider="generic")
    assert outcome.kind is K.RETRY


def test_a_code_only_in_the_text_is_used() -> None:
    outcome = classify_reply(None, "250 2.1.0 Sender OK", stage=Stage.MAIL)
    assert outcome.kind is K.ACCEPTED
    assert outcome.code == 250


def test_an_invalid_code_falls_back_to_the_enhanced_class() -> None:
    outcome = classify_reply(999, "5.1.1 user unknown", stage=Stage.RCPT, provider="generic")
    assert outcome.kind is K.DROP_RECIPIENT
    assert outcome.code is None


@pytest.mark.parametrize("text", ["", "garbage", "25", "\x00\xff", "ABC 4.x.y"])
def test_an_unreadable_reply_after_data_is_unknown_and_never_resent(text: str) -> None:
    outcome = classify_reply(None, text, stage=Stage.DATA)
    assert outcome.kind is K.UNKNOWN
    assert not outcome.retriable
    assert "reconcile" in outcome.remedy.lower()


@pytest.mark.parametrize("stage", [Stage.EHLO, Stage.MAIL, Stage.RCPT, Stage.AUTH])
def test_an_unreadable_reply_elsewhere_retries_on_a_new_connection(stage: Stage) -> None:
    outcome = classify_reply(None, "garbage", stage=stage)
    assert (outcome.kind, outcome.rule, outcome.reconnect) == (K.RETRY, "smtp.malformed", True)


def test_an_unknown_provider_gets_the_rows_every_server_shares() -> None:
    outcome = classify_reply(550, "550 5.1.1 user unknown", stage=Stage.RCPT, provider="yahoo")
    assert outcome.rule == "smtp.recipient_unknown"
    busy = classify_reply(451, "451 4.7.500 Server busy", stage=Stage.DATA, provider="yahoo")
    assert busy.kind is K.RETRY


def test_retry_after_comes_from_the_server_hint() -> None:
    hinted = classify_reply(450, "450 4.2.0 Greylisted, try again in 5 minutes", stage=Stage.RCPT)
    assert hinted.retry_after == 300.0
    plain = classify_reply(451, "451 4.7.500 Server busy. Please try again later", stage=Stage.DATA)
    assert plain.retry_after is None


def test_kind_properties_follow_the_tree() -> None:
    drop = classify_reply(550, "550 5.1.1 user unknown", stage=Stage.RCPT)
    assert drop.hard_bounce and not drop.retriable and not drop.pauses
    pause = classify_reply(
        550, "550 5.7.30 Basic authentication is not supported", stage=Stage.AUTH
    )
    assert pause.pauses and pause.retriable and not pause.hard_bounce
    rejected = classify_reply(550, "550 5.7.520 Message blocked", stage=Stage.DATA)
    assert not rejected.retriable and not rejected.pauses


_WORDS = st.sampled_from(
    [
        "Server busy",
        "STOREDRV.Submission.Exception:",
        "SubmissionQuotaExceededException",
        "QuotaExceededException",
        "mailbox full",
        "WASCL",
        "OutboundSpamException",
        "SmtpClientAuthentication is disabled for the Tenant",
        "security defaults",
        "Authentication unsuccessful",
        "STARTTLS",
        "Too many recipients",
        "user unknown",
        "unsolicited",
        "try again in 3 minutes",
        "try again in 99999999 hours",
        "[10.4.5.6]",
        "(S77719)",
        "\n421-",
        "\r\n",
        "",
        " ",
        "-",
        "5.7.",
        "4.",
        "ü",
        "\x00",
    ]
)
_ENHANCED = st.builds(
    "{}.{}.{}".format,
    st.sampled_from(["2", "4", "5", "9"]),
    st.integers(0, 999),
    st.integers(0, 999),
)
_REPLY_TEXT = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda code, enhanced, words: f"{code} {enhanced} {' '.join(words)}",
        st.integers(0, 999),
        _ENHANCED,
        st.lists(_WORDS, max_size=6),
    ),
)
_CODES = st.one_of(st.none(), st.integers(-(10**6), 10**6), st.sampled_from([421, 535, 550]))
_PROVIDERS = st.sampled_from(["microsoft365", "google", "generic", "sandbox", "", "??"])


@given(code=_CODES, text=_REPLY_TEXT, stage=st.sampled_from(Stage), provider=_PROVIDERS)
def test_classify_reply_never_raises_and_always_says_what_to_do(
    code: int | None, text: str, stage: Stage, provider: str
) -> None:
    outcome = classify_reply(code, text, stage=stage, provider=provider)
    assert isinstance(outcome.kind, OutcomeKind)
    assert outcome.text == text
    assert outcome.rule and outcome.explanation
    if outcome.kind is not K.ACCEPTED:
        assert outcome.remedy.strip()
    if outcome.retry_after is not None:
        assert 0 <= outcome.retry_after <= 7 * 24 * 3600
    assert outcome.code is None or 200 <= outcome.code <= 599
