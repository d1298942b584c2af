"""The pure side of the inbox: which folders, which thread, and what each kind of mail means."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailfleet.inbound import Action, Classification, Complaint, Kind, Recipient
from mailfleet.inbox import (
    FolderRole,
    InboxPolicy,
    candidate_ids,
    decide,
    dedupe_key,
    junk_folder,
    message_id_key,
    resume_at,
    subject_key,
    sync_folders,
)
from mailfleet.transport.imap_wire import Folder

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)


def folder(name: str, *flags: str, delimiter: str = "/") -> Folder:
    return Folder(name, delimiter, frozenset(flags))


def test_junk_is_found_by_special_use_first() -> None:
    folders = [folder("INBOX"), folder("Spam"), folder("Courrier indésirable", "\\Junk")]
    assert junk_folder(folders) == "Courrier indésirable"
    assert [f.role for f in sync_folders(folders)] == [FolderRole.INBOX, FolderRole.JUNK]


@pytest.mark.parametrize(
    ("names", "delimiter", "expected"),
    [
        (["INBOX", "Junk Email", "Sent Items"], "/", "Junk Email"),
        (["INBOX", "[Gmail]/Spam", "[Gmail]/All Mail"], "/", "[Gmail]/Spam"),
        (["INBOX", "INBOX.Junk", "INBOX.Sent"], ".", "INBOX.Junk"),
        (["INBOX", "spam"], "/", "spam"),
        (["INBOX", "Archive"], "/", None),
    ],
)
def test_junk_falls_back_to_common_names(
    names: list[str], delimiter: str, expected: str | None
) -> None:
    assert junk_folder([folder(n, delimiter=delimiter) for n in names]) == expected


def test_a_folder_that_cannot_be_selected_is_not_junk() -> None:
    folders = [folder("INBOX"), folder("[Gmail]", "\\Noselect"), folder("Junk", "\\NonExistent")]
    assert junk_folder(folders) is None
    assert [f.name for f in sync_folders(folders)] == ["INBOX"]


def test_thread_subjects_compare_without_prefixes_or_case() -> None:
    assert subject_key("RE: AW: Quick  question") == subject_key("quick question")
    assert subject_key("Automatic reply: Quick question") == "quick question"
    assert subject_key(None) == ""


def test_candidate_ids_put_the_original_first_then_in_reply_to_then_newest_references() -> None:
    result = Classification(
        kind=Kind.REPLY,
        in_reply_to="<b@x>",
        references=("<a@x>", "<b@x>", "<c@x>"),
        original_message_id="o@x",
    )
    assert candidate_ids(result) == ["<o@x>", "<b@x>", "<c@x>", "<a@x>"]
    assert message_id_key("  <id@x> ") == "<id@x>" and message_id_key("<>") is None


@given(st.binary(max_size=200))
def test_a_message_without_message_id_is_known_by_its_bytes(raw: bytes) -> None:
    key = dedupe_key(None, raw)
    assert key.startswith("sha256:") and key == dedupe_key("", raw)
    assert dedupe_key("<id@x>", raw) == "<id@x>"


def test_a_reply_stops_and_is_rescued_from_junk() -> None:
    result = Classification(kind=Kind.REPLY, subject="Re: Hello")
    inbox = decide(result, now=NOW)
    assert inbox.stop == "reply" and not inbox.move_to_inbox and inbox.flags == ()
    assert decide(result, now=NOW, folder=FolderRole.JUNK).move_to_inbox


def test_hard_and_soft_bounces() -> None:
    hard = Classification(
        kind=Kind.BOUNCE,
        recipients=(
            Recipient("a@p.example", Action.FAILED, "5.1.1", hard=True),
            Recipient("b@p.example", Action.DELAYED, "4.4.1"),
        ),
    )
    decision = decide(hard, now=NOW)
    assert decision.stop == "hard_bounce" and decision.hard_bounce
    assert decision.addresses == ("a@p.example",) and "5.1.1" in decision.detail
    soft = Classification(
        kind=Kind.BOUNCE, recipients=(Recipient("a@p.example", Action.FAILED, "5.2.2"),)
    )
    assert decide(soft, now=NOW).stop == "soft_bounce" and decide(soft, now=NOW).soft_bounce
    delayed = Classification(
        kind=Kind.BOUNCE, recipients=(Recipient("a@p.example", Action.DELAYED, "4.4.7"),)
    )
    assert decide(delayed, now=NOW).stop is None  # still being retried: nothing to count


def test_complaints_and_unsubscribes_name_the_address_to_suppress() -> None:
    complaint = Classification(
        kind=Kind.COMPLAINT, complaint=Complaint("abuse", original_recipient="Ana@P.example")
    )
    decision = decide(complaint, now=NOW)
    assert decision.stop == "complaint" and decision.complaint
    assert decision.addresses == ("ana@p.example",)
    unsubscribe = Classification(kind=Kind.UNSUBSCRIBE, from_address="Bob@P.example")
    assert decide(unsubscribe, now=NOW).addresses == ("bob@p.example",)


def test_out_of_office_pauses_until_the_return_date_in_the_campaign_timezone() -> None:
    result = Classification(kind=Kind.AUTO_REPLY, return_date=date(2026, 3, 5))
    decision = decide(result, now=NOW, campaign_timezone="America/New_York")
    assert decision.stop == "auto_reply"
    assert decision.pause_until == datetime(2026, 3, 5, 5, tzinfo=UTC)  # midnight in New York
    after_dst = decide(
        Classification(kind=Kind.AUTO_REPLY, return_date=date(2026, 3, 9)),
        now=NOW,
        campaign_timezone="America/New_York",
    )
    assert after_dst.pause_until == datetime(2026, 3, 9, 4, tzinfo=UTC)
    assert resume_at(date(2026, 3, 9), "No/Such_Zone") == datetime(2026, 3, 9, tzinfo=UTC)


def test_out_of_office_without_a_date_pauses_for_the_configured_days() -> None:
    result = Classification(kind=Kind.AUTO_REPLY)
    assert decide(result, now=NOW).pause_until == NOW + timedelta(days=7)
    custom = decide(result, now=NOW, campaign_settings={"auto_reply_pause_days": 3})
    assert custom.pause_until == NOW + timedelta(days=3)
    never = decide(result, now=NOW, policy=InboxPolicy(auto_reply_pause_days=0))
    assert never.pause_until is None


def test_a_past_or_absurd_return_date_is_not_believed() -> None:
    past = Classification(kind=Kind.AUTO_REPLY, return_date=date(2026, 2, 1))
    assert decide(past, now=NOW).pause_until is None
    far = Classification(kind=Kind.AUTO_REPLY, return_date=date(2027, 3, 1))
    assert decide(far, now=NOW).pause_until == NOW + timedelta(days=60)


def test_warmup_is_marked_read_and_rescued_other_mail_is_left_alone() -> None:
    warmup = decide(Classification(kind=Kind.WARMUP), now=NOW, folder=FolderRole.JUNK)
    assert warmup.move_to_inbox and warmup.flags == ("\\Seen",) and warmup.stop is None
    for kind in (Kind.OTHER, Kind.DELIVERED, Kind.BOUNCE, Kind.COMPLAINT):
        decision = decide(Classification(kind=kind), now=NOW, folder=FolderRole.JUNK)
        assert not decision.move_to_inbox and decision.flags == ()
