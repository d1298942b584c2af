"""The campaign file: a YAML (or TOML) description of a sequence, validated when saved.

Templates are compiled here, so an unknown variable or a broken template is
reported with the file, the step and the field before anything is stored —
never at send time.

A campaign file holds: ``name``; ``timezone`` and ``window`` (days, start, end)
or ``use_lead_timezone``; ``daily_cap``; which mailboxes send it
(``mailbox_tags`` and/or ``mailboxes``, a list of addresses: a mailbox with one
of the tags or in the list is selected; neither means every mailbox of the
workspace); ``stop`` rules; custom lead ``fields`` the templates use; and
``steps``. A step has ``delay_days`` (calendar, or ``business_days: true``) plus
``delay_hours`` and ``delay_minutes``,
``subject``, ``body``, optional ``html``, ``threaded`` (follow-ups stay in the
thread: ``Re:`` subject, ``In-Reply-To``), and optional A/B/n ``variants``, each
with a ``name``, a ``weight`` and any of ``subject``/``body``/``html`` (what a
variant leaves out comes from the step). A lead's variant is chosen
deterministically from its weights (:func:`choose_variant`), so a retry sends
the same variant.
"""

from __future__ import annotations

import hashlib
import re
import string
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

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

    days: list[int] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5],
        description="Weekdays it sends on: names (mon … sun) or ISO numbers (1 = Monday).",
    )
    start: str = Field(default="09:00", description="Local time sending opens, HH:MM.")
    end: str = Field(
        default="17:00",
        description="Local time sending closes, HH:MM (24:00: midnight); sends are paced "
        "evenly through the window, never bunched at its start.",
    )

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


class VariantSpec(BaseModel):
    """One A/B/n variant of a step: its weight and what it changes."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, min_length=1, max_length=64, description="Label (default A, B, C …)."
    )
    weight: float = Field(
        default=1.0, ge=0, description="Relative share of leads; 0 retires the variant."
    )
    subject: str | None = Field(default=None, description="Replaces the step's subject.")
    body: str | None = Field(default=None, description="Replaces the step's body.")
    html: str | None = Field(default=None, description="Replaces the step's HTML part.")


class StepSpec(BaseModel):
    """One message of the sequence."""

    model_config = ConfigDict(extra="forbid")

    delay_days: int = Field(
        default=0, ge=0, le=365, description="Days after the previous step went out."
    )
    delay_hours: int = Field(default=0, ge=0, le=24 * 365, description="Hours added to the delay.")
    delay_minutes: int = Field(
        default=0, ge=0, le=60 * 24 * 365, description="Minutes added to the delay."
    )
    business_days: bool = Field(
        default=False, description="Count delay_days as Monday–Friday in the campaign's zone."
    )
    subject: str = Field(
        default="",
        description="Template (Jinja2, spintax {a|b}); empty on a follow-up: 'Re: ' + the "
        "first subject.",
    )
    body: str | None = Field(default=None, description="Plain-text template (required).")
    html: str | None = Field(default=None, description="Optional HTML alternative.")
    threaded: bool = Field(
        default=True,
        description="Follow-ups reply in the thread (In-Reply-To, References, 'Re:').",
    )
    variants: list[VariantSpec] = Field(
        default_factory=list, max_length=26, description="A/B/n variants of this step."
    )

    @model_validator(mode="after")
    def _variants(self) -> StepSpec:
        if not self.variants:
            if self.body is None:
                raise ValueError("a step needs a body")
            return self
        names: set[str] = set()
        for index, variant in enumerate(self.variants):
            if variant.name is None:
                variant.name = string.ascii_uppercase[index]
            if variant.name in names:
                raise ValueError(f"two variants are called {variant.name!r}")
            names.add(variant.name)
            if variant.body is None and self.body is None:
                raise ValueError(f"variant {variant.name} has no body and the step has none")
        if not any(v.weight > 0 for v in self.variants):
            raise ValueError("at least one variant needs a weight above 0")
        return self

    @property
    def delay_total_minutes(self) -> int:
        """The hours and minutes of the delay, as minutes (added after ``delay_days``)."""
        return self.delay_hours * 60 + self.delay_minutes

    def resolved_variants(self) -> list[ResolvedVariant]:
        """Each variant with what it leaves out taken from the step (none: no variants)."""
        return [
            ResolvedVariant(
                name=v.name or string.ascii_uppercase[i],
                weight=v.weight,
                subject=self.subject if v.subject is None else v.subject,
                body=v.body if v.body is not None else self.body or "",
                html=self.html if v.html is None else v.html,
            )
            for i, v in enumerate(self.variants)
        ]


class ResolvedVariant(BaseModel):
    """A variant with every field filled in: what the store keeps."""

    name: str
    weight: float
    subject: str
    body: str
    html: str | None = None


class StopRules(BaseModel):
    """What ends a lead's sequence in this campaign besides what always does.

    A reply, a hard bounce, a complaint and an unsubscribe always end it (DESIGN.md,
    invariant 4). ``on_auto_reply`` also stops on out-of-office and other automatic
    answers; ``on_company_reply`` stops every lead of the replier's company (same
    email domain; free-mail domains are no company); ``on_bounce: any`` stops on
    soft bounces too.
    """

    model_config = ConfigDict(extra="forbid")

    on_reply: bool = Field(default=True, description="Always true: a reply ends it.")
    on_auto_reply: bool = Field(
        default=False,
        description="Stop on out-of-office answers (default: pause until the return date).",
    )
    on_company_reply: bool = Field(
        default=False, description="A reply also stops the replier's colleagues (same domain)."
    )
    on_bounce: Literal["hard", "any"] = Field(
        default="hard", description="'any' stops on soft bounces too."
    )

    @field_validator("on_reply")
    @classmethod
    def _reply_always_stops(cls, value: bool) -> bool:
        if not value:
            raise ValueError("a reply always ends the lead's sequence; on_reply cannot be false")
        return value

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> StopRules:
        """The rules stored in a campaign's ``settings`` (defaults when absent)."""
        return cls.model_validate((settings or {}).get("stop") or {})


