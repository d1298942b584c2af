"""Hostile and broken messages: each is classified, never raises, and costs bounded memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailfleet.inbound import MAX_MESSAGE_BYTES, MAX_RESULT_TEXT, Classification, Kind, classify

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
SAMPLES = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
HEAD = b"From: Tom Baker <tom@acme.example>\r\nTo: anna@brand-mail.com\r\nSubject: Re: x\r\n"


def _nested(levels: int, kind: bytes = b"multipart/mixed") -> bytes:
    head, tail = HEAD + b"MIME-Version: 1.0\r\n", b""
    for i in range(levels):
        if kind == b"message/rfc822":
            head += b"Content-Type: message/rfc822\r\n\r\nFrom: x@y.example\r\n"
        else:
            head += b'Content-Type: %s; boundary="b%d"\r\n\r\n--b%d\r\n' % (kind, i, i)
            tail = b"\r\n--b%d--\r\n" % i + tail
    return head + b"Content-Type: text/plain\r\n\r\nbottom" + tail


def _sane(result: Classification) -> None:
    assert isinstance(result.kind, Kind)
    assert len(result.text) <= MAX_RESULT_TEXT
    for recipient in result.recipients:
        assert recipient.address


HOSTILE = {
    "empty": b"",
    "blank_lines": b"\r\n\r\n\r\n",
    "headers_only": b"From: someone@acme.example\r\nSubject: \r\n\r\n",
    "no_colon_header": b"this is not a header\r\nnor this\r\n\r\nbody",
    "nul_bytes": HEAD + b"\r\n\x00\x00hello\x00",
    "binary_noise": bytes(range(256)) * 16,
    "nested_multipart_5000": _nested(5000),
    "nested_message_rfc822_3000": _nested(3000, b"message/rfc822"),
    "nested_report_200": _nested(200, b"multipart/report; report-type=delivery-status"),
    "content_length_lie": HEAD + b"Content-Length: 9999999999999\r\n\r\nshort",
    "missing_boundary": HEAD + b'Content-Type: multipart/mixed; boundary="never"\r\n\r\ntext',
    "empty_boundary": HEAD + b'Content-Type: multipart/alternative; boundary=""\r\n\r\n--\r\n',
    "bad_base64": HEAD + b"Content-Transfer-Encoding: base64\r\n\r\n@@@!!!===\r\n",
    "bad_quoted_printable": HEAD + b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n=",
    "unknown_charset": HEAD + b"Content-Type: text/plain; charset=x-klingon\r\n\r\n\xff\xfe",
    "bad_encoded_words": b"From: =?utf-8?b?!!!?= <a@b.example>\r\n"
    b"Subject: =?x-bad?q?=FF?=\r\n\r\nx",
    "8bit_everywhere": "From: Jürgen <jü@exämple.de>\r\nSubject: Grüße\r\n\r\nÄÖÜ".encode(),
    "latin1_headers": "From: Renée <r@x.example>\r\nSubject: réunion\r\n\r\nok".encode("latin-1"),
    "giant_header": b"Subject: " + b"=?utf-8?q?a?= " * 100_000 + b"\r\n\r\nx",
    "many_headers": b"X-A: b\r\n" * 50_000 + b"\r\nbody",
    "long_line": HEAD + b"\r\n" + b"On " * 200_000,
    "dsn_without_recipients": HEAD
    + b'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
    + b"--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n--r--\r\n",
    "dsn_garbage_fields": HEAD
    + b'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
    + b"--r\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: ;;;\r\n"
    + b"Action: exploded\r\nStatus: 9.9.9\r\n\r\n--r--\r\n",
    "arf_empty": HEAD
    + b'Content-Type: multipart/report; report-type=feedback-report; boundary="f"\r\n\r\n'
    + b"--f\r\nContent-Type: message/feedback-report\r\n\r\n\r\n--f--\r\n",
}


@pytest.mark.parametrize("raw", HOSTILE.values(), ids=list(HOSTILE))
def test_hostile_messages_are_classified(raw: bytes) -> None:
    _sane(classify(raw))


def test_empty_message_is_other() -> None:
    assert classify(b"").kind is Kind.OTHER


def test_deep_nesting_parses_headers_only_and_still_reads_the_sender() -> None:
    result = classify(_nested(5000))
    assert result.from_address == "tom@acme.example"
    assert result.kind is Kind.REPLY  # a person wrote it; the body is not readable


def test_oversized_input_is_cut_and_flagged() -> None:
    raw = HEAD + b"\r\n" + b"Yes, call me.\r\n" + b"A" * (3 * MAX_MESSAGE_BYTES)
    result = classify(raw)
    assert result.truncated
    assert result.kind is Kind.REPLY
    assert result.text.startswith("Yes, call me.")


def test_memory_is_bounded_by_the_read_cap_not_the_input() -> None:
    raw = HEAD + b"Content-Type: text/plain\r\n\r\n" + b"x" * (40 * 1024 * 1024)
    tracemalloc.start()
    try:
        classify(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MAX_MESSAGE_BYTES  # a 40 MiB input costs what 1 MiB does


@pytest.mark.parametrize("step", [1, 7, 97])
def test_every_truncation_of_a_report_is_classified(step: int) -> None:
    raw = (CORPUS / "gmail_user_unknown.eml").read_bytes()
    for end in range(0, len(raw), step * 37):
        _sane(classify(raw[:end]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=6000))
def test_fuzz_random_bytes(raw: bytes) -> None:
    _sane(classify(raw))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SAMPLES),
    st.lists(st.tuples(st.integers(0, 100_000), st.binary(min_size=0, max_size=8)), max_size=8),
    st.integers(0, 100_000),
)
def test_fuzz_mutated_corpus(raw: bytes, edits: list[tuple[int, bytes]], cut: int) -> None:
    data = bytearray(raw)
    for position, replacement in edits:
        at = position % (len(data) + 1)
        data[at : at + len(replacement)] = replacement
    _sane(classify(bytes(data[: max(cut, len(data) // 2)])))


_header_names = st.sampled_from(
    [
        "From",
        "To",
        "Subject",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Auto-Submitted",
        "Precedence",
        "In-Reply-To",
        "References",
        "Return-Path",
        "X-Failed-Recipients",
        "Date",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_header_names, st.text(max_size=120)), max_size=12),
    st.text(max_size=2000),
)
def test_fuzz_structured_headers_and_body(headers: list[tuple[str, str]], body: str) -> None:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
    raw = (lines + "\r\n" + body).encode("utf-8", "surrogatepass")
    _sane(classify(raw))
