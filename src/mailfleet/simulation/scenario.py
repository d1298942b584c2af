"""The scenario file: a simulated world described as data (TOML or YAML).

A scenario names how long to run, the sending fleet (domains, mailboxes, their
ages), the leads, the campaign (a file next to the scenario, or inline), how
prospects behave and which faults to inject when. Times of faults are given
as a day of the run (1 = the first) and a local time in the scenario's zone.

Everything is validated up front; :class:`ScenarioError` names the file and the
field that is wrong. In TOML (top-level keys before the first table)::

    name = "month"
    days = 30
    start = 2026-03-02              # day 1 (default: a Monday)
    timezone = "Europe/London"      # of day numbers and fault times
    seed = 2026
    campaign = "campaigns/three-step.yaml"   # or an inline [campaign] table

    [fleet]     # domains, mailboxes (a total) or mailboxes_per_domain, tenants,
                # timezone, ages_days (cycled), daily_cap, min_gap_seconds, warmup_enabled
    [leads]     # count, companies, timezones (cycled)
    [prospects] # reply, unsubscribe, out_of_office, bounce_hard, bounce_soft, junk,
                # refused_at_rcpt: shares of prospects
    [inbox]     # sync_minutes: 0 reads a mailbox as soon as mail arrives (IDLE)
    [audit]     # warmup_ratio (None: not checked), stop_grace_seconds
    [health]    # every_minutes: the auto-pause pass (default 60; 0: off)
    [warmup]    # receive_minutes: how often the peers read their warmup mail (default 30)
    [[dns]]     # domain (index), omit / broken: parts among mx, spf, dkim, dmarc

    [[faults]]  # kind = "server_busy" (mailbox, day, time, minutes)
                # | "token_revoked" (mailbox, day, time, grant) | "crash" (day, time)
                # | "junk" (mailbox, day, time, share, days): peers file its domain's mail in Junk
                # | "bad_list" (mailbox, day, time, share): its prospects bounce hard
"""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mailfleet.campaigns import CampaignFileError, CampaignSpec, load_campaign, parse_campaign

LEAD_FIELDS = frozenset({"team"})
"""Custom lead fields the generated leads carry, so scenario campaigns may use them."""


