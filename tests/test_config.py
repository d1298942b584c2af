from pathlib import Path

import pytest

from mailfleet.config import DataFolderError, Settings


def test_home_and_database_follow_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MAILFLEET_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("MAILFLEET_DATABASE_URL", raising=False)
    settings = Settings()
    assert settings.home == tmp_path / "data"
    assert (
        settings.resolved_database_url
        == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'mailfleet.db'}"
    )
    assert settings.resolved_key_file == tmp_path / "data" / "secret.key"
    monkeypatch.setenv("MAILFLEET_DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1/db")
    assert Settings().resolved_database_url == "postgresql+asyncpg://u@127.0.0.1/db"


def test_toml_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "mailfleet.toml"
    config.write_text('log_level = "DEBUG"\npublic_url = "https://mf.example.com"\n')
    monkeypatch.setenv("MAILFLEET_HOME", str(tmp_path))
    monkeypatch.delenv("MAILFLEET_CONFIG", raising=False)
    assert Settings().public_url == "https://mf.example.com"
    monkeypatch.setenv("MAILFLEET_LOG_LEVEL", "WARNING")
    assert Settings().log_level == "WARNING"


def test_unwritable_home_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MAILFLEET_HOME", str(blocker / "data"))
    with pytest.raises(DataFolderError, match=str(blocker / "data")):
        Settings().ensure_home()
