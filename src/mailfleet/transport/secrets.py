"""Secrets at rest: Fernet encryption with a key from the environment or a 0600 key file.

A :class:`SecretBox` holds one or more keys (MultiFernet): the first encrypts,
all decrypt, so keys can be rotated without downtime. Values are JSON objects
(a password, a client secret, a token cache) and never appear in ``repr``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretError(Exception):
    """A secret could not be read: wrong key, corrupted value, or unreadable key file."""


class SecretBox:
    """Encrypts and decrypts small JSON secrets."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise SecretError("no encryption key")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
            self._primary = base64.urlsafe_b64decode(keys[0])
        except (ValueError, TypeError) as exc:
            raise SecretError("an encryption key is not a valid Fernet key") from exc

    def __repr__(self) -> str:
        return "SecretBox(<keys hidden>)"

    @classmethod
    def from_key_file(cls, path: Path, env_key: str | None = None) -> SecretBox:
        """Use ``env_key`` (comma-separated keys, newest first) or the key file, creating it."""
        if env_key:
            return cls([k.strip().encode() for k in env_key.split(",") if k.strip()])
        try:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(Fernet.generate_key() + b"\n")
            lines = path.read_bytes().split()
        except OSError as exc:
            raise SecretError(f"cannot read or create key file {path}: {exc.strerror}") from exc
        return cls([line for line in lines if line])

    def derive(self, label: str) -> bytes:
        """A stable key for another purpose (signing links), derived from the newest key."""
        return hmac.new(self._primary, label.encode(), hashlib.sha256).digest()

    def seal(self, value: dict[str, Any]) -> bytes:
        """Encrypt a JSON-able mapping."""
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode())

    def open(self, blob: bytes) -> dict[str, Any]:
        """Decrypt what :meth:`seal` produced."""
        try:
            data = json.loads(self._fernet.decrypt(blob))
        except InvalidToken as exc:
            raise SecretError("secret does not decrypt with the configured keys") from exc
        if not isinstance(data, dict):
            raise SecretError("secret is not a JSON object")
        return data
