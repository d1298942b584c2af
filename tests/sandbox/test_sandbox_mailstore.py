"""The mail store keeps folders per lower-cased address with growing UIDs."""

from __future__ import annotations

import pytest

from mailfleet.clock import utc
from mailfleet.sandbox import INBOX, JUNK, SENT_ITEMS, MailStore, ProspectSimulator

WHEN = utc(2025, 3, 3, 9)
RAW = (
    b"Message-ID: <a1@x.test>\r\nIn-Reply-To: <p0@x.test>\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9?=\r\n\r\nbody\r\n"
)


def test_messages_are_filed_per_lower_cased_address_with_growing_uids() -> None:
    store = MailStore()
    first = store.append(
        "Ann@X.test", INBOX, RAW, sender="S@x.test", recipients=["Ann@X.test"], received_at=WHEN
    )
    second = store.append(
        "ann@x.test", INBOX, b"\r\n", sender="s@x.test", recipients=[], received_at=WHEN
    )
    assert (first.uid, second.uid) == (1, 2)
    assert first.sender == "s@x.test"
    assert first.message_id == "<a1@x.test>"
    assert second.message_id is None
    assert store.count("ANN@x.test") == 2
    assert store.folders("ann@x.test") == [INBOX, JUNK, SENT_ITEMS]


def test_each_folder_has_its_own_uid_validity_and_uids() -> None:
    store = MailStore()
    store.ensure_mailbox("a@x.test")
    store.append("a@x.test", SENT_ITEMS, RAW, sender="a@x.test", recipients=[], received_at=WHEN)
    inbox, sent = store.folder("a@x.test", INBOX), store.folder("a@x.test", SENT_ITEMS)
    assert inbox is not None and sent is not None
    assert inbox.uid_validity != sent.uid_validity
    assert (inbox.uid_next, sent.uid_next) == (1, 2)


def test_find_by_message_id_ignores_angle_brackets() -> None:
    store = MailStore()
    store.append("a@x.test", SENT_ITEMS, RAW, sender="a@x.test", recipients=[], received_at=WHEN)
    assert store.find_by_message_id("a@x.test", SENT_ITEMS, "a1@x.test") is not None
    assert store.find_by_message_id("a@x.test", SENT_ITEMS, " <a1@x.test> ") is not None
    assert store.find_by_message_id("a@x.test", INBOX, "<a1@x.test>") is None
    assert store.find_by_message_id("nobody@x.test", INBOX, "<a1@x.test>") is None


def test_prospect_simulator_records_threading_fields_and_decoded_subject() -> None:
    prospects = ProspectSimulator()
    prospects.add_domain("Prospect.TEST.")
    assert prospects.is_prospect("joe@prospect.test")
    assert not prospects.is_prospect("joe@sub.prospect.test")
    delivery = prospects.record("Joe@prospect.test", "a@x.test", RAW, WHEN)
    assert delivery.address == "joe@prospect.test"
    assert (delivery.message_id, delivery.in_reply_to) == ("<a1@x.test>", "<p0@x.test>")
    assert delivery.subject == "Café"
    assert prospects.received("JOE@prospect.test") == [delivery]
    assert prospects.count() == 1


def test_a_sender_with_a_bad_list_slice_gets_hard_bounces_from_that_share_only() -> None:
    from mailfleet.sandbox.prospects import AnswerShares, Fate

    quiet = AnswerShares(reply=0, unsubscribe=0, out_of_office=0, hard_bounce=0, soft_bounce=0)
    prospects = ProspectSimulator(quiet)
    prospects.set_sender_bounce("bad@x.test", 0.05)
    addresses = [f"p{i}@prospect.test" for i in range(4000)]
    bad = sum(prospects.fate_from(a, "BAD@x.test") is Fate.HARD_BOUNCE for a in addresses)
    good = sum(prospects.fate_from(a, "good@x.test") is Fate.HARD_BOUNCE for a in addresses)
    assert good == 0
    assert 0.035 < bad / len(addresses) < 0.065
    prospects.set_sender_bounce("bad@x.test", 0)
    assert all(prospects.fate_from(a, "bad@x.test") is Fate.SILENT for a in addresses[:200])
    with pytest.raises(ValueError, match="between 0 and 1"):
        prospects.set_sender_bounce("bad@x.test", 1.5)
