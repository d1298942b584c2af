"""A full demo run leaves no secret in its logs or its output."""

import base64
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailfleet.cli.main import app
from mailfleet.transport.secrets import SecretBox, read_key_file

runner = CliRunner()


def test_demo_logs_hold_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("MAILFLEET_HOME", str(home))
    monkeypatch.setenv("MAILFLEET_LOG_LEVEL", "DEBUG")
    monkeypatch.delenv("MAILFLEET_DATABASE_URL", raising=False)
    monkeypatch.delenv("MAILFLEET_SECRET_KEY", raising=False)
    result = runner.invoke(app, ["demo", "--days", "1", "--lead-count", "20"])
    assert result.exit_code == 0, result.output
    box = SecretBox.from_key_file(home / "secret.key")
    with sqlite3.connect(home / "mailfleet.db") as conn:
        blobs = [row[0] for row in conn.execute("SELECT secret FROM mailbox")]
        sent = conn.execute("SELECT count(*) FROM send WHERE status = 'sent'").fetchone()[0]
    assert blobs and sent > 0
    secrets = {str(v) for blob in blobs for v in box.open(blob).values()}
    secrets |= {k.decode() for k in read_key_file(home / "secret.key")}
    assert all(len(s) >= 16 for s in secrets)
    logs = "\n".join(p.read_text(encoding="utf-8") for p in (home / "logs").glob("*.log*"))
    assert logs.strip(), "the demo wrote no log"
    for text in (logs, result.output):
        for secret in secrets:
            assert secret not in text
            assert base64.b64encode(secret.encode()).decode()[:16] not in text
        # Access tokens are JWT-shaped ('{"' encodes to eyJ); XOAUTH2 starts 'user='.
        assert "eyJ" not in text and "Bearer " not in text
        assert base64.b64encode(b"user=").decode()[:6] not in text