class ScenarioError(Exception):
    """A scenario file is invalid; the message names the file and why."""


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA timezone") from None
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FleetSpec(_Strict):
    """The sending side: domains on one or more Microsoft 365 tenants, and their mailboxes."""

    domains: int = Field(ge=1, le=10_000)
    mailboxes: int | None = Field(default=None, ge=1, le=100_000)  # spread over the domains
    mailboxes_per_domain: int | None = Field(default=None, ge=1, le=100)
    tenants: int = Field(default=1, ge=1)
    timezone: str = "UTC"  # the mailboxes' sending day
    ages_days: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [60], min_length=1)
    """Age of each mailbox at the start (day N of its ramp), cycled over the mailboxes."""
    daily_cap: int | None = Field(default=None, ge=1)
    min_gap_seconds: int | None = Field(default=None, ge=0)
    warmup_enabled: bool = False
    """Whether the mailboxes' warmup is on; with it on, cold waits for recorded warmup sends."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_zone(value)

    @model_validator(mode="after")
    def _count(self) -> FleetSpec:
        if (self.mailboxes is None) == (self.mailboxes_per_domain is None):
            raise ValueError("give exactly one of mailboxes (a total) and mailboxes_per_domain")
        if self.tenants > self.domains:
            raise ValueError("tenants cannot outnumber domains")
        if self.total_mailboxes < self.domains:
            raise ValueError("every domain needs at least one mailbox")
        return self

    @property
    def total_mailboxes(self) -> int:
        """How many mailboxes the fleet has."""
        if self.mailboxes is not None:
            return self.mailboxes
        assert self.mailboxes_per_domain is not None
        return self.mailboxes_per_domain * self.domains


class LeadsSpec(_Strict):
    """Generated prospects."""

    count: int = Field(ge=0, le=2_000_000)
    companies: int = Field(default=500, ge=1)  # prospect domains, one company each
    timezones: list[str] = Field(default_factory=list)  # cycled over leads; empty: none set

    @field_validator("timezones")
    @classmethod
    def _zones(cls, value: list[str]) -> list[str]:
        return [_check_zone(v) for v in value]


class ProspectSpec(_Strict):
    """Shares of prospects by how they answer (each at most one way; the rest stay silent).

    The sandbox's prospect simulator answers as people and mail servers do: a reply
    or an unsubscribe request to the first or second message, out-of-office answers,
    delivery reports for dead (hard) and full (soft) mailboxes; ``junk`` of those
    answers land in the Junk folder. ``refused_at_rcpt`` addresses are refused at
    submission instead (``550 5.1.1`` at RCPT TO), as Exchange does for recipients
    it can resolve itself.
    """

    reply: float = Field(default=0.0, ge=0, le=1)
    unsubscribe: float = Field(default=0.0, ge=0, le=1)
    out_of_office: float = Field(default=0.0, ge=0, le=1)
    bounce_hard: float = Field(default=0.0, ge=0, le=1)
    bounce_soft: float = Field(default=0.0, ge=0, le=1)
    junk: float = Field(default=0.0, ge=0, le=1)
    refused_at_rcpt: float = Field(default=0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _shares(self) -> ProspectSpec:
        total = (
            self.reply + self.unsubscribe + self.out_of_office + self.bounce_hard + self.bounce_soft
        )
        if total > 1.0 + 1e-9:
            raise ValueError("prospect shares add up to more than 1")
        return self


class InboxSpec(_Strict):
    """How the engine reads the answers: at once (as IMAP IDLE does) or every N minutes."""

    sync_minutes: int = Field(default=0, ge=0, le=24 * 60)


_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


class _Timed(_Strict):
    day: int = Field(ge=1)  # day of the run, 1 = the first
    time: str = "00:00"  # local time in the scenario's zone

    @field_validator("time")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _TIME.fullmatch(value):
            raise ValueError(f"{value!r} is not a time like 10:30")
        return value


class ServerBusyFault(_Timed):
    """``451 4.7.500 Server busy`` at MAIL FROM for one mailbox during a time window."""

    kind: Literal["server_busy"]
    mailbox: int | str  # index in the generated fleet, or an address
    minutes: int = Field(ge=1)


class TokenRevokedFault(_Timed):
    """A mailbox's access token is revoked; with ``grant`` its app secret is rotated too.

    Without ``grant`` only the live token dies, so one forced refresh heals it; with
    ``grant`` every refresh fails and the mailbox must end up disconnected.
    """

    kind: Literal["token_revoked"]
    mailbox: int | str
    grant: bool = True


class CrashFault(_Timed):
    """The engine process dies between claim and outcome at the first send after this time."""

    kind: Literal["crash"]


class JunkFault(_Timed):
    """From this time the peers' mail servers file ``share`` of mail from the mailbox's domain
    in Junk, for ``days`` days (None: to the end of the run), then take it back out."""

    kind: Literal["junk"]
    mailbox: int | str
    share: float = Field(default=1.0, ge=0, le=1)
    days: int | None = Field(default=None, ge=1)


class BadListFault(_Timed):
    """From this time ``share`` of the prospects this mailbox mails bounce hard (a bad list)."""

    kind: Literal["bad_list"]
    mailbox: int | str
    share: float = Field(gt=0, le=1)


Fault = Annotated[
    ServerBusyFault | TokenRevokedFault | CrashFault | JunkFault | BadListFault,
    Field(discriminator="kind"),
]

DNS_PARTS = Literal["mx", "spf", "dkim", "dmarc"]


class DomainDnsSpec(_Strict):
    """How one sending domain's DNS deviates from what its provider asks for."""

    domain: int = Field(ge=0)  # index among the generated sending domains
    omit: list[DNS_PARTS] = Field(default_factory=list)
    broken: list[DNS_PARTS] = Field(default_factory=list)


class HealthSpec(_Strict):
    """The health pass (auto-pause) as ``mailfleet run`` makes it, every N minutes (0: off)."""

    every_minutes: int = Field(default=60, ge=0, le=24 * 60)


class WarmupSpec(_Strict):
    """How often the warmup receiver reads the peers' mailboxes (with ``fleet.warmup_enabled``)."""

    receive_minutes: int = Field(default=30, ge=1, le=24 * 60)


