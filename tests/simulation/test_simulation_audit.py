"""The auditor counts every breach in a submission log, and none in a clean one."""

from datetime import date, datetime, timedelta

import pytest

from mailfleet.clock import utc
from mailfleet.simulation import AuditRules, Received, SenderRule, WindowRule, audit
from mailfleet.simulation.records import fingerprint

A = "alex@sender.example"
B = "sam@sender.example"
MONDAY = utc(2026, 3, 2)


def rules(**overrides: object) -> AuditRules:
    base: dict[str, object] = {
        "senders": {
            A: SenderRule(A, min_gap=timedelta(minutes=5)),
            B: SenderRule(B, min_gap=timedelta(minutes=5)),
        },
        "window": WindowRule("UTC", frozenset({1, 2, 3, 4, 5}), 9 * 60, 17 * 60),
        "cold_domains": frozenset({"prospect.example"}),
        "threaded_steps": (True, True, True),
    }
    base.update(overrides)
    return AuditRules(**base)  # type: ignore[arg-type]


def msg(
    at: datetime,
    to: str,
    *,
    sender: str = A,
    mid: str | None = None,
    parent: str | None = None,
    text: str | None = None,
) -> Received:
    mid = mid or f"<{to.split('@')[0]}-{at:%d%H%M%S}-{sender[0]}@sender.example>"
    return Received(
        at=at,
        sender=sender,
        recipients=(to,),
        message_id=mid,
        in_reply_to=parent,
        subject="Hi",
        fingerprint=text or mid,
    )


def spaced(
    count: int, start: datetime, gap: timedelta, sender: str = A, prefix: str = "lead"
) -> list[Received]:
    return [
        msg(start + i * gap, f"{prefix}{i}@prospect.example", sender=sender) for i in range(count)
    ]


def test_a_clean_day_has_no_violation() -> None:
    day = spaced(20, MONDAY + timedelta(hours=9), timedelta(minutes=10))
    day += spaced(
        20, MONDAY + timedelta(hours=9, minutes=3), timedelta(minutes=10), sender=B, prefix="b"
    )
    found = audit(day, rules())
    assert found.total_violations == 0, found.details
    assert found.messages == found.cold == 40
    assert found.by_step == {"1": 40}


def test_thirty_one_messages_in_a_minute_are_over_the_provider_limit() -> None:
    burst = [
        msg(MONDAY + timedelta(hours=10, seconds=i), f"l{i}@prospect.example") for i in range(31)
    ]
    found = audit(burst, rules(senders={}))  # no gap rule: only the provider's limit
    assert found.violations["over_provider_limits"] == 1
    assert found.details["over_provider_limits"]["per_minute"] == 1
    # Thirty in a minute is the limit itself, not over it.
    assert audit(burst[:30], rules(senders={})).violations["over_provider_limits"] == 0
    # A message counts for sixty seconds: the 31st a minute after the first is fine.
    later = [*burst[:30], msg(MONDAY + timedelta(hours=10, minutes=1), "x@prospect.example")]
    assert audit(later, rules(senders={})).violations["over_provider_limits"] == 0


def test_rolling_recipients_and_limit_refusals_count_as_over_limits() -> None:
    day = spaced(6, MONDAY + timedelta(hours=9), timedelta(hours=1))
    found = audit(day, rules(recipients_per_day=4), limit_refusals={"451 4.7.500": 2})
    assert found.details["over_provider_limits"]["recipients_24h"] == 2
    assert found.violations["over_provider_limits"] == 4
    # 24 hours later the window has moved on.
    next_day = [*day[:4], msg(MONDAY + timedelta(days=1, hours=9, minutes=1), "z@prospect.example")]
    assert audit(next_day, rules(recipients_per_day=4)).violations["over_provider_limits"] == 0


