import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage, MIMEPart

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailfleet.content import (
    HeaderInjectionError,
    MessageBuildError,
    OutgoingMessage,
    build_message,
    make_message_id,
    reply_subject,
    thread_references,
)

DATE = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SPEC = OutgoingMessage(
    from_address="anna@brand-mail.com",
    from_name="Anna Smith",
    to_address="bob@example.com",
    to_name="Bob Jones",
    subject="Quick question",
    text="Hi Bob,\n\nA short note.\n",
    message_id="<abc123@brand-mail.com>",
    date=DATE,
)


def _body(part: MIMEPart | None) -> str:
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")  # the wire form has CRLF line ends


def _parsed(spec: OutgoingMessage) -> EmailMessage:
    raw = build_message(spec).as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_text_message_headers_round_trip() -> None:
    msg = _parsed(SPEC)
    assert msg["From"] == "Anna Smith <anna@brand-mail.com>"
    assert msg["To"] == "Bob Jones <bob@example.com>"
    assert msg["Subject"] == "Quick question"
    assert msg["Message-ID"] == "<abc123@brand-mail.com>"
    assert msg["Date"].datetime == DATE
    assert msg["MIME-Version"] == "1.0"
    assert msg.get_content_type() == "text/plain"
    assert _body(msg) == "Hi Bob,\n\nA short note.\n"
    for absent in ("In-Reply-To", "References", "List-Unsubscribe", "List-Unsubscribe-Post"):
        assert absent not in msg


def test_html_makes_multipart_alternative() -> None:
    msg = _parsed(replace(SPEC, html="<p>Hi Bob,</p>"))
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all("MIME-Version" not in p for p in parts)
    assert _body(msg.get_body(("html",))) == "<p>Hi Bob,</p>\n"


def test_lines_end_with_crlf_and_bytes_are_seven_bit() -> None:
    spec = replace(SPEC, subject="Grüße aus Köln", text="Zoë " + "ü" * 500 + "\n", html="<p>é</p>")
    raw = build_message(spec).as_bytes()
    assert raw.isascii()
    assert b"\r\n" in raw and re.search(rb"[^\r]\n", raw) is None
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78


def test_non_ascii_names_and_subjects_round_trip() -> None:
    spec = replace(
        SPEC, from_name="Zoë Ünal, Ltd.", to_name='Jürgen "JJ" Weiß', subject="Grüße – 你好 👋"
    )
    raw = build_message(spec).as_bytes()
    assert b"=?utf-8?" in raw
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg["From"].addresses[0].display_name == "Zoë Ünal, Ltd."
    assert msg["To"].addresses[0].display_name == 'Jürgen "JJ" Weiß'
    assert msg["Subject"] == "Grüße – 你好 👋"


def test_non_ascii_body_round_trips() -> None:
    msg = _parsed(replace(SPEC, text="Hallo Zoë, ça va?\n", html="<p>Grüße</p>\n"))
    assert _body(msg.get_body(("plain",))) == "Hallo Zoë, ça va?\n"
    assert _body(msg.get_body(("html",))) == "<p>Grüße</p>\n"


def test_non_ascii_local_part_is_refused() -> None:
    with pytest.raises(MessageBuildError, match="SMTPUTF8") as info:
        build_message(replace(SPEC, to_address="jürgen@example.com"))
    assert info.value.header == "To"


def test_idn_domain_is_encoded() -> None:
    msg = _parsed(replace(SPEC, to_address="bob@bücher.de"))
    assert msg["To"].addresses[0].domain == "xn--bcher-kva.de"


def test_threading_headers() -> None:
    spec = replace(
        SPEC,
        subject=reply_subject(SPEC.subject),
        in_reply_to="<first@brand-mail.com>",
        references=["<first@brand-mail.com>"],
    )
    msg = _parsed(spec)
    assert msg["Subject"] == "Re: Quick question"
    assert msg["In-Reply-To"] == "<first@brand-mail.com>"
    assert msg["References"] == "<first@brand-mail.com>"