class AuditSpec(_Strict):
    """What the auditor holds the sandbox's records to, beyond the provider's limits."""

    warmup_ratio: float | None = None
    """Warmup sends per cold send per mailbox and local day; None: not checked."""
    stop_grace_seconds: int | None = Field(default=None, ge=0)
    """Delay allowed between an answer's arrival and the stop (default: the sync interval)."""


class Scenario(_Strict):
    """A whole simulated run."""

    name: str = Field(min_length=1, max_length=200)
    days: int = Field(ge=1, le=366)
    start: date = date(2026, 3, 2)  # a Monday
    timezone: str = "UTC"  # for fault times and day numbers
    seed: int = 1
    fleet: FleetSpec
    leads: LeadsSpec
    campaign: str | dict[str, Any]
    prospects: ProspectSpec = Field(default_factory=ProspectSpec)
    inbox: InboxSpec = Field(default_factory=InboxSpec)
    faults: list[Fault] = Field(default_factory=list)
    audit: AuditSpec = Field(default_factory=AuditSpec)
    dns: list[DomainDnsSpec] = Field(default_factory=list)
    health: HealthSpec = Field(default_factory=HealthSpec)
    warmup: WarmupSpec = Field(default_factory=WarmupSpec)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_zone(value)

    @model_validator(mode="after")
    def _faults(self) -> Scenario:
        total = self.fleet.total_mailboxes
        for number, item in enumerate(self.faults, start=1):
            if item.day > self.days:
                raise ValueError(f"fault {number} is on day {item.day} of a {self.days}-day run")
            target = getattr(item, "mailbox", None)
            if isinstance(target, int) and not 0 <= target < total:
                raise ValueError(f"fault {number}: mailbox {target} is not in 0..{total - 1}")
        if sum(isinstance(f, CrashFault) for f in self.faults) > 1:
            raise ValueError("at most one crash per scenario")
        for number, spec in enumerate(self.dns, start=1):
            if spec.domain >= self.fleet.domains:
                raise ValueError(
                    f"dns {number}: domain {spec.domain} is not in 0..{self.fleet.domains - 1}"
                )
        return self

    def start_at(self) -> datetime:
        """The instant the run starts: midnight of ``start`` in the scenario's zone, as UTC."""
        return datetime.combine(self.start, time(0), ZoneInfo(self.timezone)).astimezone(UTC)

    def end_at(self) -> datetime:
        """The instant the run ends, ``days`` local days after the start."""
        end = self.start + timedelta(days=self.days)
        return datetime.combine(end, time(0), ZoneInfo(self.timezone)).astimezone(UTC)

    def instant(self, day: int, clock_time: str) -> datetime:
        """``clock_time`` on day ``day`` of the run (1 = the first), as UTC."""
        hours, minutes = (int(p) for p in clock_time.split(":"))
        local = datetime.combine(
            self.start + timedelta(days=day - 1), time(hours, minutes), ZoneInfo(self.timezone)
        )
        return local.astimezone(UTC)


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(text)
        return yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        kind = path.suffix.lstrip(".") or "YAML"
        raise ScenarioError(f"{path}: not valid {kind}: {exc}") from None


def _format(source: str, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "scenario"
        lines.append(f"{source}: {where}: {error['msg']}")
    return "\n".join(lines)


def parse_scenario(data: Any, *, source: str = "scenario") -> Scenario:
    """Validate a scenario mapping, or raise :class:`ScenarioError`."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: expected a mapping of scenario settings")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_format(source, exc)) from None


def load_scenario(path: Path) -> tuple[Scenario, CampaignSpec]:
    """Read a scenario file and its campaign (resolved next to the scenario), both validated."""
    scenario = parse_scenario(_read(path), source=str(path))
    return scenario, scenario_campaign(scenario, path.parent)


def scenario_campaign(scenario: Scenario, base: Path) -> CampaignSpec:
    """The scenario's campaign: a file relative to ``base``, or the inline table."""
    try:
        if isinstance(scenario.campaign, str):
            return load_campaign(base / scenario.campaign, extra_fields=LEAD_FIELDS)
        return parse_campaign(
            scenario.campaign, source=f"{scenario.name}: campaign", extra_fields=LEAD_FIELDS
        )
    except CampaignFileError as exc:
        raise ScenarioError(str(exc)) from None
