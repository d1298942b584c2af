"""Transport failures (exceptions, not replies) as :class:`Outcome`\\ s, on the same tree.

An exception that carries a server reply (aiosmtplib's ``SMTPResponseException``
with ``code`` and ``message``, or smtplib's with ``smtp_code`` and ``smtp_error``)
is classified as that reply. Otherwise: TLS handshake failures are FIX_CONFIG;
DNS failures, refused connections and timeouts are RETRY; and a connection that
breaks or times out during DATA is UNKNOWN, because the server may already have
accepted the message — reconcile it, never resend it blindly.
"""

from __future__ import annotations

import socket
import ssl

from mailfleet.providers.outcomes import Outcome, OutcomeKind, Stage
from mailfleet.providers.replies import classify_reply

_DOCTOR = "run `mailfleet doctor <mailbox>`"
_RECONCILE = (
    "Automatic: do not resend; reconcile first (look the Message-ID up in Sent Items over "
    "IMAP) and resend only if it is not there."
)
_HANDSHAKE = frozenset({Stage.CONNECT, Stage.STARTTLS, Stage.TLS})
# OpenSSL reasons that mean the two sides could not agree on a TLS version.
_VERSION_REASONS = frozenset(
    {
        "UNSUPPORTED_PROTOCOL",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "NO_PROTOCOLS_AVAILABLE",
        "WRONG_SSL_VERSION",
        "VERSION_TOO_LOW",
    }
)


def classify_exception(
    exc: BaseException,
    stage: Stage,
    *,
    provider: str = "microsoft365",
    mailbox: str | None = None,
) -> Outcome:
    """Classify an exception raised while talking to a server at ``stage``; never raises."""
    reply = _reply_of(exc)
    if reply is not None:
        code, text = reply
        return classify_reply(code, text, stage=stage, provider=provider, mailbox=mailbox)
    fault = _Fault(exc, stage, provider, mailbox)
    if stage is Stage.QUIT:
        return fault.outcome(
            OutcomeKind.ACCEPTED,
            "net.quit",
            "The connection closed around QUIT; earlier sends stand.",
            "",
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _certificate_failure(fault, exc)
    if stage is Stage.DATA and isinstance(exc, OSError | EOFError):
        # TimeoutError, ConnectionError and SSL errors are all OSErrors here.
        return fault.outcome(
            OutcomeKind.UNKNOWN,
            "net.lost_during_data",
            f"The connection broke during DATA ({fault.name}): the message may have been accepted.",
            _RECONCILE,
        )
    if isinstance(exc, ssl.SSLError) and stage in _HANDSHAKE and not _is_eof(exc):
        return _tls_failure(fault, exc)
    if _is_not_supported(exc):
        return fault.outcome(
            OutcomeKind.FIX_CONFIG,
            "smtp.not_supported",
            f"The server does not offer what we asked for at {stage.value.upper()} "
            f"({_describe(exc)}).",
            "Check smtp_security and auth kind against what the server advertises in EHLO "
            "(Microsoft 365 offers AUTH only after STARTTLS); " + _DOCTOR + ".",
        )
    if isinstance(exc, socket.gaierror):
        return fault.outcome(
            OutcomeKind.RETRY,
            "net.dns_failure",
            f"The server's host name could not be resolved ({_describe(exc)}).",
            "Automatic: retry with backoff; if it persists, check smtp_host and DNS; "
            + _DOCTOR
            + ".",
        )
    if isinstance(exc, ConnectionRefusedError):
        return fault.outcome(
            OutcomeKind.RETRY,
            "net.connection_refused",
            "The server refused the TCP connection (nothing listens on that port, or a "
            "firewall rejects it).",
            "Automatic: retry with backoff; if it persists, check smtp_host and smtp_port "
            "(Microsoft 365: smtp.office365.com:587); " + _DOCTOR + ".",
        )
    if isinstance(exc, TimeoutError):
        return fault.outcome(
            OutcomeKind.RETRY,
            "net.timeout",
            f"The server did not answer in time at {stage.value.upper()}.",
            "Automatic: retry with backoff; if it persists, check that outbound port "
            "587/465 is open from this machine; " + _DOCTOR + ".",
        )
    if isinstance(exc, OSError | EOFError):
        if stage in _HANDSHAKE and _is_eof(exc):
            # Ambiguous: a refused TLS version or a network blip. Explicit version and
            # certificate errors are FIX_CONFIG above; this one retries, and the engine's
            # repeated-failure policy escalates if it never clears.
            return fault.outcome(
                OutcomeKind.RETRY,
                "tls.handshake_closed",
                "The server closed the connection during the TLS handshake.",
                "Automatic: reconnect and retry; if it repeats, check TLS 1.2+ is available "
                "and the port matches the security mode (587 starttls, 465 tls).",
            )
        return fault.outcome(
            OutcomeKind.RETRY,
            "net.disconnected",
            f"The connection failed or was closed by the server ({fault.name}).",
            "Automatic: reconnect and retry with backoff.",
        )
    if stage is Stage.TOKEN:
        return fault.outcome(
            OutcomeKind.PAUSE_MAILBOX,
            "oauth.token_failed",
            f"No access token could be obtained ({_describe(exc)}).",
            "Reconnect the mailbox (`mailfleet mailbox connect <mailbox>`): the refresh token "
            "may be revoked or expired, or the app's consent withdrawn.",
            reconnect=False,
        )
    if stage is Stage.DATA:
        return fault.outcome(
            OutcomeKind.UNKNOWN,
            "net.unexpected_during_data",
            f"An unexpected error during DATA ({_describe(exc)}).",
            _RECONCILE,
        )
    return fault.outcome(
        OutcomeKind.RETRY,
        "net.unexpected",
        f"An unexpected error ({_describe(exc)}); this is probably a mailfleet bug.",
        "Automatic: reconnect and retry with backoff; report the error if it repeats.",
    )


class _Fault:
    """An exception and its context, so each branch builds an Outcome in one call."""

    __slots__ = ("exc", "mailbox", "provider", "stage")

    def __init__(
        self, exc: BaseException, stage: Stage, provider: str, mailbox: str | None
    ) -> None:
        self.exc = exc
        self.stage = stage
        self.provider = provider
        self.mailbox = mailbox

    @property
    def name(self) -> str:
        """The exception's class name, for explanations."""
        return type(self.exc).__name__

    def outcome(
        self,
        kind: OutcomeKind,
        rule: str,
        explanation: str,
        remedy: str,
        *,
        reconnect: bool = True,
    ) -> Outcome:
        """Build the Outcome; a transport failure leaves no usable connection behind."""
        if self.mailbox:
            remedy = remedy.replace("<mailbox>", self.mailbox)
        return Outcome(
            kind=kind,
            code=None,
            enhanced=None,
            text=_describe(self.exc),
            stage=self.stage,
            rule=rule,
            explanation=explanation,
            remedy=remedy,
            provider=self.provider,
            reconnect=reconnect and kind is not OutcomeKind.ACCEPTED,
        )


def _reply_of(exc: BaseException) -> tuple[int, str] | None:
    """The server reply an SMTP exception carries, if any (aiosmtplib or smtplib shape)."""
    recipients = getattr(exc, "recipients", None)
    # SMTPRecipientsRefused: the first refusal stands for the message (mailfleet sends
    # one recipient a message). aiosmtplib lists exceptions; smtplib maps address → pair.
    if isinstance(recipients, list | tuple) and recipients:
        first: object = recipients[0]
        return _valid(getattr(first, "code", None), getattr(first, "message", None))
    if isinstance(recipients, dict) and recipients:
        first = next(iter(recipients.values()))
        return _valid(*first) if isinstance(first, tuple) and len(first) == 2 else None
    reply = _valid(getattr(exc, "code", None), getattr(exc, "message", None))
    return reply or _valid(getattr(exc, "smtp_code", None), getattr(exc, "smtp_error", None))


def _valid(code: object, message: object) -> tuple[int, str] | None:
    if not isinstance(code, int) or isinstance(code, bool) or not 200 <= code <= 599:
        return None
    if isinstance(message, bytes):
        message = message.decode("utf-8", errors="replace")
    return code, message if isinstance(message, str) else ""


def _is_not_supported(exc: BaseException) -> bool:
    # aiosmtplib's SMTPNotSupported and smtplib's SMTPNotSupportedError, by name, so
    # this pure module does not import the transport's library.
    return any("NotSupported" in cls.__name__ for cls in type(exc).__mro__)


def _is_eof(exc: BaseException) -> bool:
    return isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | EOFError)


