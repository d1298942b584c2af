"""The classifier's building blocks: reasons, return dates, thread subjects, new text, wording."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailfleet.inbound import BounceReason, bounce_reason, new_text, thread_subject
from mailfleet.inbound.dates import return_date
from mailfleet.inbound.wording import out_of_office, unsubscribe

WEDNESDAY = date(2025, 3, 5)


@pytest.mark.parametrize(
    ("status", "diagnostic", "reason"),
    [
        ("5.1.1", "550 5.1.1 <x@y>: Recipient address rejected: User unknown", "user_unknown"),
        (
            "5.1.10",
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found",
            "user_unknown",
        ),
        (
            "5.2.1",
            "550 5.2.1 The email account that you tried to reach is disabled",
            "mailbox_disabled",
        ),
        ("5.1.2", "Sorry, I couldn't find any host named gone.example. (#5.1.2)", "host_unknown"),
        ("5.4.4", "Host or domain name not found. Name service error", "host_unknown"),
        ("5.2.2", "552 5.2.2 The recipient's inbox is out of storage space", "mailbox_full"),
        ("5.3.4", "552 5.3.4 Message size exceeds fixed limit", "message_too_large"),
        ("5.7.1", "550 5.7.1 this message has been blocked as likely spam", "spam"),
        ("5.7.1", "554 5.7.1 Client host blocked using zen.spamhaus.org", "blocked"),
        ("5.7.26", "550 5.7.26 unauthenticated: SPF and DKIM did not pass", "policy"),
        ("5.7.509", "550 5.7.509 does not pass DMARC verification", "policy"),
        ("4.7.0", "421 4.7.0 [TSS04] deferred due to unexpected volume", "rate_limited"),
        ("4.7.1", "451 4.7.1 Greylisting in action, please come back later", "greylisted"),
        ("4.4.7", "Delivery time expired", "expired"),
        ("4.4.1", "connect to mx.example[1.2.3.4]:25: Connection timed out", "routing"),
        ("4.3.0", "421 4.3.0 Temporary System Problem. Try again later", "system"),
        ("5.1.1", "", "user_unknown"),
        ("4.4.7", "", "expired"),
        ("5.7.12", "", "policy"),
        (None, "", "unknown"),
        ("5.5.0", "550 5.5.0 Requested action not taken: mailbox unavailable", "unknown"),
    ],
)
def test_bounce_reason(status: str | None, diagnostic: str, reason: str) -> None:
    assert bounce_reason(status, diagnostic) is BounceReason(reason)


def test_reason_words_need_a_word_boundary() -> None:
    assert bounce_reason(None, "we reduce noise") is BounceReason.UNKNOWN  # not "uce"


@pytest.mark.parametrize(
    ("text", "language", "back"),
    [
        ("I am out of the office until Monday, March 10th.", "en", date(2025, 3, 10)),
        ("I'm on vacation until March 17 with limited access to email.", "en", date(2025, 3, 17)),
        ("I will return on 3/17.", "en", date(2025, 3, 17)),
        ("Ich bin bis einschließlich 14.03.2025 nicht im Büro.", "de", date(2025, 3, 14)),
        ("Ich bin ab Montag wieder im Büro.", "de", date(2025, 3, 10)),
        ("Je suis absente jusqu'au lundi 17 mars inclus.", "fr", date(2025, 3, 17)),
        ("Estaré fuera de la oficina hasta el 15 de abril.", "es", date(2025, 4, 15)),
        ("Ik ben afwezig t/m maandag 7 april.", "nl", date(2025, 4, 7)),
        ("Estou fora do escritório até 22/05/2025.", "pt", date(2025, 5, 22)),
        ("Sono fuori ufficio fino al 2 giugno.", "it", date(2025, 6, 2)),
        ("Away from 3 March through 12 March 2025.", "en", date(2025, 3, 12)),
        ("Out until 2025-03-20.", "en", date(2025, 3, 20)),
        ("Back tomorrow.", "en", date(2025, 3, 6)),
        ("Je serai de retour la semaine prochaine.", "fr", date(2025, 3, 10)),
        ("Out of office until 6 January.", "en", date(2026, 1, 6)),  # the next 6 January
        ("I am travelling with limited access to email.", "en", None),
        ("Call me at 555-12-11.", "en", None),
    ],
)
def test_return_date(text: str, language: str, back: date | None) -> None:
    assert return_date(text, anchor=WEDNESDAY, language=language) == back


def test_return_date_without_an_anchor_needs_a_full_date() -> None:
    assert return_date("back on Monday", anchor=None) is None
    assert return_date("until 14 March", anchor=None) is None
    assert return_date("until 14 March 2025", anchor=None) == date(2025, 3, 14)


def test_far_dates_are_ignored() -> None:
    assert return_date("since 1 January 2019, until 14 March", anchor=WEDNESDAY) == date(
        2025, 3, 14
    )


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=600), st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 1, 1)))
def test_return_date_never_raises(text: str, anchor: date) -> None:
    found = return_date(text, anchor=anchor, language="en")
    assert found is None or abs((found - anchor).days) <= 400


@pytest.mark.parametrize(
    ("subject", "thread"),
    [
        ("Re: Quick question", "Quick question"),
        ("RE: AW: [EXTERNAL] Quick  question", "Quick question"),
        ("Automatic reply: Quick question", "Quick question"),
        ("Automatische Antwort: Quick question", "Quick question"),
        ("SV: Re[2]: Quick question", "Quick question"),
        ("Fwd: Re: Quick question", "Quick question"),
        ("Quick question", "Quick question"),
        ("Regarding: pricing", "Regarding: pricing"),
    ],
)
def test_thread_subject(subject: str, thread: str) -> None:
    assert thread_subject(subject) == thread


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Yes!\n\nOn Tue, Mar 4, 2025 at 10:12 AM Anna <a@b.example> wrote:\n> hi", "Yes!"),
        (
            "Yes!\n\nOn Tue, Mar 4, 2025 at 10:12 AM Anna Becker <\na@b.example> wrote:\n> hi",
            "Yes!",
        ),
        ("Ja.\n\nAm 04.03.2025 um 10:12 schrieb Anna <a@b.example>:\n> hi", "Ja."),
        ("Oui.\n\n-----Message d'origine-----\nDe : Anna", "Oui."),
        ("Sure.\n\nFrom: Anna\nSent: Tuesday\nTo: Tom\nSubject: hi\n\nold", "Sure."),
        ("Sure.\n\nFrom: Anna\nDate: Tuesday\nTo: Tom\n\nold", "Sure."),
        ("Top line\n> quoted tail\n> more", "Top line"),
        ("No history at all.", "No history at all."),
        ("", ""),
    ],
)
def test_new_text(body: str, expected: str) -> None:
    assert new_text(body) == expected


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("please unsubscribe me", "en"),
        ("take me off your list", "en"),
        ("stop emailing me", "en"),
        ("STOP", "en"),
        ("bitte austragen", "de"),
        ("merci de me désinscrire", "fr"),
        ("por favor, denme de baja", "es"),
        ("graag afmelden", "nl"),
        ("por favor me descadastre", "pt"),
        ("cancellami dalla lista", "it"),
        ("not interested, thanks", None),
        ("let's stop by your booth", None),
        ("we should remove the old servers", None),
        ("our team reduces churn", None),
    ],
)
def test_unsubscribe_wording(text: str, language: str | None) -> None:
    assert unsubscribe(text.lower()) == language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("i am out of the office until monday", "en"),
        ("ich bin bis freitag nicht im büro", "de"),
        ("je suis absent jusqu'au 3 mars", "fr"),
        ("estoy fuera de la oficina", "es"),
        ("ik ben tot maandag afwezig", "nl"),
        ("estou de férias", "pt"),
        ("sono fuori ufficio", "it"),
        ("i was out of office last week, let's talk thursday", None),
        ("i'll get back on this next week", None),
    ],
)
def test_out_of_office_wording(text: str, language: str | None) -> None:
    assert out_of_office(text) == language
