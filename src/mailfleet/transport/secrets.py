"""Secrets at rest: Fernet encryption with a key from the environment or a 0600 key file.

A :class:`SecretBox` holds one or more keys (MultiFernet): the first encrypts,
all decrypt, so keys can be rotated without downtime. A box made from a key file
re-reads it when it changes, so ``mailfleet keys rotate`` reaches running processes.
Values are JSON objects (a password, a client secret, a token cache) and never
appear in ``repr``.
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

    def __init__(self, keys: list[bytes], *, key_file: Path | None = None) -> None:
        self._key_file = key_file
        self._stamp: int | None = None
        self._load(keys)

    def _load(self, keys: list[bytes]) -> None:
        if not keys:
            raise SecretError("no encryption key")
        try:
            fernets = [Fernet(k) for k in keys]
            self._fernet = MultiFernet(fernets)
            self._newest = fernets[0]
            self._primary = base64.urlsafe_b64decode(keys[0])
            self._keys = list(keys)
        except (ValueError, TypeError) as exc:
            raise SecretError("an encryption key is not a valid Fernet key") from exc
        self.key_count = len(keys)

    def __repr__(self) -> str:
        return "SecretBox(<keys hidden>)"

    def _follow_key_file(self) -> None:
        """Re-read the key file when it changed: `mailfleet keys rotate` needs no restart."""
        if self._key_file is None:
            return
        try:
            stamp = self._key_file.stat().st_mtime_ns
        except OSError:
            return
        if self._stamp is None:
            self._stamp = stamp
        elif stamp != self._stamp:
            self._stamp = stamp
            keys = read_key_file(self._key_file)
            if keys:
                self._load(keys)

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
            keys = read_key_file(path)
            stamp = path.stat().st_mtime_ns
        except OSError as exc:
            raise SecretError(f"cannot read or create key file {path}: {exc.strerror}") from exc
        box = cls(keys, key_file=path)
        box._stamp = stamp
        return box

    def derive(self, label: str) -> bytes:
        """A stable key for another purpose (signing links), derived from the newest key."""
        self._follow_key_file()
        return hmac.new(self._primary, label.encode(), hashlib.sha256).digest()

    def derive_all(self, label: str) -> list[bytes]:
        """:meth:`derive` for every key, newest first: verify with these after a rotation."""
        self._follow_key_file()
        return [
            hmac.new(base64.urlsafe_b64decode(k), label.encode(), hashlib.sha256).digest()
            for k in self._keys
        ]

    def seal(self, value: dict[str, Any]) -> bytes:
        """Encrypt a JSON-able mapping with the newest key."""
        self._follow_key_file()
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode())

    def rotate(self, blob: bytes) -> bytes:
        """Re-encrypt ``blob`` with the newest key (it may be sealed with any known key)."""
        self._follow_key_file()
        try:
            return self._fernet.rotate(blob)
        except InvalidToken as exc:
            raise SecretError("secret does not decrypt with the configured keys") from exc

    def sealed_with_newest(self, blob: bytes) -> bool:
        """Whether ``blob`` opens with the newest key alone (it no longer needs older ones)."""
        try:
            self._newest.decrypt(blob)
        except InvalidToken:
            return False
        return True

    def open(self, blob: bytes) -> dict[str, Any]:
        """Decrypt what :meth:`seal` produced."""
        self._follow_key_file()
        try:
            data = json.loads(self._fernet.decrypt(blob))
        except InvalidToken as exc:
            raise SecretError("secret does not decrypt with the configured keys") from exc
        if not isinstance(data, dict):
            raise SecretError("secret is not a JSON object")
        return data


def read_key_file(path: Path) -> list[bytes]:
    """The keys of a key file, newest first (one a line; blank lines ignored)."""
    return [line.strip() for line in path.read_bytes().split() if line.strip()]


def write_key_file(path: Path, keys: list[bytes]) -> None:
    """Replace the key file atomically, mode 0600, newest key first."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(b"".join(k + b"\n" for k in keys))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def new_key() -> bytes:
    """A fresh Fernet key."""
    return Fernet.generate_key()
