"""The campaign file reference is generated from the models, and the committed copy is current."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mailfleet.campaign_reference import reference_markdown
from mailfleet.campaigns import CampaignFileError, CampaignSpec, parse_campaign
from mailfleet.clock import utc
from mailfleet.planner import add_delay

DOC = Path(__file__).resolve().parents[1] / "docs" / "campaign-reference.md"


def test_the_committed_reference_is_what_the_models_generate() -> None:
    assert DOC.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/campaign-reference.md is stale: "
        "run `mailfleet campaign schema --markdown > docs/campaign-reference.md`"
    )


def test_every_key_of_every_model_is_documented() -> None:
    text = reference_markdown()
    for name, info in CampaignSpec.model_fields.items():
        assert f"| `{name}` |" in text and info.description


def test_an_unknown_key_lists_the_allowed_ones() -> None:
    data = {"name": "X", "steps": [{"body": "b", "subject": "s"}, {"delay_hourz": 4, "body": "c"}]}
    with pytest.raises(CampaignFileError) as caught:
        parse_campaign(data, source="x.yaml")
    assert "x.yaml: step 2.delay_hourz" in str(caught.value)
    assert "delay_days, delay_hours, delay_minutes" in str(caught.value)


def test_delays_take_hours_and_minutes_after_the_days() -> None:
    spec = parse_campaign(
        {
            "name": "X",
            "steps": [
                {"subject": "s", "body": "b"},
                {"delay_hours": 4, "delay_minutes": 30, "body": "c"},
            ],
        }
    )
    assert spec.steps[1].delay_total_minutes == 270
    friday = utc(2026, 3, 6, 15)
    assert add_delay(friday, 0, business_days=False, tz="UTC", minutes=270) == friday + timedelta(
        hours=4, minutes=30
    )
    # One business day from Friday is Monday, then the hours.
    assert add_delay(friday, 1, business_days=True, tz="UTC", minutes=60) == utc(2026, 3, 9, 16)
