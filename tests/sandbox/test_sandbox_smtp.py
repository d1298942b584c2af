"""The submission server behaves like Microsoft 365: TLS first, XOAUTH2, send-as, storage."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime
from email.message import EmailMessage

import aiosmtplib
import pytest
from aiosmtplib import SMTPAuthenticationError

from mailfleet.clock import VirtualClock
from mailfleet.sandbox import INBOX, SENT_ITEMS, MailboxBehaviour, Reply, Sandbox

from .support import (
    CLIENT_ID,
    CLIENT_SECRET,
    PASSWORD,
    PEER,
    PROSPECT_DOMAIN,
    SENDER,
    STEP_TIMEOUT,
    TENANT,
    app_token,
    smtp_client,
)


def message(
    to: str, subject: str = "Quick question", message_id: str | None = "<m1@brand-mail.test>"
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = to
    msg["Subject"] = subject
    if message_id is not None:
        msg["Message-ID"] = message_id
    msg.set_content("Hello there.\n")
    return msg


async def auth_fails(client: aiosmtplib.SMTP, user: str, token: str) -> SMTPAuthenticationError:
    """Run XOAUTH2 expecting a refusal; a hang fails the test instead of blocking it."""
    with pytest.raises(SMTPAuthenticationError) as failure:
        await asyncio.wait_for(client.auth_xoauth2(user, token), timeout=STEP_TIMEOUT)
    return failure.value


# -- before STARTTLS -----------------------------------------------------------------------


async def test_banner_is_microsofts(smtp_sandbox: Sandbox) -> None:
    smtp = smtp_client(smtp_sandbox)
    response = await smtp.connect()
    smtp.close()
    assert response.code == 220
    assert response.message == "smtp.sandbox.test Microsoft ESMTP MAIL Service ready"


async def test_ehlo_before_starttls_offers_starttls_but_not_auth(client: aiosmtplib.SMTP) -> None:
    await client.ehlo()
    assert client.supports_extension("starttls")
    assert not client.supports_extension("auth")


async def test_mail_before_starttls_is_refused_with_5_7_3(client: aiosmtplib.SMTP) -> None:
    await client.ehlo()
    response = await client.execute_command(b"MAIL", f"FROM:<{SENDER}>".encode())
    assert (response.code, response.message) == (451, "5.7.3 STARTTLS is required to send mail")


async def test_auth_before_starttls_is_refused_with_5_7_3(
    client: aiosmtplib.SMTP, smtp_sandbox: Sandbox
) -> None:
    await client.ehlo()
    blob = base64.b64encode(
        f"user={SENDER}\x01auth=Bearer {app_token(smtp_sandbox)}\x01\x01".encode()
    )
    response = await client.execute_command(b"AUTH", b"XOAUTH2", blob)
    assert (response.code, response.message) == (451, "5.7.3 STARTTLS is required to send mail")


async def test_after_starttls_auth_login_xoauth2_is_offered(tls_client: aiosmtplib.SMTP) -> None:
    response = await tls_client.ehlo()
    assert "AUTH LOGIN XOAUTH2" in response.message.splitlines()
    assert not tls_client.supports_extension("starttls")


# -- XOAUTH2 and LOGIN ---------------------------------------------------------------------


async def test_valid_app_token_authenticates(
    tls_client: aiosmtplib.SMTP, smtp_sandbox: Sandbox
) -> None:
    response = await tls_client.auth_xoauth2(SENDER, app_token(smtp_sandbox))
    assert (response.code, response.message) == (235, "2.7.0 Authentication successful")


async def test_bad_token_gets_535_5_7_3_without_hanging(tls_client: aiosmtplib.SMTP) -> None:
    error = await auth_fails(tls_client, SENDER, "not-a-token")
    assert (error.code, error.message) == (535, "5.7.3 Authentication unsuccessful")


async def test_failed_xoauth2_first_sends_the_json_challenge(
    tls_client: aiosmtplib.SMTP,
) -> None:
    blob = base64.b64encode(f"user={SENDER}\x01auth=Bearer nope\x01\x01".encode())
    challenge = await tls_client.execute_command(b"AUTH", b"XOAUTH2", blob)
    assert challenge.code == 334
    assert base64.b64decode(challenge.message) == (
        b'{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/SMTP.Send"}'
    )
    final = await tls_client.execute_command(b"")
    assert (final.code, final.message) == (535, "5.7.3 Authentication unsuccessful")


async def test_token_expires_on_the_injected_clock(
    tls_client: aiosmtplib.SMTP, smtp_sandbox: Sandbox, clock: VirtualClock
) -> None:
    token = app_token(smtp_sandbox)
    clock.advance(3599)
    error = await auth_fails(tls_client, SENDER, token)
    assert (error.code, error.message) == (535, "5.7.3 Authentication unsuccessful")


async def test_token_just_before_expiry_still_works(
    tls_client: aiosmtplib.SMTP, smtp_sandbox: Sandbox, clock: VirtualClock
) -> None:
    token = app_token(smtp_sandbox)
    clock.advance(3598)
    response = await tls_client.auth_xoauth2(SENDER, token)
    assert response.code == 235


async def test_delegated_token_of_another_user_is_refused(
    tls_client: aiosmtplib.SMTP, smtp_sandbox: Sandbox
) -> None:
    token = smtp_sandbox.tokens.issue_delegated(PEER).value
    error = await auth_fails(tls_client, SENDER, token)
    assert error.code == 535


async def test_graph_token_has_the_wrong_audience(
    tls_client: aiosmtplib.SMTP, smtp_sandbox: Sandbox
) -> None:

    token = smtp_sandbox.tokens.issue(
        TENANT, CLIENT_ID, CLIENT_SECRET, "https://graph.microsoft.com/.default"
    )
    error = await auth_fails(tls_client, SENDER, token.value)
    assert (error.code, error.message) == (535, "5.7.3 Authentication unsuccessful")


async def test_auth_login_with_the_mailbox_password(tls_client: aiosmtplib.SMTP) -> None:
    response = await tls_client.login(SENDER, PASSWORD)
    assert response.code == 235


async def test_auth_login_with_a_wrong_password(tls_client: aiosmtplib.SMTP) -> None:
    with pytest.raises(SMTPAuthenticationError) as failure:
        await asyncio.wait_for(tls_client.auth_login(SENDER, "wrong"), timeout=STEP_TIMEOUT)
    assert (failure.value.code, failure.value.message) == (
        535,
        "5.7.3 Authentication unsuccessful",
    )


async def test_auth_login_refused_when_the_mailbox_has_no_password(
    tls_client: aiosmtplib.SMTP,
) -> None:
    with pytest.raises(SMTPAuthenticationError):
        await asyncio.wait_for(tls_client.auth_login(PEER, ""), timeout=STEP_TIMEOUT)


# -- MAIL FROM -----------------------------------------------------------------------------


async def test_mail_without_auth_is_refused_with_5_7_57(tls_client: aiosmtplib.SMTP) -> None:
    response = await tls_client.execute_command(b"MAIL", f"FROM:<{SENDER}>".encode())
    assert (response.code, response.message) == (
        530,
        "5.7.57 Client not authenticated to send mail",
    )


async def test_mail_from_another_address_is_refused_with_5_7_60(
    authed_client: aiosmtplib.SMTP,
) -> None:
    response = await authed_client.execute_command(b"MAIL", f"FROM:<{PEER}>".encode())
    assert (response.code, response.message) == (
        550,
        "5.7.60 SMTP; Client does not have permissions to send as this sender",
    )


async def test_mail_from_is_case_insensitive(authed_client: aiosmtplib.SMTP) -> None:
    response = await authed_client.mail(SENDER.upper())
    assert (response.code, response.message) == (250, "2.1.0 Sender OK")


# -- DATA and storage ----------------------------------------------------------------------


async def test_accepted_mail_is_stored_per_recipient_and_in_sent_items(
    authed_client: aiosmtplib.SMTP, smtp_sandbox: Sandbox, clock: VirtualClock
) -> None:
    prospect = f"Carol@{PROSPECT_DOMAIN}"
    msg = message(prospect)
    errors, reply = await authed_client.send_message(msg, recipients=[prospect, PEER])
    assert errors == {}
    assert reply.startswith("2.0.0 OK <m1@brand-mail.test> [Hostname=smtp.sandbox.test]")

    for recipient in (f"carol@{PROSPECT_DOMAIN}", PEER):
        [stored] = smtp_sandbox.store.messages(recipient, INBOX)
        assert stored.uid == 1
        assert stored.sender == SENDER
        assert stored.recipients == (f"carol@{PROSPECT_DOMAIN}", PEER)
        assert stored.received_at == clock.now()
        assert b"Subject: Quick question" in stored.raw
    sent = smtp_sandbox.store.find_by_message_id(SENDER, SENT_ITEMS, "m1@brand-mail.test")
    assert sent is not None and "\\Seen" in sent.flags


async def test_mail_to_a_prospect_is_recorded_by_the_simulator(
    authed_client: aiosmtplib.SMTP, smtp_sandbox: Sandbox, clock: VirtualClock
) -> None:
    prospect = f"dave@{PROSPECT_DOMAIN}"
    reply_to_earlier = message(prospect, subject="Re: Quick question", message_id="<m2@x.test>")
    reply_to_earlier["In-Reply-To"] = "<m1@brand-mail.test>"
    await authed_client.send_message(reply_to_earlier)
    await authed_client.send_message(message(PEER, message_id="<m3@x.test>"))

    assert smtp_sandbox.prospects.count() == 1
    [delivery] = smtp_sandbox.prospects.received(prospect)
    assert delivery.message_id == "<m2@x.test>"
    assert delivery.in_reply_to == "<m1@brand-mail.test>"
    assert delivery.subject == "Re: Quick question"
    assert delivery.sender == SENDER
    assert delivery.received_at == clock.now()


async def test_unknown_outside_recipients_are_accepted_and_stored(
    authed_client: aiosmtplib.SMTP, smtp_sandbox: Sandbox
) -> None:
    await authed_client.send_message(message("someone@elsewhere.test"))
    assert smtp_sandbox.store.count("someone@elsewhere.test") == 1
    assert smtp_sandbox.prospects.count() == 0


async def test_a_message_without_message_id_gets_one(
    authed_client: aiosmtplib.SMTP, smtp_sandbox: Sandbox
) -> None:
    _, reply = await authed_client.send_message(message(PEER, message_id=None))
    [stored] = smtp_sandbox.store.messages(PEER)
    assert stored.message_id is not None
    assert stored.message_id.endswith("@smtp.sandbox.test>")
    assert stored.message_id in reply


async def test_several_messages_in_one_session_get_growing_uids(
    authed_client: aiosmtplib.SMTP, smtp_sandbox: Sandbox
) -> None:
    for n in range(3):
        await authed_client.send_message(message(PEER, message_id=f"<n{n}@x.test>"))
    assert [m.uid for m in smtp_sandbox.store.messages(PEER)] == [1, 2, 3]
    assert smtp_sandbox.store.find_by_message_id(SENDER, SENT_ITEMS, "<n2@x.test>") is not None


# -- the behaviour seam --------------------------------------------------------------------


class RefuseRecipients(MailboxBehaviour):
    """A stand-in fault: refuse every recipient with a chosen reply."""

    def __init__(self) -> None:
        self.disconnected: list[str] = []

    async def on_rcpt_to(self, address: str, recipient: str, now: datetime) -> Reply | None:
        return Reply(554, "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException")

    def on_disconnect(self, address: str, now: datetime) -> None:
        self.disconnected.append(address)


async def test_a_mailbox_behaviour_can_refuse_at_rcpt(smtp_sandbox: Sandbox) -> None:
    behaviour = RefuseRecipients()
    smtp_sandbox.set_behaviour(SENDER, behaviour)
    smtp = smtp_client(smtp_sandbox)
    await smtp.connect()
    await smtp.starttls()
    await smtp.auth_xoauth2(SENDER, app_token(smtp_sandbox))
    await smtp.mail(SENDER)
    response = await smtp.execute_command(b"RCPT", f"TO:<{PEER}>".encode())
    assert (response.code, response.message) == (
        554,
        "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException",
    )
    await smtp.quit()
    await smtp_sandbox.stop()  # returns once the server side of the session has ended
    assert behaviour.disconnected == [SENDER]
    assert smtp_sandbox.store.count(PEER) == 0


class RefuseAuth(MailboxBehaviour):
    async def on_auth(self, address: str, mechanism: str, now: datetime) -> Reply | None:
        return Reply(
            535,
            "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled "
            "for the Mailbox.",
        )


async def test_a_mailbox_behaviour_can_refuse_auth(
    tls_client: aiosmtplib.SMTP, smtp_sandbox: Sandbox
) -> None:
    smtp_sandbox.set_behaviour(SENDER, RefuseAuth())
    error = await auth_fails(tls_client, SENDER, app_token(smtp_sandbox))
    assert error.code == 535
    assert error.message.startswith("5.7.139 ")


async def test_a_token_of_several_kilobytes_fits_on_the_auth_line(
    tls_client: aiosmtplib.SMTP,
) -> None:
    # Real Microsoft access tokens are JWTs of 2-4 KB; aiosmtpd's default limit is 512.
    error = await auth_fails(tls_client, SENDER, "x" * 4000)
    assert (error.code, error.message) == (535, "5.7.3 Authentication unsuccessful")
