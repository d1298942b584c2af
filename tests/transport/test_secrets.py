import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from mailfleet.transport.secrets import SecretBox, SecretError


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    key_file = tmp_path / "home" / "secret.key"
    box = SecretBox.from_key_file(key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    blob = box.seal({"client_secret": "hunter2"})
    assert b"hunter2" not in blob
    assert SecretBox.from_key_file(key_file).open(blob) == {"client_secret": "hunter2"}
    assert "hunter2" not in repr(box) and "key" in repr(box).lower()


def test_environment_keys_rotate_newest_first(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    blob = SecretBox.from_key_file(tmp_path / "unused", old).seal({"password": "p"})
    rotated = SecretBox.from_key_file(tmp_path / "unused", f"{new},{old}")
    assert rotated.open(blob) == {"password": "p"}
    assert not (tmp_path / "unused").exists()
    with pytest.raises(SecretError, match="does not decrypt"):
        SecretBox.from_key_file(tmp_path / "unused", new).open(blob)


def test_bad_keys_and_derived_keys(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="not a valid Fernet key"):
        SecretBox([b"short"])
    box = SecretBox.from_key_file(tmp_path / "k")
    assert box.derive("links") == box.derive("links") != box.derive("other")
