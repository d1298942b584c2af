"""The reply table of PROVIDERS.md as data: one :class:`Rule` per row, first match wins.

Order matters where Microsoft reuses a code for different faults (5.2.2, 5.2.0,
5.7.139, 5.2.252): the row with the more specific text comes first. A row that
needs to match either by code or by text appears twice under the same id.
Remedies may say ``<mailbox>``; the matcher fills in the mailbox's address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from mailfleet.providers.outcomes import OutcomeKind, Stage

M365 = frozenset({"microsoft365"})
GOOGLE = frozenset({"google"})
ANY: frozenset[str] = frozenset()  # every provider, including generic hosts

_SET_CAS = "Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false"
_OAUTH = "connect it with OAuth instead (`mailfleet mailbox connect <mailbox>`)"


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the reply table and how to recognise it.

    A reply matches when its provider, stage and basic code are allowed (empty
    sets allow all) and: its enhanced code is in ``enhanced`` (when given) and its
    text matches ``text`` (when given). A reply that carries no enhanced code at
    all is judged by ``text`` alone, so ``"452 Too many recipients"`` still matches.
    """

    id: str
    kind: OutcomeKind
    explanation: str
    remedy: str
    enhanced: frozenset[str] = frozenset()
    text: re.Pattern[str] | None = None
    codes: frozenset[int] = frozenset()
    stages: frozenset[Stage] = frozenset()
    providers: frozenset[str] = ANY
    refresh_token_first: bool = False
    split_recipients: bool = False
    fewer_connections: bool = False
    rate_factor: float = 1.0
    until_window_frees: bool = False


def _codes(*codes: str) -> frozenset[str]:
    return frozenset(codes)


def _span(prefix: str, first: int, last: int) -> frozenset[str]:
    """Enhanced codes ``prefix.first`` … ``prefix.last``, e.g. 4.7.500–4.7.699."""
    return frozenset(f"{prefix}.{n}" for n in range(first, last + 1))


