"""Sandbox mailboxes misbehave like Microsoft 365 on demand, and keep Microsoft's limits."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import aiosmtplib
import pytest

from mailfleet.clock import VirtualClock
from mailfleet.providers import get_preset
from mailfleet.providers.faults import classify_exception
from mailfleet.providers.outcomes import OutcomeKind, Stage
from mailfleet.providers.replies import classify_reply
from mailfleet.sandbox import (
    FAULTS,
    MICROSOFT_365_LIMITS,
    NO_LIMITS,
    SENT_ITEMS,
    MailboxBehaviour,
    Reply,
    Sandbox,
    SubmissionLimits,
    closed_port,
    fault,
)
from mailfleet.sandbox.faults import SendAsChecked

from .support import HOSTNAME, PASSWORD, PEER, SENDER, STEP_TIMEOUT, app_token, smtp_client

# The reply-table row each named fault must land on (providers.reply_rules ids).
EXPECTED_RULES = {
    "smtp_auth_disabled": ("m365.auth_disabled", OutcomeKind.PAUSE_MAILBOX),
    "smtp_auth_disabled_tenant": ("m365.auth_disabled_tenant", OutcomeKind.PAUSE_MAILBOX),
    "security_defaults": ("m365.security_defaults", OutcomeKind.PAUSE_MAILBOX),
    "basic_auth_retired": ("m365.basic_auth_retired", OutcomeKind.PAUSE_MAILBOX),
    "auth_unsuccessful": ("m365.auth_failed", OutcomeKind.PAUSE_MAILBOX),
    "concurrent_connections": ("m365.concurrent_connections", OutcomeKind.SLOW),
    "client_not_authenticated": ("m365.client_not_authenticated", OutcomeKind.PAUSE_MAILBOX),
    "ip_blocked": ("m365.ip_blocked", OutcomeKind.PAUSE_MAILBOX),
    "server_busy": ("m365.server_busy", OutcomeKind.SLOW),
    "send_as_denied": ("m365.send_as_denied", OutcomeKind.PAUSE_MAILBOX),
    "sender_throttled": ("m365.sender_throttled", OutcomeKind.PAUSE_MAILBOX),
    "banned_sender": ("m365.banned_sender", OutcomeKind.PAUSE_MAILBOX),
    "unregistered_domain": ("m365.unregistered_domain", OutcomeKind.PAUSE_MAILBOX),
    "temporary_error": ("rfc3463.transient", OutcomeKind.RETRY),
    "recipient_not_found": ("smtp.recipient_unknown", OutcomeKind.DROP_RECIPIENT),
    "recipient_not_found_5_1_10": ("smtp.recipient_unknown", OutcomeKind.DROP_RECIPIENT),
    "tenant_recipient_limit": ("m365.tenant_recipient_limit", OutcomeKind.PAUSE_TENANT),
    "recipient_quota": ("m365.recipient_quota", OutcomeKind.PAUSE_MAILBOX),
    "mailbox_full": ("m365.mailbox_full", OutcomeKind.PAUSE_MAILBOX),
    "outbound_spam": ("m365.outbound_spam", OutcomeKind.PAUSE_MAILBOX),
    "content_spam": ("m365.content_spam", OutcomeKind.REJECTED),
    "submission_rate": ("m365.submission_rate", OutcomeKind.SLOW),
}

_STAGES = {"auth": Stage.AUTH, "mail": Stage.MAIL, "rcpt": Stage.RCPT, "data": Stage.DATA}


def message(to: str = PEER, sender: str = SENDER, n: int = 0) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = f"Message {n}"
    msg["Message-ID"] = f"<f{n}@brand-mail.test>"
    msg.set_content("Hello.\n")
    return msg


async def connected(sandbox: Sandbox, *, password: bool = False) -> aiosmtplib.SMTP:
    """A client past STARTTLS and AUTH as SENDER (XOAUTH2 unless ``password``)."""
    smtp = smtp_client(sandbox)
    await smtp.connect()
    await smtp.starttls()
    if password:
        await smtp.login(SENDER, PASSWORD)
    else:
        await smtp.auth_xoauth2(SENDER, app_token(sandbox))
    return smtp


async def attempt(sandbox: Sandbox, stage: str, *, password: bool = False) -> tuple[int, str]:
    """Run one submission from SENDER to PEER and return the reply at ``stage``."""
    smtp = smtp_client(sandbox)
    await smtp.connect()
    await smtp.starttls()
    try:
        if stage == "auth":
            with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
                if password:
                    await asyncio.wait_for(smtp.login(SENDER, PASSWORD), STEP_TIMEOUT)
                else:
                    await asyncio.wait_for(
                        smtp.auth_xoauth2(SENDER, app_token(sandbox)), STEP_TIMEOUT
                    )
            return refused.value.code, refused.value.message
        if password:
            await smtp.login(SENDER, PASSWORD)
        else:
            await smtp.auth_xoauth2(SENDER, app_token(sandbox))
        reply = await smtp.execute_command(b"MAIL", f"FROM:<{SENDER}>".encode())
        if stage == "mail":
            return reply.code, reply.message
        reply = await smtp.execute_command(b"RCPT", f"TO:<{PEER}>".encode())
        if stage == "rcpt":
            return reply.code, reply.message
        with pytest.raises(aiosmtplib.SMTPDataError) as data_refused:
            await smtp.data(message().as_bytes())
        return data_refused.value.code, data_refused.value.message
    finally:
        smtp.close()


# -- named faults --------------------------------------------------------------------------


def test_every_named_fault_has_an_expected_row() -> None:
    assert set(FAULTS) == set(EXPECTED_RULES)


@pytest.mark.parametrize("name", sorted(FAULTS))
async def test_named_fault_answers_in_microsofts_words_at_its_step(
    smtp_sandbox: Sandbox, name: str
) -> None:
    spec = FAULTS[name]
    behaviour = fault(name)
    smtp_sandbox.set_behaviour(SENDER, behaviour)
    basic_only = spec.mechanisms is not None
    code, text = await attempt(smtp_sandbox, spec.stage, password=basic_only)
    expected = spec.reply(HOSTNAME)
    assert (code, text) == (expected.code, expected.text)
    assert behaviour.refusals == 1
    outcome = classify_reply(code, text, stage=_STAGES[spec.stage], mailbox=SENDER)
    assert (outcome.rule, outcome.kind) == EXPECTED_RULES[name]
    assert smtp_sandbox.store.count(SENDER, SENT_ITEMS) == 0


def test_auth_disabled_texts_are_microsofts() -> None:
    mailbox = fault("smtp_auth_disabled", hostname="BN8PR.prod.outlook.com").reply
    assert str(mailbox) == (
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
        "Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information. "
        "[BN8PR.prod.outlook.com]"
    )
    assert "disabled for the Tenant." in fault("smtp_auth_disabled_tenant").reply.text
    assert str(fault("server_busy").reply) == (
        "451 4.7.500 Server busy. Please try again later from [127.0.0.1]. (S77719) "
        "[smtp.sandbox.test]"
    )


@pytest.mark.parametrize("name", ["security_defaults", "basic_auth_retired"])
async def test_basic_auth_faults_let_oauth_through(smtp_sandbox: Sandbox, name: str) -> None:
    smtp_sandbox.set_behaviour(SENDER, fault(name))
    smtp = await connected(smtp_sandbox)
    await smtp.send_message(message())
    await smtp.quit()
    assert smtp_sandbox.store.count(PEER) == 1


async def test_recipient_fault_refuses_only_the_named_recipients(smtp_sandbox: Sandbox) -> None:
    dead = "gone@prospect.test"
    behaviour = fault("recipient_not_found", recipients=[dead.upper()])
    smtp_sandbox.set_behaviour(SENDER, behaviour)
    smtp = await connected(smtp_sandbox)
    errors, _ = await smtp.sendmail(SENDER, [PEER, dead], message().as_bytes())
    await smtp.quit()
    assert errors[dead].code == 550 and errors[dead].message.startswith("5.1.1 ")
    assert smtp_sandbox.store.count(PEER) == 1
    assert behaviour.refusals == 1


async def test_content_fault_with_recipients_blocks_only_their_messages(
    smtp_sandbox: Sandbox,
) -> None:
    smtp_sandbox.set_behaviour(SENDER, fault("content_spam", recipients=["x@prospect.test"]))
    smtp = await connected(smtp_sandbox)
    await smtp.send_message(message(PEER))
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await smtp.send_message(message("x@prospect.test", n=1))
    await smtp.quit()
    assert refused.value.message.startswith("5.7.520 ")
    assert smtp_sandbox.store.count(PEER) == 1


async def test_a_fault_with_times_clears_after_that_many_refusals(smtp_sandbox: Sandbox) -> None:
    behaviour = fault("temporary_error", times=2)
    smtp_sandbox.set_behaviour(SENDER, behaviour)
    smtp = await connected(smtp_sandbox)
    for n in range(2):
        with pytest.raises(aiosmtplib.SMTPSenderRefused):
            await smtp.send_message(message(n=n))
        await smtp.rset()
    await smtp.send_message(message(n=3))
    await smtp.quit()
    assert behaviour.spent and behaviour.refusals == 2
    assert smtp_sandbox.store.count(PEER) == 1


async def test_repeating_a_punished_error_gets_the_mailbox_throttled(
    smtp_sandbox: Sandbox,
) -> None:
    smtp_sandbox.set_behaviour(SENDER, fault("mailbox_full", throttle_after=2))
    replies = [await attempt(smtp_sandbox, "data") for _ in range(3)]
    assert [code for code, _ in replies] == [554, 554, 550]
    assert replies[2][1] == "5.2.251 Sender throttled due to continuous mailbox full errors."
    outcome = classify_reply(*replies[2], stage=Stage.DATA)
    assert (outcome.rule, outcome.kind) == ("m365.sender_throttled", OutcomeKind.PAUSE_MAILBOX)


async def test_send_as_is_checked_on_the_from_header_too(smtp_sandbox: Sandbox) -> None:
    smtp_sandbox.set_behaviour(SENDER, SendAsChecked())
    smtp = await connected(smtp_sandbox)
    await smtp.send_message(message(), sender=SENDER)
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await smtp.send_message(message(sender="ceo@brand-mail.test", n=1), sender=SENDER)
    await smtp.quit()
    assert (refused.value.code, refused.value.message) == (
        550,
        "5.7.60 SMTP; Client does not have permissions to send as this sender",
    )
    assert smtp_sandbox.store.count(PEER) == 1


def test_unknown_fault_names_list_the_known_ones() -> None:
    with pytest.raises(KeyError, match="smtp_auth_disabled"):
        fault("no_such_fault")


async def test_nothing_listens_on_a_closed_port() -> None:
    port = closed_port()
    with pytest.raises(ConnectionRefusedError) as refused:
        await asyncio.open_connection("127.0.0.1", port)
    outcome = classify_exception(refused.value, Stage.CONNECT)
    assert (outcome.kind, outcome.rule) == (OutcomeKind.RETRY, "net.connection_refused")


# -- Microsoft's limits, on by default -----------------------------------------------------


def test_default_limits_are_microsoft_365s() -> None:
    preset = get_preset("microsoft365").limits
    from_preset = SubmissionLimits(
        messages_per_minute=preset.messages_per_minute,
        concurrent_connections=preset.concurrent_connections,
        recipients_per_day=preset.recipients_per_day,
    )
    assert from_preset == MICROSOFT_365_LIMITS
    assert SubmissionLimits(30, 3, 10_000) == MICROSOFT_365_LIMITS


async def test_the_31st_message_in_a_minute_is_refused_server_busy(
    smtp_sandbox: Sandbox, clock: VirtualClock
) -> None:
    smtp = await connected(smtp_sandbox)
    for n in range(30):
        await smtp.send_message(message(n=n))
    busy = await smtp.execute_command(b"MAIL", f"FROM:<{SENDER}>".encode())
    assert str(Reply(busy.code, busy.message)) == (
        "451 4.7.500 Server busy. Please try again later from [127.0.0.1]. (S77719) "
        "[smtp.sandbox.test]"
    )
    await smtp.rset()
    clock.advance(59)
    with pytest.raises(aiosmtplib.SMTPSenderRefused):
        await smtp.send_message(message(n=30))
    await smtp.rset()
    clock.advance(1)  # the first 30 leave the minute
    await smtp.send_message(message(n=31))
    await smtp.quit()
    assert smtp_sandbox.store.count(PEER) == 31


async def test_a_fourth_concurrent_session_is_refused_until_one_ends(
    smtp_sandbox: Sandbox,
) -> None:
    meter = smtp_sandbox.directory.mailbox(SENDER).meter  # type: ignore[union-attr]
    sessions = [await connected(smtp_sandbox) for _ in range(3)]
    fourth = smtp_client(smtp_sandbox)
    await fourth.connect()
    await fourth.starttls()
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
        await fourth.auth_xoauth2(SENDER, app_token(smtp_sandbox))
    assert (refused.value.code, refused.value.message) == (
        432,
        "4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending "
        "for more information.",
    )
    # Another mailbox has its own three.
    other = smtp_client(smtp_sandbox)
    await other.connect()
    await other.starttls()
    assert (await other.auth_xoauth2(PEER, app_token(smtp_sandbox))).code == 235
    other.close()
    await sessions[0].quit()
    for _ in range(100):  # the server notices the end of the session on its own turn
        if meter.sessions == 2:
            break
        await asyncio.sleep(0.01)
    assert (await fourth.auth_xoauth2(SENDER, app_token(smtp_sandbox))).code == 235
    for smtp in (*sessions[1:], fourth):
        await smtp.quit()


async def test_rolling_recipients_free_24_hours_after_they_were_counted(
    smtp_sandbox: Sandbox, clock: VirtualClock
) -> None:
    smtp_sandbox.set_limits(SENDER, SubmissionLimits(recipients_per_day=5))
    three = [f"r{n}@prospect.test" for n in range(3)]
    smtp = await connected(smtp_sandbox)
    await smtp.sendmail(SENDER, three, message().as_bytes())
    clock.advance(3600)
    # A fault does not lift the limits: they are asked after it.
    smtp_sandbox.set_behaviour(SENDER, MailboxBehaviour())
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await smtp.sendmail(SENDER, three, message(n=1).as_bytes())
    assert refused.value.code == 554
    assert "SubmissionQuotaExceededException" in refused.value.message
    outcome = classify_reply(refused.value.code, refused.value.message, stage=Stage.DATA)
    assert outcome.rule == "m365.recipient_quota" and outcome.until_window_frees
    await smtp.sendmail(SENDER, three[:2], message(n=2).as_bytes())  # 5 fits
    meter = smtp_sandbox.directory.mailbox(SENDER).meter  # type: ignore[union-attr]
    assert meter.recipients_last_day(clock.now()) == 5
    clock.advance(23 * 3600)  # 24 h after the first message: its 3 recipients leave
    await smtp.sendmail(SENDER, three, message(n=3).as_bytes())
    await smtp.quit()


async def test_lifted_limits_let_everything_through(
    smtp_sandbox: Sandbox, clock: VirtualClock
) -> None:
    smtp_sandbox.lift_limits()
    sessions = [await connected(smtp_sandbox) for _ in range(4)]
    for n in range(31):
        await sessions[n % 4].send_message(message(n=n))
    for smtp in sessions:
        await smtp.quit()
    assert smtp_sandbox.store.count(PEER) == 31
    assert smtp_sandbox.directory.limits == NO_LIMITS