def test_one_click_unsubscribe_headers() -> None:
    msg = _parsed(
        replace(
            SPEC,
            unsubscribe_url="https://u.brand-mail.com/u/tok123",
            unsubscribe_mailto="unsubscribe@brand-mail.com",
        )
    )
    assert msg["List-Unsubscribe"] == (
        "<https://u.brand-mail.com/u/tok123>, <mailto:unsubscribe@brand-mail.com>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


OUTLOOK_ID = "<DM6PR11MB4123A1B2C3D4E5F6A7B8C9D0E1F2A3B4@DM6PR11MB4123.namprd11.prod.outlook.com>"


def test_long_urls_and_message_ids_are_never_encoded() -> None:
    # The stdlib would turn a token longer than a line into RFC 2047 encoded
    # words; receivers would then see no usable URL or id.
    url = "https://u.brand-mail.com/u/" + "t0k3n" * 30
    spec = replace(
        SPEC,
        message_id=OUTLOOK_ID,
        in_reply_to=OUTLOOK_ID,
        references=[OUTLOOK_ID, "<b@brand-mail.com>"],
        unsubscribe_url=url,
    )
    raw = build_message(spec).as_bytes()
    assert b"=?" not in raw
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg["Message-ID"] == OUTLOOK_ID
    assert msg["In-Reply-To"] == OUTLOOK_ID
    assert msg["References"] == f"{OUTLOOK_ID} <b@brand-mail.com>"
    assert msg["List-Unsubscribe"] == f"<{url}>"


def test_token_headers_fold_only_between_tokens() -> None:
    refs = [f"<message-{i}-abcdefghij@brand-mail.com>" for i in range(6)]
    raw = build_message(replace(SPEC, references=refs)).as_bytes().decode()
    folded = re.search(r"\r\nReferences: (.*?)\r\n(?! )", raw, flags=re.DOTALL)
    assert folded is not None and "\r\n " in folded.group(1)
    assert folded.group(1).split() == refs
    assert all(len(line) <= 78 for line in raw.split("\r\n"))


def test_mailto_alone_has_no_one_click_post() -> None:
    msg = _parsed(replace(SPEC, unsubscribe_mailto="mailto:u@brand-mail.com?subject=stop"))
    assert msg["List-Unsubscribe"] == "<mailto:u@brand-mail.com?subject=stop>"
    assert "List-Unsubscribe-Post" not in msg


def test_unsubscribe_url_must_be_absolute_http() -> None:
    with pytest.raises(MessageBuildError, match="List-Unsubscribe"):
        build_message(replace(SPEC, unsubscribe_url="javascript:alert(1)"))


@pytest.mark.parametrize(
    "url", ["http://u.brand-mail.com/unsubscribe/t", "http://10.0.0.5/u/t", "ftp://x.example/t"]
)
def test_plain_http_unsubscribe_is_refused_off_loopback(url: str) -> None:
    with pytest.raises(MessageBuildError, match="https"):
        build_message(replace(SPEC, unsubscribe_url=url))


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8025/unsubscribe/t", "http://localhost/u/t", "http://[::1]:80/u"]
)
def test_plain_http_unsubscribe_is_allowed_on_loopback(url: str) -> None:
    assert _parsed(replace(SPEC, unsubscribe_url=url))["List-Unsubscribe"] == f"<{url}>"


def test_extra_headers_are_added_but_cannot_replace_ours() -> None:
    msg = _parsed(replace(SPEC, extra_headers={"X-Mailfleet-Send": "42"}))
    assert msg["X-Mailfleet-Send"] == "42"
    with pytest.raises(MessageBuildError, match="Bcc"):
        build_message(replace(SPEC, extra_headers={"Bcc": "spy@example.com"}))
    with pytest.raises(MessageBuildError, match="not valid"):
        build_message(replace(SPEC, extra_headers={"X Bad": "1"}))


@pytest.mark.parametrize(
    ("changes", "header"),
    [
        ({"subject": "Hi\r\nBcc: victim@example.com"}, "Subject"),
        ({"subject": "Hi\nthere"}, "Subject"),
        ({"to_name": "Bob\r\nBcc: victim@example.com"}, "To"),
        ({"from_name": "Anna\x00"}, "From"),
        ({"to_address": "bob@example.com\nBcc: x@example.com"}, "To"),
        ({"subject": "line\u2028separator"}, "Subject"),
        ({"in_reply_to": "<a@b>\r\nX: y"}, "In-Reply-To"),
        ({"unsubscribe_url": "https://u.example.com/\r\nBcc: x"}, "List-Unsubscribe"),
        ({"extra_headers": {"X-Tag": "a\nBcc: x"}}, "X-Tag"),
    ],
)
def test_control_characters_in_headers_are_refused(changes: dict[str, object], header: str) -> None:
    with pytest.raises(HeaderInjectionError) as info:
        build_message(replace(SPEC, **changes))  # type: ignore[arg-type]
    assert info.value.header == header
    assert f"header {header} contains control character" in str(info.value)


