"""The sandbox's spam filter: a chosen share of a sender domain's mail lands in Junk."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailfleet.sandbox import INBOX, JUNK, Sandbox
from mailfleet.sandbox.behaviour import Submission
from mailfleet.sandbox.junk import JunkRules

from .support import SENDER, TENANT

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def raw(n: int, sender: str = SENDER) -> bytes:
    return (
        f"From: {sender}\r\nTo: x\r\nMessage-ID: <m{n}@x.test>\r\nSubject: s\r\n\r\nhi\r\n".encode()
    )


def test_most_specific_rule_wins_and_zero_lifts_it() -> None:
    rules = JunkRules()
    rules.set("*", "a.test", 0.5)
    rules.set("Bob@B.test", "a.test", 1.0)
    rules.set("bob@b.test", "*", 0.25)
    assert rules.share("bob@b.test", "x@a.test") == 1.0
    assert rules.share("bob@b.test", "x@c.test") == 0.25
    assert rules.share("eve@b.test", "x@A.test") == 0.5
    rules.set("bob@b.test", "a.test", 0.0)
    assert not rules.files_in_junk("bob@b.test", "x@a.test", raw(1))


def test_a_share_files_about_that_share_deterministically() -> None:
    rules = JunkRules()
    rules.set("*", "a.test", 0.3)
    picks = [rules.files_in_junk("bob@b.test", "x@a.test", raw(n)) for n in range(2000)]
    assert 0.26 < sum(picks) / len(picks) < 0.34
    assert picks == [rules.files_in_junk("bob@b.test", "x@a.test", raw(n)) for n in range(2000)]


@pytest.mark.parametrize(("share", "domain"), [(1.5, "a.test"), (-0.1, "a.test"), (0.5, " ")])
def test_bad_rules_are_refused(share: float, domain: str) -> None:
    with pytest.raises(ValueError):
        JunkRules().set("*", domain, share)


def test_delivery_between_world_mailboxes_follows_the_rules_over_time(sandbox: Sandbox) -> None:
    peer = "peer@other.test"
    sandbox.add_mailbox(peer, TENANT)
    sandbox.set_junk_share(peer, SENDER.rpartition("@")[2], 1.0)
    sandbox.deliver(Submission(SENDER, (peer,), raw(1), "<m1@x.test>"), NOW)
    sandbox.set_junk_share(peer, SENDER.rpartition("@")[2], 0.0)
    sandbox.deliver(Submission(SENDER, (peer,), raw(2), "<m2@x.test>"), NOW)
    assert [m.message_id for m in sandbox.store.messages(peer, JUNK)] == ["<m1@x.test>"]
    assert [m.message_id for m in sandbox.store.messages(peer, INBOX)] == ["<m2@x.test>"]
