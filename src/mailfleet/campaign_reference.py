"""The campaign file reference: every key with its type, default and meaning, and the
defaults that decide when mail goes out — generated from the models and policies, so it
cannot drift from them (``docs/campaign-reference.md``, ``mailfleet campaign schema``)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from pydantic import BaseModel

from mailfleet.campaigns import CampaignSpec, StepSpec, StopRules, VariantSpec, WindowSpec
from mailfleet.limits.admission import DEFAULT_WARMUP_RATIO, MailboxPolicy, RampPolicy
from mailfleet.warmup.plan import RampSettings

REFERENCE_MODELS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("Campaign", CampaignSpec),
    ("window", WindowSpec),
    ("stop", StopRules),
    ("steps[]", StepSpec),
    ("steps[].variants[]", VariantSpec),
)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping (below)"
    args = getattr(annotation, "__args__", ())
    if getattr(annotation, "__origin__", None) is list and args:
        item = args[0]
        if isinstance(item, type) and issubclass(item, BaseModel):
            return "list of mappings (below)"
        return f"list of {getattr(item, '__name__', item)}"
    if args:
        return " or ".join(
            "none" if a is type(None) else repr(a) if isinstance(a, str) else a.__name__
            for a in args
        )
    return str(getattr(annotation, "__name__", annotation))


def reference_markdown() -> str:
    """The campaign file reference (``docs/campaign-reference.md``), from the models."""
    out = [
        "# Campaign file reference",
        "",
        "Generated from `mailfleet.campaigns` (`mailfleet campaign schema --markdown`); "
        "`mailfleet campaign schema` prints the same as JSON Schema for editors.",
    ]
    for heading, model in REFERENCE_MODELS:
        out += ["", f"## {heading}", "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for name, info in model.model_fields.items():
            nested = isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
            if info.is_required():
                default = "required"
            elif nested:
                default = "see below"
            elif info.default_factory is not None:
                default = f"`{info.default_factory()!r}`"  # type: ignore[call-arg]
            else:
                default = f"`{info.default!r}`"
            kind = _type_name(info.annotation)
            cells = (f"`{name}`", kind, default, info.description or "")
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    out += _timing()
    return "\n".join(out) + "\n"


def _timing() -> list[str]:
    ramp, warm = RampPolicy(), RampSettings()
    policy: dict[str, Any] = {f.name: f.default for f in fields(MailboxPolicy)}
    minutes, jitter, floor = (
        int(policy[name].total_seconds() // 60) for name in ("min_gap", "max_jitter", "send_gap")
    )
    return [
        "",
        "## When mail goes out",
        "",
        "A step is due once its delay has passed; it goes out at the first moment every "
        "rule below allows, from the mailbox that sent the lead's first step:",
        "",
        f"- **Ramp (cold cap a day):** a mailbox's first {ramp.ramp_days} days from its "
        f"ramp start send {ramp.ramp_min}–{ramp.ramp_max} cold messages a day (rising "
        f"day by day), then {ramp.steady_min}–{ramp.steady_max}; a campaign's or "
        "mailbox's `daily_cap` only lowers it.",
        f"- **Warmup ratio:** with warmup on, each cold send waits until the mailbox has "
        f"sent {DEFAULT_WARMUP_RATIO:g} warmup messages per cold one that day "
        "(`mailfleet warmup on ADDRESS --ratio N` changes it).",
        f"- **Warmup hours:** warmup goes out {warm.day_start_minute // 60:02d}:00–"
        f"{warm.day_end_minute // 60:02d}:00 in the mailbox's timezone, starting at "
        f"{warm.start} a day and rising by {warm.step} to {warm.ceiling}.",
        "- **Window and pacing:** cold mail only inside the campaign's window (in its "
        "timezone, or the lead's with `use_lead_timezone`), spread evenly over what is "
        "left of it: remaining capacity over remaining window time, jittered.",
        f"- **Minimum gap:** {minutes} minutes plus up to {jitter} minutes of jitter "
        "between two cold sends of a mailbox (`mailfleet mailbox set ADDRESS --min-gap M`).",
        f"- **Floor:** {floor} minutes between any two sends of a mailbox, warmup included.",
        "- **Provider limits:** Microsoft 365 30 messages a minute and 10,000 recipients "
        "in any rolling 24 hours per mailbox; Google Workspace 2,000 messages a day.",
        "",
        "`mailfleet status` and `mailfleet campaign show` say which of these holds each "
        "mailbox now and until when.",
    ]
