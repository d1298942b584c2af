"""The campaign file: a YAML (or TOML) description of a sequence, validated when saved.

Templates are compiled here, so an unknown variable or a broken template is
reported with the file, the step and the field before anything is stored —
never at send time.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mailfleet.content import LEAD_VARIABLES, SENDER_VARIABLES, TemplateError, compile_template
from mailfleet.planner import SendingWindow

# The engine also fills in the sender's first name, for signatures.
SENDER_EXTRA = frozenset({"sender_first_name"})
DAY_NAMES = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}


class CampaignFileError(Exception):
    """A campaign file or definition is invalid; the message names where and why."""


class WindowSpec(BaseModel):
    """When the campaign may send."""

    model_config = ConfigDict(extra="forbid")

    days: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    start: str = "09:00"
    end: str = "17:00"

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        if isinstance(value, list):
            out: list[Any] = []
            for item in value:
                if isinstance(item, str) and item[:3].lower() in DAY_NAMES:
                    out.append(DAY_NAMES[item[:3].lower()])
                else:
                    out.append(item)
            return out
        return value

    @field_validator("start", "end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d|24:00", value):
            raise ValueError(f"{value!r} is not a time like 09:00")
        return value

    @staticmethod
    def minutes(value: str) -> int:
        """Minutes after midnight of an HH:MM string."""
        hours, minutes = value.split(":")
        return int(hours) * 60 + int(minutes)


class StepSpec(BaseModel):
    """One message of the sequence."""

    model_config = ConfigDict(extra="forbid")

    delay_days: int = Field(default=0, ge=0, le=365)
    business_days: bool = False
    subject: str = ""
    body: str
    html: str | None = None
    threaded: bool = True


class CampaignSpec(BaseModel):
    """A whole campaign definition."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    timezone: str = "UTC"
    window: WindowSpec = Field(default_factory=WindowSpec)
    use_lead_timezone: bool = False
    daily_cap: int | None = Field(default=None, ge=1)
    mailbox_tags: list[str] = Field(default_factory=list)
    fields: list[str] = Field(default_factory=list)  # custom lead fields templates may use
    steps: list[StepSpec] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _check(self) -> CampaignSpec:
        SendingWindow(
            timezone=self.timezone,
            days=frozenset(self.window.days),
            start_minute=WindowSpec.minutes(self.window.start),
            end_minute=WindowSpec.minutes(self.window.end),
        )
        if not self.steps[0].subject.strip():
            raise ValueError("step 1 needs a subject")
        for number, step in enumerate(self.steps[1:], start=2):
            if not step.threaded and not step.subject.strip():
                raise ValueError(f"step {number} is not threaded, so it needs its own subject")
        return self

    def sending_window(self) -> SendingWindow:
        """The window as the planner's value object."""
        return SendingWindow(
            timezone=self.timezone,
            days=frozenset(self.window.days),
            start_minute=WindowSpec.minutes(self.window.start),
            end_minute=WindowSpec.minutes(self.window.end),
        )

    def allowed_variables(self, extra: set[str] | frozenset[str] = frozenset()) -> set[str]:
        """Every variable a template of this campaign may use."""
        return set(LEAD_VARIABLES | SENDER_VARIABLES | SENDER_EXTRA) | set(self.fields) | set(extra)

    def check_templates(self, extra_fields: set[str] | frozenset[str] = frozenset()) -> None:
        """Compile every template; raise :class:`TemplateError` naming the step and field."""
        allowed = self.allowed_variables(extra_fields)
        for number, step in enumerate(self.steps, start=1):
            if step.subject:
                compile_template(step.subject, field=f"step {number} subject", allowed=allowed)
            compile_template(step.body, field=f"step {number} body", allowed=allowed)
            if step.html is not None:
                compile_template(step.html, field=f"step {number} html", allowed=allowed, html=True)


def _format_validation(source: str, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(
            f"step {int(p) + 1}"
            if isinstance(p, int) and i and error["loc"][i - 1] == "steps"
            else str(p)
            for i, p in enumerate(error["loc"])
        )
        lines.append(f"{source}: {where or 'campaign'}: {error['msg']}")
    return "\n".join(lines)


def parse_campaign(
    data: Any, *, source: str = "campaign", extra_fields: set[str] | frozenset[str] = frozenset()
) -> CampaignSpec:
    """Validate a campaign mapping and its templates, or raise :class:`CampaignFileError`."""
    if not isinstance(data, dict):
        raise CampaignFileError(f"{source}: expected a mapping of campaign settings")
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as exc:
        raise CampaignFileError(_format_validation(source, exc)) from None
    try:
        spec.check_templates(extra_fields)
    except TemplateError as exc:
        raise CampaignFileError(f"{source}: {exc}") from None
    return spec


def load_campaign(
    path: Path, *, extra_fields: set[str] | frozenset[str] = frozenset()
) -> CampaignSpec:
    """Read a campaign file (``.yaml``/``.yml`` or ``.toml``) and validate it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CampaignFileError(f"{path}: cannot read campaign file: {exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise CampaignFileError(
            f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}"
        ) from None
    return parse_campaign(data, source=str(path), extra_fields=extra_fields)
