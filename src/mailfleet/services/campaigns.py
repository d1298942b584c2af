"""Campaigns: create from a spec, start through the pre-launch gate, pause, resume, show.

The campaign's life is one state machine (:data:`TRANSITIONS`): ``draft`` → ``active``
(start, through the gate) ⇄ ``paused``; every move is a conditional UPDATE on the
status it was read in, so two requests at once cannot both move it, and each move
records a ``campaign.<verb>`` event. A start the gate refuses raises
:class:`LaunchRefused` with every error; ``force`` starts anyway and records the
overridden reasons in a ``campaign.forced`` event. The gate's DNS lookups run before
the write transaction opens (:mod:`mailfleet.services.gate`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from mailfleet.campaigns import CampaignSpec, StopRules
from mailfleet.readiness import DomainChecker, Finding, assess
from mailfleet.services import gate
from mailfleet.services.errors import ServiceError
from mailfleet.services.holds import MailboxHold, mailbox_holds
from mailfleet.services.lookup import campaign as find_campaign
from mailfleet.services.lookup import workspace as find_workspace
from mailfleet.store import Campaign, CampaignStatus, Database, Enrollment, Send, Workspace
from mailfleet.store import commands as store_commands
from mailfleet.store import repository as repo

TRANSITIONS: dict[str, tuple[tuple[CampaignStatus, ...], CampaignStatus]] = {
    "started": ((CampaignStatus.DRAFT,), CampaignStatus.ACTIVE),
    "paused": ((CampaignStatus.ACTIVE,), CampaignStatus.PAUSED),
    "resumed": ((CampaignStatus.PAUSED,), CampaignStatus.ACTIVE),
}
"""verb → (the statuses it may leave, the status it reaches)."""

_HINTS = {
    CampaignStatus.PAUSED: "resume it",
    CampaignStatus.DRAFT: "start it",
    CampaignStatus.ACTIVE: "pause it",
}


class LaunchRefused(ServiceError):
    """The pre-launch gate found errors and the start was not forced."""

    def __init__(self, name: str, errors: list[Finding]) -> None:
        lines = "\n".join(f"  ✗ {f.message}" for f in errors)
        super().__init__(
            f"campaign {name!r} cannot start:\n{lines}\n"
            "(--force starts it anyway and records these reasons)"
        )
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Created:
    """A campaign stored as a draft, with notes about its mailbox selection."""

    campaign_id: int
    workspace: str
    name: str
    steps: int
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Transitioned:
    """A campaign moved to ``status``; ``findings`` are the gate's (overridden errors too)."""

    name: str
    verb: str
    status: str
    findings: tuple[Finding, ...] = ()
    forced: bool = False


@dataclass(frozen=True, slots=True)
class Counts:
    """A campaign's enrollments and sends by status."""

    enrolled: int
    enrollments: dict[str, int]
    sends: dict[str, int]


@dataclass(frozen=True, slots=True)
class Listed:
    """One row of the campaign list."""

    name: str
    workspace: str
    status: str
    counts: Counts


async def create(
    db: Database, spec: CampaignSpec, *, source: str, workspace_slug: str | None, at: datetime
) -> Created:
    """Store ``spec`` as a draft campaign (the workspace is made when there is none)."""
    async with db.session() as session:
        ws = await find_workspace(session, workspace_slug, create=True, at=at)
        taken = await session.scalar(
            select(Campaign.id).where(Campaign.workspace_id == ws.id, Campaign.name == spec.name)
        )
        if taken is not None:
            raise ServiceError(
                f"{source}: workspace {ws.slug!r} already has a campaign {spec.name!r}; "
                "rename it in the file"
            )
        row = store_commands.campaign_from_spec(ws.id, spec, at)
        session.add(row)
        await session.flush()
        repo.add_event(
            session,
            workspace_id=ws.id,
            at=at,
            kind="campaign.created",
            message=f"from {source}",
            campaign_id=row.id,
        )
        facts = await repo.launch_facts(session, row, at)
        selection = ("mailbox_missing", "tag_unmatched", "no_mailbox")
        notes = tuple(f.message for f in assess(facts) if f.code in selection)
        return Created(row.id, ws.slug, spec.name, len(spec.steps), notes)


async def _find_id(db: Database, name: str, workspace_slug: str | None) -> tuple[int, str]:
    async with db.session() as session:
        row = await find_campaign(session, name, workspace_slug)
        return row.id, str(row.status)


async def transition(
    db: Database,
    name: str,
    verb: str,
    *,
    workspace_slug: str | None,
    at: datetime,
    checker: DomainChecker | None = None,
    public_url: str | None = None,
    force: bool = False,
) -> Transitioned:
    """Start, pause or resume a campaign (``verb``: started, paused, resumed)."""
    allowed, target = TRANSITIONS[verb]
    campaign_id, status = await _find_id(db, name, workspace_slug)
    _allowed(name, status, allowed, target)
    findings: list[Finding] = []
    if verb == "started":
        findings = await gate.findings(db, campaign_id, at, checker, public_url=public_url)
    errors = [f for f in findings if f.level == "error"]
    if errors and not force:
        raise LaunchRefused(name, errors)
    async with db.session() as session:
        moved: Any = await session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status == status)
            .values(status=target)
        )
        if moved.rowcount != 1:
            raise ServiceError(f"campaign {name!r} changed meanwhile; look at it and try again")
        row = await session.get(Campaign, campaign_id)
        assert row is not None
        if verb == "started":
            row.started_at = row.started_at or at
        if errors:
            event = repo.add_event(
                session,
                workspace_id=row.workspace_id,
                at=at,
                kind="campaign.forced",
                message=f"started despite {len(errors)} launch check error(s): "
                + "; ".join(f.message for f in errors),
                campaign_id=row.id,
            )
            event.data = {"overridden": [{"code": f.code, "message": f.message} for f in errors]}
        repo.add_event(
            session,
            workspace_id=row.workspace_id,
            at=at,
            kind=f"campaign.{verb}",
            message=f"campaign {row.name} {verb}",
            campaign_id=row.id,
        )
    return Transitioned(name, verb, str(target), tuple(findings), forced=bool(errors))