class CampaignSpec(BaseModel):
    """A whole campaign definition."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=200, description="Unique in the workspace; names it in the CLI."
    )
    timezone: str = Field(default="UTC", description="IANA zone of the sending window.")
    window: WindowSpec = Field(default_factory=WindowSpec, description="When it may send.")
    use_lead_timezone: bool = Field(
        default=False, description="Apply the window in each lead's own timezone column."
    )
    daily_cap: int | None = Field(
        default=None, ge=1, description="Most cold sends a day for the whole campaign."
    )
    mailbox_tags: list[str] = Field(
        default_factory=list, description="Send from the workspace's mailboxes with a tag."
    )
    mailboxes: list[str] = Field(
        default_factory=list,
        description="Send from these addresses (with tags: either selects; neither: every "
        "mailbox of the workspace).",
    )
    stop: StopRules = Field(
        default_factory=StopRules, description="What ends a lead's sequence besides a reply."
    )
    fields: list[str] = Field(
        default_factory=list, description="Custom lead CSV columns the templates use."
    )
    steps: list[StepSpec] = Field(
        min_length=1, max_length=20, description="The sequence, first message first."
    )

    @field_validator("mailboxes")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for address in value:
            cleaned = address.strip().lower()
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", cleaned):
                raise ValueError(f"{address!r} is not a mailbox address")
            if cleaned not in out:
                out.append(cleaned)
        return out

    @model_validator(mode="after")
    def _check(self) -> CampaignSpec:
        SendingWindow(
            timezone=self.timezone,
            days=frozenset(self.window.days),
            start_minute=WindowSpec.minutes(self.window.start),
            end_minute=WindowSpec.minutes(self.window.end),
        )
        first = self.steps[0]
        if not first.subject.strip() and not first.variants:
            raise ValueError("step 1 needs a subject")
        for variant in first.resolved_variants():
            if not variant.subject.strip():
                raise ValueError(f"step 1 variant {variant.name} needs a subject")
        for number, step in enumerate(self.steps[1:], start=2):
            if step.threaded:
                continue
            if not step.subject.strip() and not step.variants:
                raise ValueError(f"step {number} is not threaded, so it needs its own subject")
            for variant in step.resolved_variants():
                if not variant.subject.strip():
                    raise ValueError(
                        f"step {number} is not threaded, so variant {variant.name} needs a subject"
                    )
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
            where = f"step {number}"
            if step.subject:
                compile_template(step.subject, field=f"{where} subject", allowed=allowed)
            if step.body is not None:
                compile_template(step.body, field=f"{where} body", allowed=allowed)
            if step.html is not None:
                compile_template(step.html, field=f"{where} html", allowed=allowed, html=True)
            for index, variant in enumerate(step.variants):
                label = f"{where} variant {variant.name or string.ascii_uppercase[index]}"
                if variant.subject:
                    compile_template(variant.subject, field=f"{label} subject", allowed=allowed)
                if variant.body is not None:
                    compile_template(variant.body, field=f"{label} body", allowed=allowed)
                if variant.html is not None:
                    compile_template(
                        variant.html, field=f"{label} html", allowed=allowed, html=True
                    )


def choose_variant(weights: Sequence[float], seed: str) -> int:
    """The index of the variant a lead gets: drawn by weight, fixed by ``seed``.

    The seed names the campaign, lead and step, so the same lead always gets the same
    variant of a step (a retry renders what the first attempt would have), while leads
    spread over variants in proportion to their weights.
    """
    total = sum(w for w in weights if w > 0)
    if total <= 0:
        raise ValueError("at least one variant needs a weight above 0")
    digest = hashlib.blake2b(f"variant|{seed}".encode(), digest_size=8).digest()
    point = int.from_bytes(digest, "big") / 2**64 * total
    for index, weight in enumerate(weights):
        if weight <= 0:
            continue
        if point < weight:
            return index
        point -= weight
    return max(i for i, w in enumerate(weights) if w > 0)  # float rounding at the very end


def selects_mailbox(
    tags: Iterable[str], addresses: Iterable[str], mailbox_address: str, mailbox_tags: Iterable[str]
) -> bool:
    """Whether a campaign selecting ``tags`` and ``addresses`` may send from this mailbox.

    A mailbox is selected when it carries one of the tags or is listed; a campaign that
    names neither uses every mailbox of its workspace.
    """
    wanted_tags, wanted = set(tags), {a.lower() for a in addresses}
    if not wanted_tags and not wanted:
        return True
    return mailbox_address.lower() in wanted or bool(wanted_tags & set(mailbox_tags))


def _format_validation(source: str, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        parts: list[str] = []
        loc = error["loc"]
        for i, p in enumerate(loc):
            before = loc[i - 1] if i else None
            if isinstance(p, int) and before in ("steps", "variants"):
                parts[-1] = f"{'step' if before == 'steps' else 'variant'} {p + 1}"
            else:
                parts.append(str(p))
        where = ".".join(parts).replace(".variant ", " variant ")
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            if allowed:
                message += f" (allowed here: {', '.join(allowed)})"
        lines.append(f"{source}: {where or 'campaign'}: {message}")
    return "\n".join(lines)


def _allowed_keys(loc: Sequence[int | str]) -> list[str]:
    """The keys the model at ``loc`` (a path into :class:`CampaignSpec`) accepts."""
    model: Any = CampaignSpec
    for part in loc:
        if isinstance(part, int):
            continue  # an index into a list: the list's item model comes next
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = args[0] if args and getattr(annotation, "__origin__", None) is list else annotation
    fields = getattr(model, "model_fields", None)
    return sorted(fields) if fields else []


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
