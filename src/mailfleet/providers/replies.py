"""What an SMTP reply means, and what to do about it: the reply table of PROVIDERS.md.

Every reply the transport sees — and every way a connection fails, through
:func:`mailfleet.providers.faults.classify_exception` — becomes one
:class:`Outcome`, whose ``kind`` is one leaf of this tree::

    reply or transport failure
     ├── ACCEPTED ........... 2xx/3xx: go on (a reply to QUIT never changes a send)
     ├── deferred: the message is fine, send it again later (Outcome.retriable)
     │    ├── RETRY ......... transient; reconnect=True after 421 or a broken connection,
     │    │                   split_recipients=True for "too many recipients" (4.5.3)
     │    ├── SLOW .......... the provider says we go too fast: back off and multiply
     │    │                   the mailbox's rate by rate_factor; fewer_connections=True
     │    │                   for Microsoft's concurrent-connection limit (4.3.2)
     │    ├── PAUSE_MAILBOX . stop this mailbox, attach the remedy; a person acts unless
     │    │                   until_window_frees=True (a rolling 24 h quota was reached);
     │    │                   refresh_token_first=True: refresh the OAuth token and try
     │    │                   once more before pausing (535 5.7.3, Google 5.7.8)
     │    ├── PAUSE_TENANT .. stop every mailbox of the Microsoft 365 tenant until the
     │    │                   window frees (5.7.232 / 5.7.233)
     │    └── FIX_CONFIG .... our configuration is wrong (port, TLS, host, mechanism):
     │                        stop the mailbox until a person edits it
     ├── final: this message is done (not retriable)
     │    ├── DROP_RECIPIENT  the address is dead: hard bounce, suppress it (hard_bounce)
     │    └── REJECTED ...... refused for good (spam, policy, too big): a soft bounce
     └── UNKNOWN ............ the connection broke after the message was handed over:
                              reconcile (find the Message-ID in Sent Items over IMAP),
                              never resend blindly

How a reply is read, first answer wins:

1. The basic code comes from ``code``, else from the text's start; the enhanced
   code (RFC 3463) from the text (:func:`parse_enhanced`).
2. 2xx and 3xx are ACCEPTED.
3. The provider's rows in :data:`mailfleet.providers.reply_rules.RULES`, matched on
   code, enhanced code and text — Microsoft reuses 5.2.2, 5.2.0 and 5.7.139.
   Unknown provider names get only the rows every SMTP server shares.
4. RFC 3463 by class, subject and stage: 4.x retries; at RCPT or DATA a dead
   address (5.1.1, 5.1.2, 5.1.3, 5.1.6, 5.1.10, 5.2.1, or its words) drops the
   recipient and any other 5.x rejects the message; 5.x at AUTH pauses the
   mailbox after one token refresh (a 5.5 protocol error there is FIX_CONFIG);
   at MAIL FROM it pauses the mailbox (the server refuses the sender) unless it
   is about the message (5.3, 5.5, 5.6); before AUTH it is FIX_CONFIG, or
   PAUSE_MAILBOX for a 5.7 block at connect, banner or EHLO; at RSET, reconnect.
5. No enhanced code: the same by the basic code's class (421 also reconnects);
   the text alone can still mark an address dead ("550 No such user here").
6. No readable code at all: RETRY with a reconnect, or UNKNOWN at DATA, where the
   message may have been accepted.

``retry_after`` carries the server's own "try again in N minutes" when it gives
one; otherwise it is None and the engine's backoff decides. Nothing here raises.
"""

from __future__ import annotations

from dataclasses import replace

from mailfleet.providers.bounces import BounceKind, bounce_kind
from mailfleet.providers.outcomes import Outcome, OutcomeKind, Stage
from mailfleet.providers.reply_rules import RULES, Rule
from mailfleet.providers.reply_text import (
    enhanced_class,
    enhanced_subject,
    normalize_text,
    parse_code,
    parse_enhanced,
    parse_retry_after,
)

__all__ = ["Outcome", "OutcomeKind", "Stage", "classify_reply", "parse_enhanced"]

_SUBJECTS = {
    0: "other or undefined status",
    1: "addressing",
    2: "mailbox",
    3: "mail system",
    4: "network and routing",
    5: "mail delivery protocol",
    6: "message content or media",
    7: "security or policy",
}
# At MAIL FROM these subjects are about the message (size, SMTPUTF8, content), not the sender.
_MESSAGE_SUBJECTS = frozenset({3, 5, 6})
_DOCTOR = "run `mailfleet doctor <mailbox>` to see each step's reply"