def test_a_gap_breach_is_counted_per_mailbox() -> None:
    start = MONDAY + timedelta(hours=9)
    log = [
        msg(start, "a@prospect.example"),
        msg(start + timedelta(minutes=1), "b@prospect.example", sender=B),  # other mailbox
        msg(start + timedelta(minutes=4, seconds=59), "c@prospect.example"),  # 1 s short
        msg(start + timedelta(minutes=10), "d@prospect.example"),
    ]
    found = audit(log, rules())
    assert found.violations["under_minimum_gap"] == 1
    assert "299s" in found.details["examples"]["under_minimum_gap"][0]


def test_sends_outside_the_window_in_its_timezone() -> None:
    london = WindowRule("Europe/London", frozenset({1, 2, 3, 4, 5}), 9 * 60, 17 * 60)
    log = [
        msg(utc(2026, 3, 2, 8, 59), "early@prospect.example"),  # 08:59 in London (GMT)
        msg(utc(2026, 3, 2, 9, 0), "open@prospect.example"),
        msg(utc(2026, 3, 2, 17, 0), "late@prospect.example"),  # the end is exclusive
        msg(utc(2026, 3, 7, 12, 0), "saturday@prospect.example"),
        msg(utc(2026, 3, 30, 8, 30), "summer@prospect.example"),  # 09:30 BST: open
    ]
    found = audit(log, rules(senders={}, window=london))
    assert found.violations["outside_window"] == 3
    # With the lead's own timezone, 08:59 UTC is 09:59 in Paris: inside.
    paris = audit(
        log[:1],
        rules(
            senders={},
            window=london,
            use_lead_timezone=True,
            lead_timezones={"early@prospect.example": "Europe/Paris"},
        ),
    )
    assert paris.violations["outside_window"] == 0


def test_cold_volume_over_the_ramp_for_the_mailbox_age() -> None:
    young = SenderRule(A, ramp_start=date(2026, 3, 1), min_gap=timedelta(0))  # day 2 on Monday
    old = SenderRule(B, ramp_start=None, min_gap=timedelta(0), daily_cap=12)
    start = MONDAY + timedelta(hours=9)
    log = spaced(11, start, timedelta(minutes=1)) + spaced(
        13, start, timedelta(minutes=1), sender=B, prefix="b"
    )
    found = audit(log, rules(senders={A: young, B: old}))
    assert found.violations["over_ramp"] == 2  # the 11th of a ramp day, the 13th over the cap
    seasoned = SenderRule(A, ramp_start=date(2026, 1, 1), min_gap=timedelta(0))
    log = spaced(26, start, timedelta(minutes=1))
    assert audit(log, rules(senders={A: seasoned})).violations["over_ramp"] == 1


def test_duplicate_message_id_and_duplicate_step() -> None:
    start = MONDAY + timedelta(hours=9)
    first = msg(start, "a@prospect.example", mid="<one@sender.example>")
    again = msg(start + timedelta(minutes=10), "a@prospect.example", mid="<one@sender.example>")
    found = audit([first, again], rules())
    assert found.violations["duplicate_message_id"] == 1
    assert found.violations["duplicate_lead_step"] == 1


def test_a_step_sent_twice_in_its_thread_or_with_the_same_text_is_a_duplicate() -> None:
    start = MONDAY + timedelta(hours=9)
    opener = msg(start, "a@prospect.example", mid="<s1@sender.example>")
    follow = msg(start + timedelta(days=1), "a@prospect.example", parent="<s1@sender.example>")
    twin = msg(
        start + timedelta(days=1, minutes=20),
        "a@prospect.example",
        mid="<s2b@sender.example>",
        parent="<s1@sender.example>",
    )
    found = audit([opener, follow, twin], rules())
    assert found.violations["duplicate_lead_step"] == 1
    assert found.by_step == {"1": 1, "2": 2}
    # A second opener with a new Message-ID but the same text, from another mailbox.
    copy = msg(start + timedelta(hours=2), "a@prospect.example", sender=B, text=opener.fingerprint)
    assert audit([opener, copy], rules()).violations["duplicate_lead_step"] == 1
    # Three threaded steps, each once: clean.
    third = msg(start + timedelta(days=2), "a@prospect.example", parent=follow.message_id)
    assert audit([opener, follow, third], rules()).total_violations == 0


