"""``mailfleet inbound classify``: one JSON object per file and line, errors named, others kept."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mailfleet.cli.main import app

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
KEYS = ["file", "kind", "recipients", "original_message_id", "return_date", "text"]
runner = CliRunner()


def test_json_lines_have_the_stable_keys_in_order() -> None:
    files = [CORPUS / "gmail_user_unknown.eml", CORPUS / "exchange_online_ooo_de.eml"]
    result = runner.invoke(app, ["inbound", "classify", *map(str, files), "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [list(r) for r in records] == [KEYS, KEYS]
    bounce, ooo = records
    assert bounce["file"] == str(files[0])
    assert bounce["kind"] == "bounce"
    assert bounce["recipients"] == [
        {
            "address": "jordan.miles@gmail.com",
            "status": "5.1.1",
            "action": "failed",
            "hard": True,
            "reason": "user_unknown",
        }
    ]
    assert bounce["original_message_id"].endswith("@brand-mail.com>")
    assert ooo["kind"] == "auto_reply"
    assert ooo["return_date"] == "2025-03-14"
    assert ooo["recipients"] == []


def test_unreadable_file_is_named_and_the_others_still_classified(tmp_path: Path) -> None:
    missing = tmp_path / "missing.eml"
    folder = tmp_path / "a-folder.eml"
    folder.mkdir()
    good = CORPUS / "gmail_reply_en.eml"
    result = runner.invoke(
        app, ["inbound", "classify", str(missing), str(good), str(folder), "--json"]
    )
    assert result.exit_code == 1
    assert str(missing) in result.stderr and "cannot read" in result.stderr
    assert str(folder) in result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["kind"] == "reply"


def test_table_output(tmp_path: Path) -> None:
    result = runner.invoke(app, ["inbound", "classify", str(CORPUS / "postfix_two_recipients.eml")])
    assert result.exit_code == 0, result.output
    assert "bounce" in result.stdout
    assert "tom@acme.example" in result.stdout


def test_stdin_and_warmup_marker_option() -> None:
    raw = (CORPUS / "gmail_reply_en.eml").read_bytes() + b"\nref zzmark-77\n"
    result = runner.invoke(
        app, ["inbound", "classify", "-", "--json", "--warmup-marker", "zzmark-"], input=raw
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kind"] == "warmup"
    short = runner.invoke(app, ["inbound", "classify", "-", "--warmup-marker", "ab"], input=raw)
    assert short.exit_code == 2