PLAIN_HEADERS = sorted(
    [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    ]
)


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40))
def test_no_subject_can_add_a_header(subject: str) -> None:
    try:
        raw = build_message(replace(SPEC, subject=subject)).as_bytes()
    except HeaderInjectionError:
        assert re.search(r"[\x00-\x1f\x7f\x85\u2028\u2029]", subject)
        return
    msg = message_from_bytes(raw, policy=policy.default)
    assert sorted(msg.keys()) == PLAIN_HEADERS
    # Whitespace at either end of an unstructured header is not significant (RFC 5322).
    assert msg["Subject"].strip() == subject.strip()


def test_naive_date_is_refused() -> None:
    with pytest.raises(MessageBuildError, match="timezone-aware"):
        build_message(replace(SPEC, date=datetime(2026, 3, 2, 9, 30)))


def test_date_keeps_its_offset() -> None:
    paris = datetime(2026, 3, 2, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    msg = _parsed(replace(SPEC, date=paris))
    assert msg["Date"].endswith("+0100")
    assert msg["Date"].datetime == DATE


def test_malformed_message_id_is_refused() -> None:
    with pytest.raises(MessageBuildError, match="Message-ID"):
        build_message(replace(SPEC, message_id="no-brackets@example.com"))


def test_same_spec_gives_the_same_bytes() -> None:
    spec = replace(SPEC, html="<p>Hi</p>")
    assert build_message(spec).as_bytes() == build_message(spec).as_bytes()


def test_make_message_id_is_deterministic_and_random_looking() -> None:
    first = make_message_id("brand-mail.com", "6f1c0a52-uuid")
    assert first == make_message_id("brand-mail.com", "6f1c0a52-uuid")
    assert first != make_message_id("brand-mail.com", "6f1c0a52-uuie")
    assert re.fullmatch(r"<[a-z2-7]{24}@brand-mail\.com>", first)
    assert make_message_id("Bücher.de", "x").endswith("@xn--bcher-kva.de>")


def test_make_message_id_refuses_a_bad_domain() -> None:
    with pytest.raises(MessageBuildError):
        make_message_id("bad domain", "x")
    with pytest.raises(HeaderInjectionError):
        make_message_id("example.com\r\n", "x")


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Quick question", "Re: Quick question"),
        ("Re: Quick question", "Re: Quick question"),
        ("RE: re: Quick question", "Re: Quick question"),
        ("re:Quick", "Re: Quick"),
        ("Re[2]: Quick", "Re: Quick"),
        ("Regarding the call", "Re: Regarding the call"),
        ("", "Re:"),
    ],
)
def test_reply_subject_does_not_stack(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


def test_thread_references_appends_the_parent() -> None:
    assert thread_references(["<a@x>", "<b@x>"], "<c@x>") == ["<a@x>", "<b@x>", "<c@x>"]


def test_thread_references_reads_raw_header_values_and_dedupes() -> None:
    assert thread_references(["<a@x> <b@x>\r\n <a@x>"], "<b@x>") == ["<a@x>", "<b@x>"]


def test_thread_references_falls_back_to_in_reply_to() -> None:
    assert thread_references([], "<c@x>", parent_in_reply_to="<b@x>") == ["<b@x>", "<c@x>"]
    assert thread_references([], "<c@x>", parent_in_reply_to="<a@x> <b@x>") == ["<c@x>"]


def test_thread_references_stay_bounded_keeping_the_root() -> None:
    chain = [f"<m{i}@x>" for i in range(100)]
    refs = thread_references(chain, "<new@x>", limit=5)
    assert refs == ["<m0@x>", "<m97@x>", "<m98@x>", "<m99@x>", "<new@x>"]


def test_the_send_policy_still_refuses_line_breaks_in_token_headers() -> None:
    msg = build_message(SPEC)
    with pytest.raises(HeaderInjectionError):
        msg["References"] = "<a@b>\r\nBcc: victim@example.com"
