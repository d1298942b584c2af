"""The golden corpus: every ``tests/corpus/NAME.eml`` classified as ``NAME.json`` says.

An expectation file holds the keys of the CLI's JSON record it pins down
(``kind``, ``recipients``, ``original_message_id``, ``return_date``, ``text``),
optionally ``text_contains`` / ``text_excludes`` lists, and ``fields``: other
attributes of the :class:`~mailfleet.inbound.Classification` (dotted paths such
as ``complaint.feedback_type``). ``description`` and ``mta`` document the case.
Adding a case is adding two files.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mailfleet.cli.inbound import json_record
from mailfleet.inbound import Classification, classify

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
CASES = sorted(CORPUS.glob("*.eml"))
# Classifying happens "now" only where a message has no Date to anchor a return date.
NOW = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)
RECORD_KEYS = ("kind", "recipients", "original_message_id", "return_date", "text")
DOC_KEYS = ("description", "mta", "text_contains", "text_excludes", "fields")


def ours(message_id: str) -> bool:
    """Our sends' Message-IDs: the corpus sends from brand-mail.com and its subdomains."""
    return message_id.endswith(("@brand-mail.com>", ".brand-mail.com>"))


def _attribute(result: Classification, path: str) -> Any:
    value: Any = result
    for name in path.split("."):
        value = getattr(value, name)
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value
    return value


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 60
    orphans = {p.stem for p in CORPUS.glob("*.json")} ^ {p.stem for p in CASES}
    assert not orphans, f"cases without their pair: {sorted(orphans)}"


@pytest.mark.parametrize("eml", CASES, ids=lambda p: p.stem)
def test_corpus_case(eml: Path) -> None:
    expected = json.loads(eml.with_suffix(".json").read_text(encoding="utf-8"))
    unknown = set(expected) - set(RECORD_KEYS) - set(DOC_KEYS)
    assert not unknown, f"unknown keys in {eml.stem}.json: {sorted(unknown)}"
    result = classify(eml.read_bytes(), our_message_ids=ours, now=NOW)
    record = json_record(eml.name, result)
    got = {key: record[key] for key in RECORD_KEYS if key in expected}
    want = {key: expected[key] for key in RECORD_KEYS if key in expected}
    assert got == want, f"signals: {result.signals}"
    for needle in expected.get("text_contains", []):
        assert needle in result.text
    for needle in expected.get("text_excludes", []):
        assert needle not in result.text
    for path, value in expected.get("fields", {}).items():
        assert _attribute(result, path) == value, path
