"""Every row of PROVIDERS.md "Replies and what they mean", with the texts as servers send them."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from mailfleet.providers import OutcomeKind, Stage, classify_reply
from mailfleet.providers.reply_rules import RULES

K = OutcomeKind
HOST = "[Hostname=AM6PR0502MB3877.eurprd05.prod.outlook.com]"
DIAG = "Failed to process message due to a permanent exception with message [BeginDiagnosticData]"


@dataclass(frozen=True)
class Case:
    code: int | None
    text: str
    stage: Stage
    kind: OutcomeKind
    rule: str
    provider: str = "microsoft365"
    flags: dict[str, object] = field(default_factory=dict)
    remedy_has: tuple[str, ...] = ()


CASES = [
    # ---- Microsoft 365 ----
    Case(
        451,
        "451 4.7.500 Server busy. Please try again later from [40.107.22.55]. (S77719) " + HOST,
        Stage.DATA,
        K.SLOW,
        "m365.server_busy",
        flags={"rate_factor": 0.5},
    ),
    Case(
        432,
        "432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/"
        "concurrent_sending for more information. " + HOST,
        Stage.MAIL,
        K.SLOW,
        "m365.concurrent_connections",
        flags={"fewer_connections": True},
    ),
    Case(
        432,
        "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded " + HOST,
        Stage.DATA,
        K.SLOW,
        "m365.concurrent_connections",
        flags={"fewer_connections": True},
    ),
    Case(
        421,
        "421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client "
        "to support TLS 1.2. Visit https://aka.ms/smtp_auth_tls. " + HOST,
        Stage.EHLO,
        K.FIX_CONFIG,
        "m365.tls_too_old",
        flags={"reconnect": True},
    ),
    Case(
        451,
        "451 5.7.3 STARTTLS is required to send mail " + HOST,
        Stage.MAIL,
        K.FIX_CONFIG,
        "smtp.starttls_required",
        remedy_has=("starttls", "587"),
    ),
    Case(
        530,
        "530 5.7.57 Client not authenticated to send mail. " + HOST,
        Stage.MAIL,
        K.PAUSE_MAILBOX,
        "m365.client_not_authenticated",
        remedy_has=(
            "Set-CASMailbox -Identity a@brand-mail.com -SmtpClientAuthenticationDisabled $false",
        ),
    ),
    Case(
        535,
        "535 5.7.3 Authentication unsuccessful " + HOST,
        Stage.AUTH,
        K.PAUSE_MAILBOX,
        "m365.auth_failed",
        flags={"refresh_token_first": True},
        remedy_has=("audience", "SMTP.Send", "New-ServicePrincipal", "Add-MailboxPermission"),
    ),
    Case(
        535,
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
        "the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. " + HOST,
        Stage.AUTH,
        K.PAUSE_MAILBOX,
        "m365.auth_disabled_tenant",
        flags={"refresh_token_first": False},
        remedy_has=(
            "Set-TransportConfig -SmtpClientAuthenticationDisabled $false",
            "Set-CASMailbox -Identity a@brand-mail.com",
        ),
    ),
    Case(
        535,
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
        "the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information. " + HOST,
        Stage.AUTH,
        K.PAUSE_MAILBOX,
        "m365.auth_disabled",
        remedy_has=(
            "Set-CASMailbox -Identity a@brand-mail.com -SmtpClientAuthenticationDisabled $false",
        ),
    ),
    Case(
        535,
        "535 5.7.139 Authentication unsuccessful, user is locked by your organization's "
        "security defaults policy. Contact your administrator.",
        Stage.AUTH,
        K.PAUSE_MAILBOX,
        "m365.security_defaults",
        remedy_has=("OAuth", "Conditional Access"),
    ),
    Case(
        535,
        "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect.",
        Stage.AUTH,
        K.PAUSE_MAILBOX,
        "m365.bad_credentials",
        remedy_has=("OAuth",),
    ),
    Case(
        535,
        "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to "
        "be authenticated successfully. Contact your administrator.",
        Stage.AUTH,
        K.PAUSE_MAILBOX,
        "m365.conditional_access",
    ),
    Case(
        535,
        "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.",
        Stage.AUTH,
        K.PAUSE_MAILBOX,
        "m365.auth_blocked",
    ),
    Case(
        550,
        "550 5.7.30 Basic authentication is not supported for Client Submission.",
        Stage.AUTH,
        K.PAUSE_MAILBOX,
        "m365.basic_auth_retired",
        remedy_has=("OAuth",),
    ),
    Case(
        550,
        "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this "
        "IP. For more information please go to http://go.microsoft.com/fwlink/?LinkId=526653 "
        "AS(7230) " + HOST,
        Stage.MAIL,
        K.PAUSE_MAILBOX,
        "m365.ip_blocked",
        remedy_has=("delisting",),
    ),
    Case(
        550,
        "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
        Stage.DATA,
        K.PAUSE_MAILBOX,
        "m365.send_as_denied",
        remedy_has=("SendAs",),
    ),
    Case(
        554,
        "554 5.2.252 SendAsDenied; a@brand-mail.com not allowed to send as boss@brand.com; "
        "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; "
        + DIAG
        + "Cannot submit message.",
        Stage.DATA,
        K.PAUSE_MAILBOX,
        "m365.send_as_denied",
    ),
    Case(
        554,
        "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; "
        + DIAG
        + "Cannot submit message. 0.35250:0A00A283[EndDiagnosticData] "
        + HOST,
        Stage.DATA,
        K.PAUSE_MAILBOX,
        "m365.recipient_quota",
        flags={"until_window_frees": True},
    ),
    Case(
        554,
        "554 5.2.2 mailbox full; STOREDRV.Submission.Exception:QuotaExceededException."
        "MapiExceptionQuotaExceeded; " + DIAG + "Cannot open mailbox.[EndDiagnosticData]",
        Stage.DATA,
        K.PAUSE_MAILBOX,
        "m365.mailbox_full",
        flags={"until_window_frees": False},
        remedy_has=("Sent Items",),
    ),
    Case(550, "550 5.2.2 Submission quota exceeded", Stage.DATA, K.SLOW, "m365.submission_rate"),
    Case(
        554,
        "554 5.2.0 STOREDRV.Submission.Exception:OutboundSpamException; "
        + DIAG
        + "WASCL UserAction verdict is not None. Actual verdict is Suspend, ShowTierUpgrade. "
        "OutboundSpamException: WASCL UserAction verdict is not None. Actual verdict is Suspend, "
        "ShowTierUpgrade.[EndDiagnosticData] " + HOST,
        Stage.DATA,
        K.PAUSE_MAILBOX,
        "m365.outbound_spam",
        flags={"until_window_frees": False},
        remedy_has=("verify",),
    ),
    Case(
        550,
        "550 5.2.251 Sender throttled due to continuous mailbox full errors.",
        Stage.MAIL,
        K.PAUSE_MAILBOX,
        "m365.sender_throttled",
        remedy_has=("Sent Items",),
    ),
    Case(
        550,
        "550 5.2.252 Sender throttled due to continuous send as denied errors.",
        Stage.MAIL,
        K.PAUSE_MAILBOX,
        "m365.sender_throttled",
        remedy_has=("SendAs",),
    ),
    Case(
        550,
        "550 5.2.253 Sender throttled due to continuous invalid license errors.",
        Stage.MAIL,
        K.PAUSE_MAILBOX,
        "m365.sender_throttled",
        remedy_has=("licence",),
    ),
    Case(
        550,
        "550 5.2.254 Sender throttled due to continuous too many recipients errors.",
        Stage.MAIL,
        K.PAUSE_MAILBOX,
        "m365.sender_throttled",
        remedy_has=("fewer recipients",),
    ),
    Case(
        550,
        "550 5.2.255 Sender throttled due to continuous invalid recipients errors.",
        Stage.MAIL,
        K.PAUSE_MAILBOX,
        "m365.sender_throttled",
        remedy_has=("dead addresses",),
    ),
    Case(
        550,
        "550 5.7.520 Message blocked because it contains content identified as spam. AS(4810)",
        Stage.DATA,
        K.REJECTED,
        "m365.content_spam",
    ),
    Case(
        550,
        "550 5.1.8 Access denied, bad outbound sender. AS(42004)",
        Stage.MAIL,
        K.PAUSE_MAILBOX,
        "m365.banned_sender",
    ),
    Case(
        550,
        "550 5.7.501 Service unavailable. Spam abuse detected from IP range.",
        Stage.MAIL,
        K.PAUSE_MAILBOX,
        "m365.banned_sender",
    ),
    Case(
        550,
        "550 5.7.502 Access denied, banned sender",
        Stage.MAIL,
        K.PAUSE_MAILBOX,
        "m365.banned_sender",
    ),
    Case(
        550,
        "550 5.7.503 Access denied, banned sender",
        Stage.RCPT,
        K.PAUSE_MAILBOX,
        "m365.banned_sender",
    ),
    Case(
        550,
        "550 5.7.750 Service unavailable. Client blocked from sending from unregistered "
        "domains. For more information please go to http://go.microsoft.com/fwlink/?LinkId="
        "526653 AS(7230)",
        Stage.MAIL,
        K.PAUSE_MAILBOX,
        "m365.unregistered_domain",
    ),
    Case(
        550,
        "550 5.7.233 Your message can't be sent because your tenant exceeded its daily "
        "limit for sending email to external recipients (tenant external recipient rate limit)",
        Stage.DATA,
        K.PAUSE_TENANT,
        "m365.tenant_recipient_limit",
        flags={"until_window_frees": True},
    ),
    Case(
        550,
        "550 5.7.232 Your message can't be sent because your trial tenant has exceeded its "
        "daily limit for sending email to external recipients (tenant external recipient rate "
        "limit)",
        Stage.RCPT,
        K.PAUSE_TENANT,
        "m365.tenant_recipient_limit",
    ),
    Case(
        452,
        "452 4.5.3 Too many recipients",
        Stage.RCPT,
        K.RETRY,
        "smtp.too_many_recipients",
        flags={"split_recipients": True},
    ),
    Case(
        550,
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
        Stage.RCPT,
        K.DROP_RECIPIENT,
        "smtp.recipient_unknown",
    ),
    Case(
        550,
        "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found",
        Stage.RCPT,
        K.DROP_RECIPIENT,
        "smtp.recipient_unknown",
    ),
    # ---- Google Workspace ----
    Case(
        421,
        "421-4.7.0 Try again later, closing connection. (EHLO) d2e1a72fcca58-7a1b2c3d4e5sm"
        "1234567pfb.12 - gsmtp",
        Stage.EHLO,
        K.RETRY,
        "google.temporary",
        "google",
        flags={"reconnect": True},
    ),
    Case(
        421,
        "421 4.3.0 Temporary System Problem.  Try again later (10). d9443c01a7336-1e2f3a4"
        "b5c6sm123456plb.99 - gsmtp",
        Stage.MAIL,
        K.RETRY,
        "google.temporary",
        "google",
    ),
    Case(
        421,
        "421 4.4.5 Server busy, try again later.",
        Stage.CONNECT,
        K.RETRY,
        "google.temporary",
        "google",
    ),
    Case(
        421,
        "421-4.7.28 [203.0.113.9      15] Our system has detected an unusual rate of\n"
        "421-4.7.28 unsolicited mail originating from your IP address. To protect our\n"
        "421 4.7.28 users from spam, mail sent from your IP address has been temporarily rate "
        "limited.",
        Stage.DATA,
        K.SLOW,
        "google.reputation",
        "google",
        flags={"rate_factor": 0.25, "reconnect": True},
    ),
    Case(
        421,
        "421-4.7.0 [203.0.113.9] Our system has detected an unusual rate of\n421-4.7.0 "
        "unsolicited mail originating from your IP address.",
        Stage.DATA,
        K.SLOW,
        "google.reputation",
        "google",
        flags={"rate_factor": 0.25},
    ),
    Case(
        452,
        "452 4.5.3 Your message has too many recipients. For more information regarding "
        "Google's sending limits, visit https://support.google.com/mail/answer/6592 - gsmtp",
        Stage.RCPT,
        K.RETRY,
        "smtp.too_many_recipients",
        "google",
        flags={"split_recipients": True},
    ),
    Case(
        550,
        "550-5.4.5 Daily user sending limit exceeded. For more information on Gmail\n"
        "550-5.4.5 sending limits go to\n550 5.4.5  https://support.google.com/a/answer/166852"
        " - gsmtp",
        Stage.DATA,
        K.PAUSE_MAILBOX,
        "google.daily_limit",
        "google",
        flags={"until_window_frees": True},
    ),
    Case(
        535,
        "535-5.7.8 Username and Password not accepted. For more information, go to\n"
        "535 5.7.8  https://support.google.com/mail/?p=BadCredentials - gsmtp",
        Stage.AUTH,
        K.PAUSE_MAILBOX,
        "google.bad_credentials",
        "google",
        flags={"refresh_token_first": True},
    ),
    # ---- Google replies beyond the table, and the sandbox's ----
    Case(
        534,
        "534-5.7.9 Application-specific password required. Learn more at\n534 5.7.9  "
        "https://support.google.com/mail/?p=InvalidSecondFactor - gsmtp",
        Stage.AUTH,
        K.PAUSE_MAILBOX,
        "google.app_password_required",
        "google",
    ),
    Case(
        534,
        "534-5.7.14 <https://accounts.google.com/signin/continue?x=1> Please log in via "
        "your web browser and\n534 5.7.14 then try again.",
        Stage.AUTH,
        K.PAUSE_MAILBOX,
        "google.web_login_required",
        "google",
    ),
    Case(
        454,
        "454 4.7.0 Too many login attempts, please try again later.",
        Stage.AUTH,
        K.SLOW,
        "google.login_rate",
        "google",
    ),
    Case(
        530,
        "530 5.7.0 Must issue a STARTTLS command first.",
        Stage.MAIL,
        K.FIX_CONFIG,
        "smtp.starttls_required",
        "google",
    ),
    Case(
        550,
        "550-5.7.1 [203.0.113.9] Our system has detected that this message is likely "
        "unsolicited mail.",
        Stage.DATA,
        K.REJECTED,
        "google.content_spam",
        "google",
    ),
    Case(
        504,
        "504 5.7.4 Unrecognized authentication type",
        Stage.AUTH,
        K.FIX_CONFIG,
        "smtp.auth_mechanism",
    ),
]


def _id(case: Case) -> str:
    return f"{case.rule}:{case.text[:40]}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_each_table_row_gives_its_action(case: Case) -> None:
    outcome = classify_reply(
        case.code, case.text, stage=case.stage, provider=case.provider, mailbox="a@brand-mail.com"
    )
    assert (outcome.kind, outcome.rule) == (case.kind, case.rule)
    assert outcome.text == case.text
    assert outcome.code == case.code
    assert outcome.explanation
    assert outcome.remedy
    for name, value in case.flags.items():
        assert getattr(outcome, name) == value, name
    for words in case.remedy_has:
        assert words.lower() in outcome.remedy.lower()
    assert "<mailbox>" not in outcome.remedy


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_the_text_without_its_code_as_aiosmtplib_hands_it_over_gives_the_same(case: Case) -> None:
    # aiosmtplib's SMTPResponse.message drops the code from every line.
    lines = [line[4:] if line[:3].isdigit() else line for line in case.text.splitlines()]
    outcome = classify_reply(case.code, "\n".join(lines), stage=case.stage, provider=case.provider)
    assert (outcome.kind, outcome.rule) == (case.kind, case.rule)


def test_every_rule_of_the_table_is_exercised_here() -> None:
    assert {rule.id for rule in RULES} <= {case.rule for case in CASES}


def test_enhanced_code_is_parsed_from_the_text() -> None:
    outcome = classify_reply(
        535,
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
        "Tenant.",
        stage=Stage.AUTH,
    )
    assert outcome.enhanced == "5.7.139"


def test_microsoft_only_rows_do_not_apply_to_other_providers() -> None:
    text = "554 5.2.2 mailbox full; STOREDRV.Submission.Exception:QuotaExceededException"
    assert classify_reply(554, text, stage=Stage.DATA).rule == "m365.mailbox_full"
    # On any other server 5.2.2 is the recipient's full mailbox: a soft bounce.
    other = classify_reply(554, text, stage=Stage.DATA, provider="generic")
    assert other.kind is K.REJECTED


def test_the_two_554_5_2_0_faults_are_told_apart_by_text() -> None:
    quota = "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; x"
    spam = "554 5.2.0 STOREDRV.Submission.Exception:OutboundSpamException; WASCL UserAction"
    assert classify_reply(554, quota, stage=Stage.DATA).until_window_frees
    assert not classify_reply(554, spam, stage=Stage.DATA).until_window_frees


def test_a_submission_quota_text_with_camel_case_is_not_the_mailbox_full_row() -> None:
    text = "554 5.2.2 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"
    assert classify_reply(554, text, stage=Stage.DATA).rule != "m365.mailbox_full"


def test_a_recipient_code_at_mail_from_is_about_the_sender_not_a_hard_bounce() -> None:
    outcome = classify_reply(550, "550 5.1.1 Sender address rejected", stage=Stage.MAIL)
    assert outcome.kind is K.PAUSE_MAILBOX
    assert not outcome.hard_bounce


def test_a_reply_without_enhanced_code_is_still_recognised_by_its_words() -> None:
    outcome = classify_reply(452, "452 Too many recipients", stage=Stage.RCPT, provider="generic")
    assert outcome.split_recipients
    auth = classify_reply(535, "535 Authentication unsuccessful", stage=Stage.AUTH)
    assert auth.rule == "m365.auth_failed"
