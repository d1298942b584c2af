"""Reading credentials for the mailbox commands: environment variables, key and cert files.

Secrets come from environment variables or files, never from the command line
(where ``ps`` and shell history would keep them), and are only ever sealed.
Every error names the variable or file and the cause, never the secret.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from mailfleet.transport.google_tokens import validate_service_account


class CredentialInputError(ValueError):
    """A secret could not be read from where the command line pointed."""


def from_env(variable: str, what: str) -> str:
    """The value of ``variable``; :class:`CredentialInputError` when unset or empty."""
    value = os.environ.get(variable)
    if not value:
        raise CredentialInputError(
            f"environment variable {variable} is not set; it must hold the {what}"
        )
    return value


def certificate_secret(path: Path) -> dict[str, Any]:
    """``{"private_key", "thumbprint", "public_certificate"}`` from one PEM file with both."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CredentialInputError(f"--certificate {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise CredentialInputError(
            f"--certificate {path}: no unencrypted PEM private key in the file (it must hold "
            "the private key and the certificate uploaded to the app registration)"
        ) from None
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise CredentialInputError(
            f"--certificate {path}: no PEM certificate in the file"
        ) from None
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "private_key": key_pem,
        "thumbprint": cert.fingerprint(hashes.SHA1()).hex(),
        "public_certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
    }


def service_account_secret(path: Path) -> dict[str, Any]:
    """The service-account key JSON from ``path``, checked for its shape."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CredentialInputError(f"--service-account {path}: {exc.strerror}") from None
    except ValueError:
        raise CredentialInputError(f"--service-account {path}: not a JSON file") from None
    try:
        return validate_service_account(info)
    except ValueError as exc:
        raise CredentialInputError(f"--service-account {path}: {exc}") from None