def classify_reply(
    code: int | None,
    text: str,
    *,
    stage: Stage,
    provider: str = "microsoft365",
    mailbox: str | None = None,
) -> Outcome:
    """Classify one SMTP reply into an :class:`Outcome`; never raises.

    ``text`` may include the code (``"451 4.7.500 Server busy"``) or not; ``mailbox``,
    when given, is written into remedies in place of ``<mailbox>``.
    """
    if isinstance(text, bytes | bytearray):  # smtplib hands over bytes
        text = bytes(text).decode("utf-8", errors="replace")
    elif not isinstance(text, str):
        text = ""
    if code is None or not 200 <= code <= 599:
        code = parse_code(text)
    enhanced = parse_enhanced(text)
    flat = normalize_text(text)
    reply = _Reply(code, enhanced, text, stage, provider, mailbox)
    if stage is Stage.QUIT:
        return reply.outcome(
            OutcomeKind.ACCEPTED, "smtp.quit", "A reply to QUIT changes no send's outcome.", ""
        )
    cls = code // 100 if code is not None else enhanced_class(enhanced)
    if cls in (2, 3):
        rule_id = "rfc3463.positive" if enhanced else "rfc5321.positive"
        return reply.outcome(OutcomeKind.ACCEPTED, rule_id, "The server accepted this step.", "")
    if cls is None:
        return _malformed(reply)
    for rule in RULES:
        if _matches(rule, reply, flat) and not _soft_after_all(rule, reply):
            return _from_rule(rule, reply)
    if cls == 4:
        return _transient(reply)
    return _permanent(reply)


class _Reply:
    """The parsed reply and its context, so each branch builds an Outcome in one call."""

    __slots__ = ("code", "enhanced", "mailbox", "provider", "stage", "text")

    def __init__(
        self,
        code: int | None,
        enhanced: str | None,
        text: str,
        stage: Stage,
        provider: str,
        mailbox: str | None,
    ) -> None:
        self.code = code
        self.enhanced = enhanced
        self.text = text
        self.stage = stage
        self.provider = provider
        self.mailbox = mailbox

    @property
    def source(self) -> str:
        """Prefix of fallback rule ids: which standard decided."""
        return "rfc3463" if self.enhanced else "rfc5321"

    def outcome(
        self,
        kind: OutcomeKind,
        rule: str,
        explanation: str,
        remedy: str,
        *,
        reconnect: bool = False,
        refresh_token_first: bool = False,
    ) -> Outcome:
        """Build the Outcome for this reply, filling in the mailbox and the server's hints."""
        return Outcome(
            kind=kind,
            code=self.code,
            enhanced=self.enhanced,
            text=self.text,
            stage=self.stage,
            rule=rule,
            explanation=explanation,
            remedy=self.fill(remedy),
            provider=self.provider,
            retry_after=None if kind is OutcomeKind.ACCEPTED else parse_retry_after(self.text),
            reconnect=reconnect or self.code == 421,
            refresh_token_first=refresh_token_first,
        )

    def fill(self, remedy: str) -> str:
        """Write the mailbox's address into a remedy's ``<mailbox>`` placeholders."""
        return remedy.replace("<mailbox>", self.mailbox) if self.mailbox else remedy


def _matches(rule: Rule, reply: _Reply, flat: str) -> bool:
    if rule.providers and reply.provider not in rule.providers:
        return False
    if rule.stages and reply.stage not in rule.stages:
        return False
    if rule.codes and reply.code not in rule.codes:
        return False
    if rule.enhanced:
        if reply.enhanced is None:
            # A reply without an enhanced code can still be recognised by its words.
            if rule.text is None:
                return False
        elif reply.enhanced not in rule.enhanced:
            return False
    return rule.text is None or rule.text.search(flat) is not None


def _soft_after_all(rule: Rule, reply: _Reply) -> bool:
    # One judge of hard and soft for replies and DSNs alike: a 5.1.1 that speaks of
    # spam or policy is a block, not a dead address.
    if rule.kind is not OutcomeKind.DROP_RECIPIENT:
        return False
    return bounce_kind(reply.enhanced, reply.text, code=reply.code) is BounceKind.SOFT


def _from_rule(rule: Rule, reply: _Reply) -> Outcome:
    outcome = reply.outcome(
        rule.kind,
        rule.id,
        rule.explanation,
        rule.remedy,
        refresh_token_first=rule.refresh_token_first,
    )
    return replace(
        outcome,
        split_recipients=rule.split_recipients,
        fewer_connections=rule.fewer_connections,
        rate_factor=rule.rate_factor,
        until_window_frees=rule.until_window_frees,
    )


