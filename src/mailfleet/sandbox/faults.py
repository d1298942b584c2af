"""Misconfigured and throttled Microsoft 365 mailboxes, selectable by name.

``sandbox.set_behaviour(address, fault("smtp_auth_disabled"))`` makes one sandbox
mailbox answer as Exchange Online does when that fault is real, with the reply
texts Microsoft sends. :data:`FAULTS` lists every name with the step it refuses
at and what it imitates. A fault refuses at one step of the session:

====== ============================================================================
auth   ``smtp_auth_disabled``, ``smtp_auth_disabled_tenant``, ``security_defaults``
       and ``basic_auth_retired`` (password logins only), ``auth_unsuccessful``,
       ``concurrent_connections``
mail   ``client_not_authenticated`` (AUTH "succeeded"), ``ip_blocked``,
       ``server_busy``, ``send_as_denied``, ``sender_throttled``, ``banned_sender``,
       ``unregistered_domain``, ``temporary_error``
rcpt   ``recipient_not_found``, ``recipient_not_found_5_1_10``,
       ``tenant_recipient_limit``
data   ``recipient_quota``, ``mailbox_full``, ``outbound_spam``, ``content_spam``,
       ``submission_rate``
====== ============================================================================

Microsoft's real limits (30 a minute, 3 sessions, 10,000 recipients a day) are not
faults: every mailbox has them (:mod:`mailfleet.sandbox.limits`). Two faults copy
Exchange's *continuous error throttling*: after ``throttle_after`` refusals,
``mailbox_full`` and ``send_as_denied`` answer ``550 5.2.251`` / ``5.2.252``
instead, so a client that repeats what Microsoft punishes is caught.

TLS 1.0/1.1 is refused by the server's TLS context, and Microsoft offers no port
465: :func:`closed_port` gives a loopback port nothing listens on to test that.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from typing import Literal

from mailfleet.sandbox.behaviour import MailboxBehaviour, Submission
from mailfleet.sandbox.directory import normalize_address
from mailfleet.sandbox.limits import (
    CONCURRENT_CONNECTIONS,
    DEFAULT_HOSTNAME,
    server_busy,
    submission_quota_exceeded,
)
from mailfleet.sandbox.replies import AUTH_UNSUCCESSFUL, NOT_AUTHENTICATED, SEND_AS_DENIED, Reply

FaultStage = Literal["auth", "mail", "rcpt", "data"]

BASIC_MECHANISMS = frozenset({"LOGIN", "PLAIN"})

_THROTTLE_CAUSES = {
    251: "mailbox full",
    252: "send as denied",
    253: "invalid license",
    254: "too many recipients",
    255: "invalid recipients",
}


def sender_throttled(code: int = 252) -> Reply:
    """Exchange's continuous-error throttle, ``550 5.2.251`` … ``5.2.255``."""
    cause = _THROTTLE_CAUSES[code]
    return Reply(550, f"5.2.{code} Sender throttled due to continuous {cause} errors.")


class Refusal(MailboxBehaviour):
    """Refuse at one step with one reply, and remember every refusal.

    ``mechanisms`` limits an AUTH refusal to those mechanisms, ``recipients`` limits
    a RCPT or DATA refusal to messages for those addresses; ``times`` stops refusing
    after that many refusals; after ``throttle_after`` refusals the reply becomes
    ``throttle`` (continuous error throttling).
    """

    def __init__(
        self,
        name: str,
        stage: FaultStage,
        reply: Reply,
        *,
        mechanisms: Iterable[str] | None = None,
        recipients: Iterable[str] | None = None,
        times: int | None = None,
        throttle: Reply | None = None,
        throttle_after: int | None = None,
    ) -> None:
        self.name = name
        self.stage = stage
        self.reply = reply
        self.mechanisms = frozenset(m.upper() for m in mechanisms) if mechanisms else None
        self.recipients = frozenset(map(normalize_address, recipients)) if recipients else None
        self.times = times
        self.throttle = throttle
        self.throttle_after = throttle_after
        self.refused: list[tuple[datetime, Reply]] = []
        """When and with what this fault refused, oldest first."""

    def __repr__(self) -> str:
        return f"Refusal({self.name!r}, {self.stage!r}, refused={len(self.refused)})"

    @property
    def refusals(self) -> int:
        """How many times this fault refused (each is one attempt the client made)."""
        return len(self.refused)

    @property
    def spent(self) -> bool:
        """Whether ``times`` refusals were made, so the fault now lets everything through."""
        return self.times is not None and self.refusals >= self.times

    def _refuse(self, now: datetime) -> Reply | None:
        if self.spent:
            return None
        reply = self.reply
        throttled = self.throttle_after is not None and self.refusals >= self.throttle_after
        if self.throttle is not None and throttled:
            reply = self.throttle
        self.refused.append((now, reply))
        return reply

    async def on_auth(self, address: str, mechanism: str, now: datetime) -> Reply | None:
        if self.stage != "auth":
            return None
        if self.mechanisms is not None and mechanism.upper() not in self.mechanisms:
            return None
        return self._refuse(now)

    async def on_mail_from(self, address: str, now: datetime) -> Reply | None:
        return self._refuse(now) if self.stage == "mail" else None

    async def on_rcpt_to(self, address: str, recipient: str, now: datetime) -> Reply | None:
        if self.stage != "rcpt":
            return None
        if self.recipients is not None and normalize_address(recipient) not in self.recipients:
            return None
        return self._refuse(now)

    async def on_data(self, address: str, submission: Submission, now: datetime) -> Reply | None:
        if self.stage != "data":
            return None
        if self.recipients is not None and self.recipients.isdisjoint(submission.recipients):
            return None
        return self._refuse(now)


