"""The sandbox's TLS: its own CA, trusted explicitly, and nothing older than TLS 1.2."""

from __future__ import annotations

import asyncio
import ssl
import warnings
from pathlib import Path

import aiosmtplib
import pytest
from cryptography import x509

from mailfleet.sandbox import Sandbox, create_tls_material

from .support import STEP_TIMEOUT, smtp_client


def loose_client_context(ca_file: Path, maximum: ssl.TLSVersion) -> ssl.SSLContext:
    """A verifying client that is *able* to speak TLS 1.0/1.1, so only the server can refuse."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # naming TLS 1.0/1.1 is deprecated
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = maximum
    # OpenSSL 3 forbids TLS < 1.2 at the default security level, on the client too.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def test_certificate_names_localhost_and_loopback(tmp_path: Path) -> None:
    material = create_tls_material(tmp_path, ("localhost", "127.0.0.1", "smtp.sandbox.test"))
    cert = x509.load_pem_x509_certificate(material.cert_file.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "smtp.sandbox.test"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert material.server_context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert material.ca_file.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert material.key_file.stat().st_mode & 0o077 == 0


async def test_starttls_verifies_against_the_sandbox_ca(client: aiosmtplib.SMTP) -> None:
    response = await client.starttls()
    assert (response.code, response.message) == (220, "2.0.0 SMTP server ready")
    assert client.get_transport_info("sslcontext").check_hostname


async def test_a_client_that_does_not_trust_the_ca_fails(smtp_sandbox: Sandbox) -> None:
    smtp = smtp_client(smtp_sandbox, tls_context=ssl.create_default_context())
    await smtp.connect()
    with pytest.raises((ssl.SSLCertVerificationError, aiosmtplib.SMTPException)):
        await asyncio.wait_for(smtp.starttls(), timeout=STEP_TIMEOUT)
    smtp.close()


async def test_tls_1_1_is_refused_by_the_sandbox(smtp_sandbox: Sandbox) -> None:
    context = loose_client_context(smtp_sandbox.ca_file, ssl.TLSVersion.TLSv1_1)
    smtp = smtp_client(smtp_sandbox, tls_context=context)
    await smtp.connect()
    with pytest.raises((ssl.SSLError, ConnectionError, aiosmtplib.SMTPException)):
        await asyncio.wait_for(smtp.starttls(), timeout=STEP_TIMEOUT)
    smtp.close()
    # The client only sees the connection drop; the server knows why it refused.
    [reason] = smtp_sandbox.smtp.tls_failures
    assert "UNSUPPORTED_PROTOCOL" in reason


async def test_the_same_client_succeeds_once_tls_1_2_is_allowed(smtp_sandbox: Sandbox) -> None:
    context = loose_client_context(smtp_sandbox.ca_file, ssl.TLSVersion.TLSv1_2)
    smtp = smtp_client(smtp_sandbox, tls_context=context)
    await smtp.connect()
    await smtp.starttls()
    ssl_object = smtp.get_transport_info("ssl_object")
    assert ssl_object.version() == "TLSv1.2"
    await smtp.quit()