def _subject_words(reply: _Reply) -> str:
    subject = enhanced_subject(reply.enhanced)
    if subject is None:
        return f"reply {reply.code}"
    return f"{reply.enhanced} ({_SUBJECTS.get(subject, 'undefined subject')})"


def _malformed(reply: _Reply) -> Outcome:
    if reply.stage is Stage.DATA:
        return reply.outcome(
            OutcomeKind.UNKNOWN,
            "smtp.malformed_after_data",
            "The reply after the message could not be read: it may have been accepted.",
            "Automatic: reconcile (look the Message-ID up in Sent Items) before any resend.",
            reconnect=True,
        )
    return reply.outcome(
        OutcomeKind.RETRY,
        "smtp.malformed",
        "The reply could not be read (no valid code); the session is out of step.",
        "Automatic: reconnect and retry; if it persists, " + _DOCTOR + ".",
        reconnect=True,
    )


def _transient(reply: _Reply) -> Outcome:
    if reply.code == 421:
        return reply.outcome(
            OutcomeKind.RETRY,
            f"{reply.source}.closing",
            f"The server is closing the connection: {_subject_words(reply)}, transient.",
            "Automatic: reconnect and retry with backoff.",
        )
    return reply.outcome(
        OutcomeKind.RETRY,
        f"{reply.source}.transient",
        f"A transient failure: {_subject_words(reply)}.",
        "Automatic: retry with backoff and jitter; if it persists, read the server's text.",
    )


def _permanent(reply: _Reply) -> Outcome:
    stage = reply.stage
    subject = enhanced_subject(reply.enhanced)
    words = _subject_words(reply)
    if stage in (Stage.RCPT, Stage.DATA):
        if bounce_kind(reply.enhanced, reply.text, code=reply.code) is BounceKind.HARD:
            return reply.outcome(
                OutcomeKind.DROP_RECIPIENT,
                f"{reply.source}.address_dead",
                f"The recipient's address is dead: {words}.",
                "Automatic: drop and suppress the address (hard bounce).",
            )
        return reply.outcome(
            OutcomeKind.REJECTED,
            f"{reply.source}.rejected",
            f"The server refused this message for good: {words}.",
            "This message is not sent; read the server's text. The mailbox carries on.",
        )
    if stage in (Stage.AUTH, Stage.TOKEN) and subject != 5:
        return reply.outcome(
            OutcomeKind.PAUSE_MAILBOX,
            f"{reply.source}.auth_refused",
            f"The server refused the login: {words}.",
            "Refresh the OAuth token once and retry; if it fails again, check the credentials "
            "and that SMTP AUTH is allowed for <mailbox>; " + _DOCTOR + ".",
            refresh_token_first=True,
        )
    if stage is Stage.MAIL and subject in _MESSAGE_SUBJECTS:
        return reply.outcome(
            OutcomeKind.REJECTED,
            f"{reply.source}.rejected",
            f"The server refused this message at MAIL FROM: {words}.",
            "This message is not sent; read the server's text. The mailbox carries on.",
        )
    if stage is Stage.MAIL:
        return reply.outcome(
            OutcomeKind.PAUSE_MAILBOX,
            f"{reply.source}.sender_refused",
            f"The server refuses this mailbox as sender: {words}.",
            "Check that the From address is <mailbox> itself and that the account may send; "
            + _DOCTOR
            + ".",
        )
    if stage is Stage.RSET:
        return reply.outcome(
            OutcomeKind.RETRY,
            f"{reply.source}.reset_refused",
            f"The server refused RSET: {words}; the session cannot be reused.",
            "Automatic: reconnect and retry.",
            reconnect=True,
        )
    if subject == 7 and stage in (Stage.CONNECT, Stage.BANNER, Stage.EHLO):
        return reply.outcome(
            OutcomeKind.PAUSE_MAILBOX,
            f"{reply.source}.client_refused",
            f"The server refuses this client (IP or policy): {words}.",
            "A person reads the server's text and contacts the provider about the block.",
        )
    return reply.outcome(
        OutcomeKind.FIX_CONFIG,
        f"{reply.source}.session_refused",
        f"The server refused the session at {stage.value.upper()}: {words}.",
        "Check host, port, security and auth kind against the provider's preset; " + _DOCTOR + ".",
    )