class SendAsChecked(Refusal):
    """Refuse at the end of DATA a message whose From header is not the mailbox itself.

    Exchange checks the From header as well as the envelope; the submission server
    already refuses a foreign envelope sender at MAIL FROM.
    """

    def __init__(self, *, throttle_after: int | None = None) -> None:
        super().__init__(
            "send_as_checked",
            "data",
            SEND_AS_DENIED,
            throttle=sender_throttled(252),
            throttle_after=throttle_after,
        )

    async def on_data(self, address: str, submission: Submission, now: datetime) -> Reply | None:
        headers = BytesHeaderParser().parsebytes(submission.raw)
        author = normalize_address(parseaddr(str(headers.get("From", "")))[1])
        if author == normalize_address(address):
            return None
        return self._refuse(now)


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One named fault: the step it refuses at and what it imitates."""

    name: str
    stage: FaultStage
    imitates: str
    reply: Callable[[str], Reply]  # hostname -> reply
    mechanisms: frozenset[str] | None = None
    throttle: Reply | None = None


def _fixed(reply: Reply) -> Callable[[str], Reply]:
    return lambda _hostname: reply


def _auth_disabled(scope: str) -> Callable[[str], Reply]:
    return lambda hostname: Reply(
        535,
        "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
        f"{scope}. Visit https://aka.ms/smtp_auth_disabled for more information. [{hostname}]",
    )


_SPECS = (
    FaultSpec(
        "smtp_auth_disabled",
        "auth",
        "SMTP AUTH disabled for the mailbox (Set-CASMailbox), which blocks XOAUTH2 too",
        _auth_disabled("Mailbox"),
    ),
    FaultSpec(
        "smtp_auth_disabled_tenant",
        "auth",
        "SMTP AUTH disabled for the whole tenant (Set-TransportConfig)",
        _auth_disabled("Tenant"),
    ),
    FaultSpec(
        "security_defaults",
        "auth",
        "Security Defaults block basic-authentication sign-ins",
        _fixed(
            Reply(
                535,
                "5.7.139 Authentication unsuccessful, user is locked by your organization's "
                "security defaults policy. Contact your administrator.",
            )
        ),
        mechanisms=BASIC_MECHANISMS,
    ),
    FaultSpec(
        "basic_auth_retired",
        "auth",
        "basic authentication retired for client submission (LOGIN and PLAIN refused)",
        _fixed(Reply(550, "5.7.30 Basic authentication is not supported for Client Submission.")),
        mechanisms=BASIC_MECHANISMS,
    ),
    FaultSpec(
        "auth_unsuccessful",
        "auth",
        "a login Exchange refuses however often the token is renewed (missing SMTP.Send "
        "consent, no FullAccess for the app, wrong account)",
        _fixed(AUTH_UNSUCCESSFUL),
    ),
    FaultSpec(
        "concurrent_connections",
        "auth",
        "other clients already hold the mailbox's 3 concurrent sessions",
        _fixed(CONCURRENT_CONNECTIONS),
    ),
    FaultSpec(
        "client_not_authenticated",
        "mail",
        "AUTH answers 235 but MAIL FROM says 530 5.7.57, as when SMTP AUTH is off",
        _fixed(NOT_AUTHENTICATED),
    ),
    FaultSpec(
        "ip_blocked",
        "mail",
        "Microsoft refuses traffic from the client's IP",
        _fixed(
            Reply(
                550,
                "5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.",
            )
        ),
    ),
    FaultSpec("server_busy", "mail", "throttling or IP greylisting (S77719)", server_busy),
    FaultSpec(
        "send_as_denied",
        "mail",
        "the mailbox may not send as its From address (no SendAs right)",
        _fixed(SEND_AS_DENIED),
        throttle=sender_throttled(252),
    ),
    FaultSpec(
        "sender_throttled",
        "mail",
        "continuous-error throttling after repeated SendAs errors (5.2.252)",
        _fixed(sender_throttled(252)),
    ),
    FaultSpec(
        "banned_sender",
        "mail",
        "the account is banned from sending for spam",
        _fixed(Reply(550, "5.1.8 Access denied, bad outbound sender.")),
    ),
    FaultSpec(
        "unregistered_domain",
        "mail",
        "the sending domain is not an accepted domain of the tenant",
        _fixed(
            Reply(
                550,
                "5.7.750 Service unavailable. Client blocked from sending from unregistered "
                "domains.",
            )
        ),
    ),
    FaultSpec(
        "temporary_error",
        "mail",
        "a transient server error",
        _fixed(Reply(451, "4.3.0 Temporary server error. Please try again later")),
    ),
    FaultSpec(
        "recipient_not_found",
        "rcpt",
        "the recipient does not exist (5.1.1)",
        _fixed(Reply(550, "5.1.1 RESOLVER.ADR.RecipNotFound; not found")),
    ),
    FaultSpec(
        "recipient_not_found_5_1_10",
        "rcpt",
        "the recipient does not exist (5.1.10)",
        _fixed(
            Reply(
                550,
                "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
            )
        ),
    ),
    FaultSpec(
        "tenant_recipient_limit",
        "rcpt",
        "the tenant's external recipients in a rolling 24 hours are spent",
        _fixed(
            Reply(
                550,
                "5.7.233 Your message can't be sent because your tenant exceeded its daily "
                "limit for sending email to external recipients (tenant external recipient "
                "rate limit)",
            )
        ),
    ),
    FaultSpec(
        "recipient_quota",
        "data",
        "the mailbox's 10,000 recipients in a rolling 24 hours are spent (by another client)",
        submission_quota_exceeded,
    ),
    FaultSpec(
        "mailbox_full",
        "data",
        "the sender's mailbox is over its storage quota (Sent Items)",
        lambda hostname: Reply(
            554,
            "5.2.2 mailbox full; STOREDRV.Submission.Exception:QuotaExceededException; Failed "
            "to process message due to a permanent exception with message [BeginDiagnosticData]"
            "Cannot save the message: the mailbox is full.[EndDiagnosticData] "
            f"[Hostname={hostname}]",
        ),
        throttle=sender_throttled(251),
    ),
    FaultSpec(
        "outbound_spam",
        "data",
        "the account is restricted for sending spam",
        lambda hostname: Reply(
            554,
            "5.2.0 STOREDRV.Submission.Exception:OutboundSpamException; WASCL UserAction verdict "
            "is not None. Actual verdict is RefuseQuota, ShowTierUpgrade.; Failed to process "
            "message due to a permanent exception with message [BeginDiagnosticData]"
            f"WASCL UserAction verdict is not None.[EndDiagnosticData] [Hostname={hostname}]",
        ),
    ),
    FaultSpec(
        "content_spam",
        "data",
        "the message's content is judged spam",
        _fixed(
            Reply(550, "5.7.520 Message blocked because it contains content identified as spam.")
        ),
    ),
    FaultSpec(
        "submission_rate",
        "data",
        "the mailbox submits faster than its message rate limit",
        _fixed(Reply(550, "5.2.2 Submission quota exceeded.")),
    ),
)

FAULTS: dict[str, FaultSpec] = {spec.name: spec for spec in _SPECS}
"""Every named fault, by name."""

DEFAULT_THROTTLE_AFTER = 3
"""Refusals before ``mailbox_full`` / ``send_as_denied`` turn into a 5.2.25x throttle.

Microsoft does not publish its threshold; a small one makes a repeating client show.
"""


def fault(
    name: str,
    *,
    hostname: str = DEFAULT_HOSTNAME,
    recipients: Iterable[str] | None = None,
    times: int | None = None,
    throttle_after: int | None = DEFAULT_THROTTLE_AFTER,
) -> Refusal:
    """A fresh :class:`Refusal` imitating the fault called ``name`` (see :data:`FAULTS`)."""
    try:
        spec = FAULTS[name]
    except KeyError:
        known = ", ".join(sorted(FAULTS))
        raise KeyError(f"unknown fault {name!r}; known faults: {known}") from None
    return Refusal(
        name,
        spec.stage,
        spec.reply(hostname),
        mechanisms=spec.mechanisms,
        recipients=recipients,
        times=times,
        throttle=spec.throttle,
        throttle_after=throttle_after if spec.throttle is not None else None,
    )


def closed_port(host: str = "127.0.0.1") -> int:
    """A loopback port nothing listens on (bound, then released), like port 465 at Microsoft.

    Another process could take it in between; on loopback in a test that is vanishingly rare.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port