def _allowed(
    name: str, status: str, allowed: tuple[CampaignStatus, ...], target: CampaignStatus
) -> None:
    if status == target:
        raise ServiceError(f"campaign {name!r} is already {target}")
    if status not in allowed:
        hint = _HINTS.get(CampaignStatus(status), "create a new one")
        raise ServiceError(f"campaign {name!r} is {status}: {hint} instead")


async def counts(db: Database, campaign_ids: list[int]) -> dict[int, Counts]:
    """Enrollments and sends by status for each campaign."""
    enrollments: dict[int, dict[str, int]] = {i: {} for i in campaign_ids}
    sends: dict[int, dict[str, int]] = {i: {} for i in campaign_ids}
    async with db.session() as session:
        for target, column, model in (
            (enrollments, Enrollment.campaign_id, Enrollment),
            (sends, Send.campaign_id, Send),
        ):
            rows = await session.execute(
                select(column, model.status, func.count())
                .where(column.in_(campaign_ids))
                .group_by(column, model.status)
            )
            for cid, status, n in rows.all():
                if cid is not None:
                    target[int(cid)][str(status)] = int(n)
    return {i: Counts(sum(enrollments[i].values()), enrollments[i], sends[i]) for i in campaign_ids}


async def list_campaigns(db: Database, workspace_slug: str | None = None) -> list[Listed]:
    """Every campaign (of one workspace, when named) with its counts."""
    async with db.session() as session:
        query = (
            select(Campaign.id, Campaign.name, Workspace.slug, Campaign.status)
            .join(Workspace, Workspace.id == Campaign.workspace_id)
            .order_by(Workspace.slug, Campaign.name)
        )
        if workspace_slug is not None:
            query = query.where(Workspace.slug == workspace_slug)
        rows = (await session.execute(query)).all()
    by_id = await counts(db, [r[0] for r in rows])
    return [Listed(name, slug, str(status), by_id[cid]) for cid, name, slug, status in rows]


@dataclass(frozen=True, slots=True)
class VariantView:
    name: str
    weight: float
    subject: str
    sent: int


@dataclass(frozen=True, slots=True)
class StepView:
    position: int
    delay_days: int
    delay_minutes: int
    business_days: bool
    threaded: bool
    subject: str
    variants: tuple[VariantView, ...]


@dataclass(frozen=True, slots=True)
class CampaignView:
    """One campaign as ``campaign show`` (and the API) present it."""

    name: str
    status: str
    timezone: str
    window_days: tuple[int, ...]
    window_start_minute: int
    window_end_minute: int
    use_lead_timezone: bool
    daily_cap: int | None
    mailbox_tags: tuple[str, ...]
    mailbox_list: tuple[str, ...]
    mailboxes: tuple[str, ...]
    stop: StopRules
    steps: tuple[StepView, ...]
    counts: Counts
    readiness: tuple[Finding, ...] = field(default=())
    holds: tuple[MailboxHold, ...] = ()  # what holds each of its mailboxes now


async def show(
    db: Database,
    name: str,
    *,
    workspace_slug: str | None,
    at: datetime,
    checker: DomainChecker | None = None,
    public_url: str | None = None,
) -> CampaignView:
    """A campaign's settings, steps, variants with their sends, counts and launch findings."""
    async with db.session() as session:
        row = await find_campaign(session, name, workspace_slug)
        mailboxes = await repo.selected_mailboxes(session, row)
        sent = Counter(
            (int(step or 0), str(variant))
            for step, variant in (
                await session.execute(
                    select(Send.step_position, Send.variant).where(
                        Send.campaign_id == row.id, Send.variant.is_not(None), Send.status == "sent"
                    )
                )
            ).all()
        )
        settings: dict[str, Any] = dict(row.settings or {})
        steps = tuple(
            StepView(
                s.position,
                s.delay_days,
                s.delay_minutes,
                s.business_days,
                s.threaded,
                s.subject,
                tuple(
                    VariantView(v["name"], v["weight"], v["subject"], sent[(s.position, v["name"])])
                    for v in (s.variants or {}).get("variants") or []
                ),
            )
            for s in row.steps
        )
        campaign_id = row.id
        holds = await mailbox_holds(session, at, mailbox_ids=[m.id for m in mailboxes])
        view = CampaignView(
            name=row.name,
            status=str(row.status),
            timezone=row.timezone,
            window_days=tuple(sorted(row.window_days)),
            window_start_minute=row.window_start_minute,
            window_end_minute=row.window_end_minute,
            use_lead_timezone=row.use_lead_timezone,
            daily_cap=row.daily_cap,
            mailbox_tags=tuple(row.mailbox_tags or []),
            mailbox_list=tuple(settings.get("mailboxes") or []),
            mailboxes=tuple(m.address for m in mailboxes),
            stop=StopRules.from_settings(settings),
            steps=steps,
            counts=Counts(0, {}, {}),
            holds=tuple(holds),
        )
    found = await gate.findings(db, campaign_id, at, checker, public_url=public_url)
    by_id = await counts(db, [campaign_id])
    return replace(view, counts=by_id[campaign_id], readiness=tuple(found))