def test_unthreaded_follow_ups_are_told_apart_from_a_second_opener() -> None:
    start = MONDAY + timedelta(hours=9)
    steps = (True, False, True)  # step 2 starts a new thread
    log = [
        msg(start, "a@prospect.example", mid="<1@s.example>"),
        msg(start + timedelta(days=1), "a@prospect.example", mid="<2@s.example>"),
        msg(start + timedelta(days=2), "a@prospect.example", parent="<2@s.example>"),
    ]
    found = audit(log, rules(threaded_steps=steps))
    assert found.total_violations == 0
    assert found.by_step == {"1": 1, "2": 1, "3": 1}
    extra = msg(start + timedelta(days=3), "a@prospect.example", mid="<4@s.example>")
    assert audit([*log, extra], rules(threaded_steps=steps)).violations["duplicate_lead_step"] == 1


def test_a_send_at_or_after_a_stop_is_counted() -> None:
    start = MONDAY + timedelta(hours=9)
    log = [
        msg(start, "a@prospect.example"),
        msg(start + timedelta(hours=2), "a@prospect.example", parent=None),
        msg(start + timedelta(hours=3), "b@prospect.example"),
    ]
    stops = {"a@prospect.example": start + timedelta(hours=1)}
    found = audit(log, rules(threaded_steps=(True, False)), stops=stops)
    assert found.violations["sent_after_stop"] == 1
    graced = audit(
        log, rules(threaded_steps=(True, False), stop_grace=timedelta(hours=2)), stops=stops
    )
    assert graced.violations["sent_after_stop"] == 0


def test_warmup_ratio_is_checked_only_when_asked_and_at_every_instant() -> None:
    start = MONDAY + timedelta(hours=9)
    cold = spaced(3, start, timedelta(minutes=10))
    # Five warmup sends to a peer mailbox before the first cold one: enough for two.
    warm = [msg(start - timedelta(minutes=10 * (i + 1)), B, sender=A) for i in range(5)]
    peers = {A: SenderRule(A), B: SenderRule(B)}
    unchecked = audit(cold + warm, rules(senders=peers))
    assert unchecked.violations["under_warmup_ratio"] == 0
    assert unchecked.details["warmup_ratio_checked"] is False
    assert unchecked.warmup == 5 and unchecked.cold == 3
    checked = audit(cold + warm, rules(senders=peers, warmup_ratio=2.0))
    assert checked.violations["under_warmup_ratio"] == 1  # the third cold send
    # A sixth warmup after the third cold send comes too late for it.
    late = [*cold, *warm, msg(start + timedelta(hours=1), B, sender=A)]
    assert audit(late, rules(senders=peers, warmup_ratio=2.0)).violations["under_warmup_ratio"] == 1
    early = [*cold, *warm, msg(start - timedelta(minutes=5), B, sender=A)]
    assert (
        audit(early, rules(senders=peers, warmup_ratio=2.0)).violations["under_warmup_ratio"] == 0
    )


@pytest.mark.parametrize("boundary", [True, False])
def test_fingerprint_ignores_what_differs_between_copies(boundary: bool) -> None:
    def raw(mid: str) -> bytes:
        parts = [f"Message-ID: <{mid}@x>", "Date: Mon, 2 Mar 2026 09:00:00 +0000"]
        if boundary:
            parts.append(f'Content-Type: multipart/alternative; boundary="=_mf_{mid}"')
            body = f"--=_mf_{mid}\r\n\r\nHello\r\n--=_mf_{mid}--\r\n"
        else:
            body = "Hello\r\n"
        return ("\r\n".join(parts) + "\r\n\r\n" + body).encode()

    assert fingerprint(raw("a1"), "Hi") == fingerprint(raw("b2"), "Hi")
    assert fingerprint(raw("a1"), "Hi") != fingerprint(raw("a1"), "Re: Hi")