def _text(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_AUTH_FAILED = Rule(
    id="m365.auth_failed",
    kind=OutcomeKind.PAUSE_MAILBOX,
    providers=M365,
    enhanced=_codes("5.7.3"),
    codes=frozenset({535}),
    refresh_token_first=True,
    explanation=(
        "Authentication unsuccessful: the token is expired or invalid, has the wrong "
        "audience (a Graph token), lacks SMTP.Send, or belongs to another account."
    ),
    remedy=(
        "Refresh the access token once and retry; if it fails again, check: (1) the token's "
        "audience is https://outlook.office.com, not Graph; (2) delegated: SMTP.Send was "
        "consented; app-only: SMTP.SendAsApp has admin consent, `New-ServicePrincipal` was run "
        "with the Enterprise Application object id and `Add-MailboxPermission -Identity "
        "<mailbox> -User <service principal id> -AccessRights FullAccess` was granted; (3) the "
        "account that consented is <mailbox>; (4) SMTP AUTH is on: `" + _SET_CAS + "`."
    ),
)

_TENANT_LIMIT = Rule(
    id="m365.tenant_recipient_limit",
    kind=OutcomeKind.PAUSE_TENANT,
    providers=M365,
    enhanced=_codes("5.7.232", "5.7.233"),
    until_window_frees=True,
    explanation=(
        "The tenant exceeded its daily limit of external recipients over a rolling 24 hours "
        "(trial 5,000; paid about 500 × licences^0.7 + 9,500), counted across all its mailboxes."
    ),
    remedy=(
        "Pause every mailbox of this tenant until the rolling window frees, and lower the "
        "fleet's daily caps for the tenant; the limit cannot be raised by PowerShell."
    ),
)

_SENDER_THROTTLED = {
    "5.2.251": ("mailbox full", "empty the sender's Sent Items and Deleted Items"),
    "5.2.252": ("send as denied", "send only from the mailbox's own address or grant SendAs"),
    "5.2.253": ("invalid license", "assign an Exchange Online licence to the mailbox"),
    "5.2.254": ("too many recipients", "send fewer recipients per message"),
    "5.2.255": ("invalid recipients", "clean the lead list; stop sending to dead addresses"),
}

_SEND_AS = Rule(
    id="m365.send_as_denied",
    kind=OutcomeKind.PAUSE_MAILBOX,
    providers=M365,
    enhanced=_codes("5.7.60", "5.2.252"),
    text=_text(r"SendAsDenied|permissions? to send as|not allowed to send as"),
    explanation="The From address is not the mailbox and the mailbox has no SendAs right on it.",
    remedy=(
        "Send from <mailbox> itself, or have an admin grant the right: `Add-RecipientPermission "
        "-Identity <from address> -Trustee <mailbox> -AccessRights SendAs`. Repeating this "
        "error gets the mailbox throttled (550 5.2.252)."
    ),
)

_TOO_MANY_RECIPIENTS = Rule(
    id="smtp.too_many_recipients",
    kind=OutcomeKind.RETRY,
    enhanced=_codes("4.5.3", "5.5.3"),
    split_recipients=True,
    explanation=(
        "Too many recipients in one message (Microsoft: over 200 to one domain; Google: over "
        "100 over SMTP)."
    ),
    remedy=(
        "Automatic: resend in smaller batches. Repeating it on Microsoft 365 gets the mailbox "
        "throttled (550 5.2.254)."
    ),
)

_REPUTATION = Rule(
    id="google.reputation",
    kind=OutcomeKind.SLOW,
    providers=GOOGLE,
    enhanced=_codes("4.7.0", "4.7.28"),
    text=_text(r"unsolicited|suspicious|reputation|rate limited"),
    rate_factor=0.25,
    explanation="Google rate-limits this sender for an unusual rate of unsolicited mail.",
    remedy=(
        "Automatic: back off hard and cut the mailbox's rate to a quarter; check bounce and "
        "complaint rates, content and the domain's SPF, DKIM and DMARC."
    ),
)

_STARTTLS = Rule(
    id="smtp.starttls_required",
    kind=OutcomeKind.FIX_CONFIG,
    enhanced=_codes("5.7.0", "5.7.3", "5.7.10", "5.7.11"),
    text=_text(r"STARTTLS|TLS (?:is )?required|encryption (?:is )?required"),
    explanation="The server requires STARTTLS before this command; the session was not encrypted.",
    remedy=(
        "Use security `starttls` on port 587 (or `tls` on 465 where the provider offers it); "
        "mailfleet never authenticates without TLS. Run `mailfleet doctor <mailbox>`."
    ),
)

_AUTH_MECHANISM = Rule(
    id="smtp.auth_mechanism",
    kind=OutcomeKind.FIX_CONFIG,
    stages=frozenset({Stage.AUTH}),
    codes=frozenset({504}),
    explanation="The server does not offer the authentication mechanism we used.",
    remedy=(
        "Choose an auth kind the server advertises in EHLO (Microsoft 365 offers XOAUTH2 and "
        "LOGIN only after STARTTLS); run `mailfleet doctor <mailbox>` to see the list."
    ),
)

RULES: tuple[Rule, ...] = (
    # ---- Microsoft 365 --------------------------------------------------------------
    Rule(
        id="m365.server_busy",
        kind=OutcomeKind.SLOW,
        providers=M365,
        enhanced=_span("4.7", 500, 699),
        rate_factor=0.5,
        explanation="Server busy: Microsoft throttles or greylists the sending IP (ASxxx codes).",
        remedy="Automatic: back off and halve this mailbox's rate; it clears as history builds.",
    ),
    Rule(
        id="m365.concurrent_connections",
        kind=OutcomeKind.SLOW,
        providers=M365,
        enhanced=_codes("4.3.2"),
        text=_text(r"concurrent connections|thread limit"),
        fewer_connections=True,
        explanation="More than 3 concurrent connections (or submissions) for this mailbox.",
        remedy="Automatic: use fewer connections for this mailbox (Microsoft allows 3).",
    ),
    Rule(
        id="m365.tls_too_old",
        kind=OutcomeKind.FIX_CONFIG,
        providers=M365,
        enhanced=_codes("4.7.66"),
        explanation="The session used TLS 1.0 or 1.1; Microsoft requires TLS 1.2 or later.",
        remedy=(
            "Use TLS 1.2 or 1.3: update OpenSSL/Python, remove any TLS-intercepting proxy, and "
            "connect to smtp.office365.com (not smtp-legacy.office365.com)."
        ),
    ),
    Rule(
        id="m365.client_not_authenticated",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=M365,
        enhanced=_codes("5.7.57"),
        explanation=(
            "Client not authenticated to send mail: no AUTH was done, or Authenticated SMTP "
            "is disabled for the mailbox."
        ),
        remedy=(
            "Enable Authenticated SMTP for the mailbox: `" + _SET_CAS + "` (or admin center → "
            "the user → Mail → Manage email apps → Authenticated SMTP); then resume."
        ),
    ),
    Rule(
        id="m365.auth_disabled_tenant",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=M365,
        enhanced=_codes("5.7.139"),
        text=_text(r"SmtpClientAuthentication is disabled for the Tenant"),
        explanation="SMTP AUTH is disabled for the whole tenant (this blocks XOAUTH2 too).",
        remedy=(
            "An Exchange admin enables it for this mailbox: `" + _SET_CAS + "` (the mailbox "
            "setting overrides the tenant's), or for the tenant: `Set-TransportConfig "
            "-SmtpClientAuthenticationDisabled $false`. See https://aka.ms/smtp_auth_disabled."
        ),
    ),
    Rule(
        id="m365.auth_disabled",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=M365,
        enhanced=_codes("5.7.139"),
        text=_text(r"SmtpClientAuthentication is disabled|SMTP ?AUTH(?:entication)? is disabled"),
        explanation="SMTP AUTH is disabled for this mailbox (this blocks XOAUTH2 too).",
        remedy="An Exchange admin runs `" + _SET_CAS + "`; then resume the mailbox.",
    ),
    Rule(
        id="m365.security_defaults",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=M365,
        enhanced=_codes("5.7.139"),
        text=_text(r"security defaults"),
        explanation="The tenant's Security Defaults block this sign-in (basic authentication).",
        remedy=(
            "Use OAuth: " + _OAUTH + "; or an admin replaces Security Defaults with "
            "Conditional Access policies that allow SMTP AUTH for this mailbox."
        ),
    ),
    Rule(
        id="m365.conditional_access",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=M365,
        enhanced=_codes("5.7.139"),
        text=_text(r"did not meet the criteria"),
        explanation="A Conditional Access policy (location, device, MFA) refused the sign-in.",
        remedy=(
            "An admin reads the Entra ID sign-in log for <mailbox> and allows this sender "
            "(named location, or an app-only OAuth connection); then resume."
        ),
    ),
    Rule(
        id="m365.bad_credentials",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=M365,
        enhanced=_codes("5.7.139"),
        text=_text(r"credentials were incorrect|invalid credentials"),
        explanation="The user name or password was wrong (basic authentication).",
        remedy=(
            "Re-enter the password, or better, " + _OAUTH + ": Microsoft is retiring basic "
            "authentication for SMTP (550 5.7.30)."
        ),
    ),
    Rule(
        id="m365.auth_blocked",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=M365,
        enhanced=_codes("5.7.139"),
        explanation=(
            "Microsoft refused the sign-in for the reason in the text (account disabled or "
            "locked, basic authentication off)."
        ),
        remedy=(
            "Check the user in the Entra admin center (enabled, not locked, licensed), then "
            + _OAUTH
            + "."
        ),
    ),
    _AUTH_FAILED,
    replace(_AUTH_FAILED, enhanced=frozenset(), text=_text(r"^Authentication unsuccessful")),
    Rule(
        id="m365.basic_auth_retired",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=M365,
        enhanced=_codes("5.7.30"),
        explanation="Basic authentication is no longer accepted for client submission.",
        remedy="Move the mailbox to OAuth (XOAUTH2): " + _OAUTH + ".",
    ),
    Rule(
        id="m365.ip_blocked",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=M365,
        enhanced=_codes("5.7.708"),
        explanation="Microsoft refuses traffic from this IP (IP reputation block).",
        remedy=(
            "An admin requests delisting in the Microsoft 365 admin center (support request); "
            "keep the mailbox paused until Microsoft confirms."
        ),
    ),
    _SEND_AS,
    *(
        Rule(
            id="m365.sender_throttled",
            kind=OutcomeKind.PAUSE_MAILBOX,
            providers=M365,
            enhanced=_codes(code),
            explanation=(
                f"Microsoft throttled the whole mailbox after continuous {cause} errors; "
                "support cannot lift it."
            ),
            remedy=f"Fix the cause ({fix}), then resume once Microsoft's throttle expires.",
        )
        for code, (cause, fix) in _SENDER_THROTTLED.items()
    ),
    Rule(
        id="m365.recipient_quota",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=M365,
        enhanced=_codes("5.2.0"),
        text=_text(r"SubmissionQuotaExceeded"),
        until_window_frees=True,
        explanation="The mailbox reached 10,000 recipients in a rolling 24 hours.",
        remedy=(
            "Nothing to fix: resume when the rolling window frees. If mailfleet's own counters "
            "are well below 10,000, something else sends from <mailbox>: find it."
        ),
    ),
    Rule(
        id="m365.outbound_spam",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=M365,
        enhanced=_codes("5.2.0"),
        text=_text(r"OutboundSpam|WASCL"),
        explanation="Microsoft flagged the account for sending spam and restricted it.",
        remedy=(
            "A person must verify: check the account is not compromised (sign-ins, forwarding "
            "rules), review content and volume, then an admin releases the user in the Microsoft "
            "Defender portal → Restricted entities. Do not resume before that."
        ),
    ),
    Rule(
        id="m365.mailbox_full",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=M365,
        enhanced=_codes("5.2.2"),
        text=_text(r"(?<!Submission)QuotaExceededException|mailbox (?:is )?full"),
        explanation="The sending mailbox is over its storage quota (Sent Items count).",
        remedy=(
            "Empty Sent Items and Deleted Items of <mailbox> or raise its quota, then resume. "
            "Repeating this error gets the mailbox throttled (550 5.2.251)."
        ),
    ),
    Rule(
        id="m365.submission_rate",
        kind=OutcomeKind.SLOW,
        providers=M365,
        enhanced=_codes("5.2.2"),
        text=_text(r"submission quota exceeded"),
        rate_factor=0.5,
        explanation="The mailbox submits too fast (rate limit, 30 messages a minute).",
        remedy="Automatic: back off and halve the rate; if it recurs, lower the per-minute cap.",
    ),
    Rule(
        id="m365.content_spam",
        kind=OutcomeKind.REJECTED,
        providers=M365,
        enhanced=_codes("5.7.520"),
        explanation="This message was blocked because its content was identified as spam.",
        remedy="Review the step's content (links, wording, attachments); the mailbox carries on.",
    ),
    Rule(
        id="m365.banned_sender",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=M365,
        enhanced=_codes("5.1.8", "5.7.501", "5.7.502", "5.7.503"),
        explanation="The account is banned from sending because it sent spam.",
        remedy=(
            "A person reviews the account (compromise, content, volume); an admin requests "
            "release in the Microsoft Defender portal → Restricted entities, or retires it."
        ),
    ),
    Rule(
        id="m365.unregistered_domain",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=M365,
        enhanced=_codes("5.7.750"),
        explanation="The sending domain is not a validated accepted domain of the tenant.",
        remedy="Add and verify the domain in the admin center (Settings → Domains); then resume.",
    ),
    _TENANT_LIMIT,
    replace(_TENANT_LIMIT, enhanced=frozenset(), text=_text(r"external recipient rate limit")),
    # ---- Google Workspace -----------------------------------------------------------
    _REPUTATION,
    replace(_REPUTATION, enhanced=_codes("4.7.28"), text=None),
    Rule(
        id="google.login_rate",
        kind=OutcomeKind.SLOW,
        providers=GOOGLE,
        enhanced=_codes("4.7.0"),
        text=_text(r"too many login attempts"),
        rate_factor=0.5,
        explanation="Too many logins in a short time.",
        remedy="Automatic: back off and reuse connections instead of logging in again.",
    ),
    Rule(
        id="google.temporary",
        kind=OutcomeKind.RETRY,
        providers=GOOGLE,
        codes=frozenset({421}),
        enhanced=_codes("4.7.0", "4.3.0", "4.4.5"),
        explanation="A temporary problem at Google (system problem, server busy).",
        remedy="Automatic: reconnect and retry with backoff.",
    ),
    Rule(
        id="google.daily_limit",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=GOOGLE,
        enhanced=_codes("5.4.5"),
        until_window_frees=True,
        explanation="The account reached its daily sending limit (2,000 messages; 500 on trial).",
        remedy="Nothing to fix: resume when the rolling 24 hours free; lower the daily cap.",
    ),
    Rule(
        id="google.bad_credentials",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=GOOGLE,
        enhanced=_codes("5.7.8"),
        refresh_token_first=True,
        explanation="Username and password (or OAuth token) not accepted.",
        remedy=(
            "OAuth: refresh the token once; if that fails the refresh token is dead (password "
            "changed, access revoked): reconnect with `mailfleet mailbox connect <mailbox>`. "
            "Password: Google accepts only an app password with 2-Step Verification on."
        ),
    ),
    Rule(
        id="google.app_password_required",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=GOOGLE,
        enhanced=_codes("5.7.9"),
        explanation="The account uses 2-Step Verification; a normal password is refused.",
        remedy="Create an app password for <mailbox>, or better, " + _OAUTH + ".",
    ),
    Rule(
        id="google.web_login_required",
        kind=OutcomeKind.PAUSE_MAILBOX,
        providers=GOOGLE,
        enhanced=_codes("5.7.14"),
        explanation="Google wants a person to sign in through a browser first.",
        remedy="Sign in to <mailbox> at https://accounts.google.com, clear the challenge, resume.",
    ),
    Rule(
        id="google.content_spam",
        kind=OutcomeKind.REJECTED,
        providers=GOOGLE,
        enhanced=_codes("5.7.1"),
        text=_text(r"unsolicited|spam|suspicious"),
        explanation="Google judged this message to be spam or suspicious.",
        remedy="Review the step's content (links, wording, attachments); the mailbox carries on.",
    ),
    # ---- any SMTP server --------------------------------------------------------------
    _STARTTLS,
    _AUTH_MECHANISM,
    replace(_AUTH_MECHANISM, codes=frozenset(), enhanced=_codes("5.5.4", "5.7.4")),
    _TOO_MANY_RECIPIENTS,
    replace(_TOO_MANY_RECIPIENTS, enhanced=frozenset(), text=_text(r"too many recipients")),
    Rule(
        id="smtp.recipient_unknown",
        kind=OutcomeKind.DROP_RECIPIENT,
        enhanced=_codes("5.1.1", "5.1.10"),
        stages=frozenset({Stage.RCPT, Stage.DATA}),
        explanation="The recipient's address does not exist.",
        remedy="Automatic: drop and suppress the address (hard bounce); clean the lead source.",
    ),
)