def _describe(exc: BaseException) -> str:
    try:
        detail = str(exc)
    except Exception:  # a broken __str__ must not break classification
        detail = ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _certificate_failure(fault: _Fault, exc: ssl.SSLCertVerificationError) -> Outcome:
    # Attributes OpenSSL sets; an SSLError built in Python lacks them.
    detail = getattr(exc, "verify_message", None) or _describe(exc)
    why = str(detail).lower()
    if "hostname" in why or "ip address mismatch" in why:
        remedy = (
            "Set smtp_host to the name on the server's certificate (smtp.office365.com, "
            "smtp.gmail.com), not an IP address or alias."
        )
    elif "expired" in why or "not yet valid" in why:
        remedy = (
            "The server's certificate is outside its validity dates: check this machine's "
            "clock, then ask the server's admin to renew it."
        )
    else:
        remedy = (
            "The certificate does not chain to a trusted CA: install the system CA bundle "
            "(ca-certificates), or set the mailbox's ca_file to the private CA (the "
            "sandbox's CA in tests). Verification is never switched off."
        )
    return fault.outcome(
        OutcomeKind.FIX_CONFIG,
        "tls.certificate",
        f"The server's TLS certificate failed verification ({detail}).",
        remedy,
    )


def _tls_failure(fault: _Fault, exc: ssl.SSLError) -> Outcome:
    reason = str(getattr(exc, "reason", None) or "").upper()
    if reason == "WRONG_VERSION_NUMBER" or "HTTP_REQUEST" in reason:
        return fault.outcome(
            OutcomeKind.FIX_CONFIG,
            "tls.wrong_mode",
            "The server did not answer with TLS: the port and the security mode disagree.",
            "Use 587 with security starttls, or 465 with tls (Microsoft 365 offers only "
            "587 with STARTTLS); " + _DOCTOR + ".",
        )
    if reason in _VERSION_REASONS or "VERSION" in reason:
        return fault.outcome(
            OutcomeKind.FIX_CONFIG,
            "tls.version",
            "Client and server share no TLS version; mailfleet requires TLS 1.2 or later.",
            "Update OpenSSL/Python, and do not connect through a proxy that offers only "
            "TLS 1.0 or 1.1.",
        )
    return fault.outcome(
        OutcomeKind.FIX_CONFIG,
        "tls.handshake",
        f"The TLS handshake failed ({reason or _describe(exc)}).",
        "Check smtp_port and smtp_security against the provider's preset and that TLS 1.2+ "
        "is available; " + _DOCTOR + ".",
    )
