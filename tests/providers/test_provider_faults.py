"""Transport exceptions land on the same outcome tree as replies."""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl

import aiosmtplib
import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st

from mailfleet.providers import OutcomeKind, Stage, classify_exception

K = OutcomeKind


def _handshake(
    client: ssl.SSLContext, server: ssl.SSLContext, name: str, feed: bytes = b""
) -> None:
    """Run a TLS handshake between two contexts in memory; raise what the client raises."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    tls_client = client.wrap_bio(c_in, c_out, server_hostname=name)
    tls_server = server.wrap_bio(s_in, s_out, server_side=True)
    if feed:
        c_in.write(feed)  # the "server" speaks something other than TLS
    for _ in range(20):
        try:
            tls_client.do_handshake()
            return
        except ssl.SSLWantReadError:
            pass
        s_in.write(c_out.read())
        # The server's own failure (say, no shared version) shows up as the client's alert.
        with contextlib.suppress(ssl.SSLError):
            tls_server.do_handshake()
        c_in.write(s_out.read())
    raise AssertionError("handshake did not finish")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    return context


def _tls_error(action: object) -> ssl.SSLError:
    with pytest.raises(ssl.SSLError) as caught:
        action()  # type: ignore[operator]
    return caught.value


def test_an_untrusted_certificate_is_fix_config_naming_ca_file(
    server_context: ssl.SSLContext,
) -> None:
    error = _tls_error(
        lambda: _handshake(ssl.create_default_context(), server_context, "localhost")
    )
    outcome = classify_exception(error, Stage.TLS)
    assert (outcome.kind, outcome.rule) == (K.FIX_CONFIG, "tls.certificate")
    assert "ca_file" in outcome.remedy


def test_a_certificate_for_another_name_says_to_use_the_certificate_name(
    ca: trustme.CA, server_context: ssl.SSLContext
) -> None:
    client = ssl.create_default_context()
    ca.configure_trust(client)
    error = _tls_error(lambda: _handshake(client, server_context, "smtp.office365.com"))
    outcome = classify_exception(error, Stage.STARTTLS)
    assert outcome.rule == "tls.certificate"
    assert "smtp_host" in outcome.remedy


def test_no_common_tls_version_is_fix_config(ca: trustme.CA) -> None:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)
    server.minimum_version = ssl.TLSVersion.TLSv1_3
    client = ssl.create_default_context()
    ca.configure_trust(client)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    error = _tls_error(lambda: _handshake(client, server, "localhost"))
    outcome = classify_exception(error, Stage.TLS)
    assert (outcome.kind, outcome.rule) == (K.FIX_CONFIG, "tls.version")


def test_tls_to_a_plaintext_port_says_port_and_mode_disagree(
    server_context: ssl.SSLContext,
) -> None:
    banner = b"220 smtp.example.com ESMTP ready\r\n"
    error = _tls_error(
        lambda: _handshake(ssl.create_default_context(), server_context, "localhost", banner)
    )
    outcome = classify_exception(error, Stage.CONNECT)
    assert (outcome.kind, outcome.rule) == (K.FIX_CONFIG, "tls.wrong_mode")
    assert "587" in outcome.remedy


def test_a_python_built_certificate_error_without_openssl_attributes_is_handled() -> None:
    outcome = classify_exception(ssl.SSLCertVerificationError(1, "verify failed"), Stage.TLS)
    assert outcome.kind is K.FIX_CONFIG
    assert classify_exception(ssl.SSLError(1, "odd"), Stage.TLS).rule == "tls.handshake"


@pytest.mark.parametrize(
    ("exc", "stage", "kind", "rule"),
    [
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            Stage.CONNECT,
            K.RETRY,
            "net.dns_failure",
        ),
        (
            ConnectionRefusedError(111, "Connection refused"),
            Stage.CONNECT,
            K.RETRY,
            "net.connection_refused",
        ),
        (TimeoutError("timed out"), Stage.CONNECT, K.RETRY, "net.timeout"),
        (
            aiosmtplib.SMTPConnectTimeoutError("Timed out connecting"),
            Stage.CONNECT,
            K.RETRY,
            "net.timeout",
        ),
        (
            aiosmtplib.SMTPConnectError("Error connecting"),
            Stage.CONNECT,
            K.RETRY,
            "net.disconnected",
        ),
        (ConnectionResetError(104, "reset"), Stage.RCPT, K.RETRY, "net.disconnected"),
        (
            aiosmtplib.SMTPServerDisconnected("Server disconnected"),
            Stage.MAIL,
            K.RETRY,
            "net.disconnected",
        ),
        (
            ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
            Stage.TLS,
            K.RETRY,
            "tls.handshake_closed",
        ),
        (
            aiosmtplib.SMTPNotSupported("SMTP AUTH extension not supported by server."),
            Stage.AUTH,
            K.FIX_CONFIG,
            "smtp.not_supported",
        ),
        (
            smtplib.SMTPNotSupportedError("STARTTLS extension not supported"),
            Stage.STARTTLS,
            K.FIX_CONFIG,
            "smtp.not_supported",
        ),
        (
            ValueError("invalid_grant: AADSTS70000"),
            Stage.TOKEN,
            K.PAUSE_MAILBOX,
            "oauth.token_failed",
        ),
        (ValueError("a bug"), Stage.MAIL, K.RETRY, "net.unexpected"),
        (ConnectionResetError(104, "reset"), Stage.QUIT, K.ACCEPTED, "net.quit"),
    ],
)
def test_transport_faults(exc: BaseException, stage: Stage, kind: OutcomeKind, rule: str) -> None:
    outcome = classify_exception(exc, stage)
    assert (outcome.kind, outcome.rule) == (kind, rule)
    assert outcome.code is None
    assert type(exc).__name__ in outcome.text
    if kind is not K.ACCEPTED:
        assert outcome.remedy


@pytest.mark.parametrize(
    "exc",
    [
        aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"),
        aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response"),
        ConnectionResetError(104, "Connection reset by peer"),
        BrokenPipeError(32, "Broken pipe"),
        ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
        TimeoutError(),
        RuntimeError("unexpected"),
    ],
)
def test_a_connection_lost_during_data_is_unknown_never_resent(exc: BaseException) -> None:
    outcome = classify_exception(exc, Stage.DATA)
    assert outcome.kind is K.UNKNOWN
    assert not outcome.retriable
    assert "reconcile" in outcome.remedy.lower()


def test_an_smtp_exception_with_a_reply_is_classified_as_that_reply() -> None:
    error = aiosmtplib.SMTPAuthenticationError(
        535,
        "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
        "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.",
    )
    outcome = classify_exception(error, Stage.AUTH, mailbox="a@brand-mail.com")
    assert outcome.rule == "m365.auth_disabled_tenant"
    assert "a@brand-mail.com" in outcome.remedy


def test_a_data_error_with_a_reply_is_known_not_unknown() -> None:
    error = aiosmtplib.SMTPDataError(
        554, "5.2.0 STOREDRV.Submission.Exception:OutboundSpamException"
    )
    assert classify_exception(error, Stage.DATA).rule == "m365.outbound_spam"


def test_smtplib_shaped_errors_are_read_too() -> None:
    error = smtplib.SMTPAuthenticationError(535, b"5.7.3 Authentication unsuccessful")
    outcome = classify_exception(error, Stage.AUTH)
    assert (outcome.rule, outcome.refresh_token_first) == ("m365.auth_failed", True)
    refused = smtplib.SMTPRecipientsRefused({"x@example.org": (550, b"5.1.1 user unknown")})
    assert classify_exception(refused, Stage.RCPT).kind is K.DROP_RECIPIENT


def test_recipients_refused_uses_the_first_refusal() -> None:
    refused = aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(550, "5.1.10 Recipient not found", "x@example.org")]
    )
    assert classify_exception(refused, Stage.RCPT).kind is K.DROP_RECIPIENT


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


_EXCEPTIONS = st.sampled_from(
    [
        OSError(),
        EOFError(),
        ssl.SSLError(),
        ssl.SSLZeroReturnError(),
        KeyboardInterrupt(),
        _Unprintable(),
        aiosmtplib.SMTPResponseException(999, "x"),
        aiosmtplib.SMTPRecipientsRefused([]),
        smtplib.SMTPRecipientsRefused({"a": "not a pair"}),  # type: ignore[dict-item]
    ]
)


@given(exc=_EXCEPTIONS, stage=st.sampled_from(Stage), provider=st.sampled_from(["google", "x"]))
def test_classify_exception_never_raises(exc: BaseException, stage: Stage, provider: str) -> None:
    outcome = classify_exception(exc, stage, provider=provider)
    if outcome.kind is not K.ACCEPTED:
        assert outcome.remedy
        # Every connection-level failure leaves no usable session; a token failure has none yet.
        assert outcome.reconnect is (
            stage is not Stage.TOKEN or outcome.kind is not K.PAUSE_MAILBOX
        )
