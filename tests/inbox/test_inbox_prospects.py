"""The sandbox's prospects answer like people and mail servers do, on the virtual clock."""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from datetime import timedelta
from email.message import EmailMessage

import pytest

from mailfleet.clock import VirtualClock, utc
from mailfleet.inbound import Kind, classify
from mailfleet.sandbox import INBOX, JUNK, AnswerShares, Fate, ProspectSimulator, Sandbox

SENDER = "alex@brand.example"
SENT = (
    b"From: Alex Morgan <alex@brand.example>\r\n"
    b"To: ana.berg.1@prospect.example\r\n"
    b"Subject: Quick question about Acme\r\n"
    b"Date: Mon, 02 Mar 2026 09:00:00 +0000\r\n"
    b"Message-ID: <first@brand.example>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Hi Ana,\r\n\r\nWould a short call be worth it?\r\n\r\nAlex\r\n"
)


def only(fate: Fate, junk: float = 0.0) -> AnswerShares:
    shares = dict(reply=0.0, unsubscribe=0.0, out_of_office=0.0, hard_bounce=0.0, soft_bounce=0.0)
    shares[fate.value] = 1.0
    return AnswerShares(**shares, junk=junk)


def simulator(fate: Fate, junk: float = 0.0) -> ProspectSimulator:
    sim = ProspectSimulator(only(fate, junk))
    sim.add_domain("prospect.example")
    return sim


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_fates_follow_the_shares_and_are_the_same_every_run() -> None:
    shares = AnswerShares(reply=0.2, unsubscribe=0.05, out_of_office=0.1, hard_bounce=0.05)
    addresses = [f"p{i}@prospect.example" for i in range(4000)]
    first = [ProspectSimulator(shares).fate(a) for a in addresses]
    assert first == [ProspectSimulator(shares).fate(a) for a in addresses]
    counts = Counter(first)
    assert counts[Fate.REPLY] == pytest.approx(800, rel=0.15)
    assert counts[Fate.OUT_OF_OFFICE] == pytest.approx(400, rel=0.2)
    assert counts[Fate.HARD_BOUNCE] == pytest.approx(200, rel=0.25)
    assert counts[Fate.SILENT] == pytest.approx(4000 * 0.59, rel=0.1)
    other_seed = [ProspectSimulator(AnswerShares(seed=9)).fate(a) for a in addresses[:200]]
    assert other_seed != [ProspectSimulator(AnswerShares()).fate(a) for a in addresses[:200]]


def test_shares_are_checked() -> None:
    with pytest.raises(ValueError, match="more than 1"):
        AnswerShares(reply=0.9, hard_bounce=0.5)
    with pytest.raises(ValueError, match="negative"):
        AnswerShares(junk=-0.1)


def test_a_reply_is_threaded_quotes_the_history_and_comes_later() -> None:
    sim = simulator(Fate.REPLY)
    at = utc(2026, 3, 2, 9)
    delivered = sim.record("ana.berg.1@prospect.example", SENDER, SENT, at)
    # Some prospects answer the second message; send one more to cover both.
    sim.record("ana.berg.1@prospect.example", SENDER, SENT.replace(b"<first@", b"<second@"), at)
    assert sim.due(at) == []
    (answer,) = sim.due(at + timedelta(days=2))
    assert answer.kind is Fate.REPLY and answer.mailbox == SENDER
    assert timedelta(minutes=20) <= answer.at - delivered.received_at <= timedelta(hours=30)
    message = parsed(answer.raw)
    replied_to = answer.answers_message_id
    assert message["In-Reply-To"] == replied_to
    assert replied_to in message["References"]
    assert message["Subject"] == "Re: Quick question about Acme"
    body = message.get_content()
    assert "wrote:" in body and "> Would a short call be worth it?" in body
    result = classify(answer.raw)
    assert result.kind is Kind.REPLY and result.in_reply_to == replied_to
    assert "wrote:" not in result.text


def test_an_out_of_office_answer_is_rfc_3834_with_a_return_date() -> None:
    sim = simulator(Fate.OUT_OF_OFFICE)
    at = utc(2026, 3, 2, 9)
    sims = [f"p{i}@prospect.example" for i in range(30)]
    for address in sims:
        sim.record(address, SENDER, SENT, at)
    answers = sim.due(at + timedelta(minutes=5))
    assert len(answers) == 30
    with_date = [a for a in answers if a.return_date is not None]
    assert 10 < len(with_date) < 30  # most, not all, say when they are back
    for answer in answers:
        message = parsed(answer.raw)
        assert message["Auto-Submitted"] == "auto-replied"
        assert message["In-Reply-To"] == "<first@brand.example>"
        result = classify(answer.raw)
        assert result.kind is Kind.AUTO_REPLY
        assert result.return_date == answer.return_date
    # RFC 3834: the next message a day later gets no second automatic answer.
    sim.record(sims[0], SENDER, SENT, at + timedelta(days=1))
    assert sim.due(at + timedelta(days=2)) == []


@pytest.mark.parametrize(
    ("fate", "status", "hard"),
    [(Fate.HARD_BOUNCE, "5.1.1", True), (Fate.SOFT_BOUNCE, "5.2.2", False)],
)
def test_a_bounce_is_an_rfc_3464_report_with_the_original_headers(
    fate: Fate, status: str, hard: bool
) -> None:
    sim = simulator(fate)
    at = utc(2026, 3, 2, 9)
    sim.record("ana.berg.1@prospect.example", SENDER, SENT, at)
    (answer,) = sim.due(at + timedelta(minutes=6))
    message = parsed(answer.raw)
    assert message["Return-Path"] == "<>"
    assert message["From"].addresses[0].username == "postmaster"
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "message/delivery-status", "text/rfc822-headers"]
    result = classify(answer.raw)
    assert result.kind is Kind.BOUNCE
    assert result.original_message_id == "<first@brand.example>"
    (recipient,) = result.recipients
    assert recipient.address == "ana.berg.1@prospect.example"
    assert recipient.status == status and recipient.hard is hard
    if fate is Fate.SOFT_BOUNCE:  # a full mailbox bounces once, later mail gets through
        sim.record("ana.berg.1@prospect.example", SENDER, SENT, at + timedelta(days=2))
        assert sim.due(at + timedelta(days=3)) == []


async def test_the_sandbox_files_answers_in_the_senders_inbox_or_junk(
    clock: VirtualClock, sandbox: Sandbox
) -> None:
    sandbox.prospects.shares = only(Fate.OUT_OF_OFFICE, junk=0.5)
    sandbox.add_prospect_domain("prospect.example")
    for i in range(20):
        sandbox.prospects.record(f"p{i}@prospect.example", SENDER, SENT, clock.now())
    assert sandbox.release_answers() == 0  # nothing is due yet
    clock.advance(timedelta(minutes=5))
    assert sandbox.release_answers() == 20
    inbox, junk = sandbox.store.messages(SENDER, INBOX), sandbox.store.messages(SENDER, JUNK)
    assert len(inbox) + len(junk) == 20 and inbox and junk
    assert all(m.received_at <= clock.now() for m in [*inbox, *junk])
    assert sandbox.release_answers() == 0
