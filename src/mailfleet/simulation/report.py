"""The JSON report of a run: totals, faults, exactly-once, and the auditor's violations.

The ``violations`` come from :func:`mailfleet.simulation.audit.audit` over what the
sandbox received. The stops it holds the engine to come from the world too: an
answer filed in a sending mailbox (a reply, an unsubscribe request, a delivery
report for a dead address — and an out-of-office or a soft bounce when the
campaign's stop rules say so; a reply also stops the replier's colleagues when
they say ``on_company_reply``) stops its prospect from the instant it was filed
(plus the sync interval when the inbox is read periodically), and an address
refused at RCPT TO from the instant of the refusal.

Only the ``exactly_once`` and ``engine`` sections read the engine's tables, to
compare them with the sandbox: a send the engine calls sent that never arrived,
one that arrived but the engine recorded as refused, or an enrollment left
waiting with nothing in flight is *lost*.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from mailfleet.campaigns import CampaignSpec, StopRules, WindowSpec
from mailfleet.limits import MailboxPolicy, company_domain, floor_gap
from mailfleet.providers import get_preset
from mailfleet.sandbox import Fate, Sandbox
from mailfleet.simulation.audit import Audit, AuditRules, SenderRule, WindowRule, audit
from mailfleet.simulation.records import Bounced
from mailfleet.simulation.scenario import Scenario, ServerBusyFault
from mailfleet.simulation.world import World
from mailfleet.store import (
    Database,
    Enrollment,
    EnrollmentStatus,
    Event,
    Mailbox,
    Send,
    SendStatus,
)
from mailfleet.store import warmup as warmup_store
from mailfleet.store.inbox_queries import inbound_counts
from mailfleet.warmup import placement_stats

if TYPE_CHECKING:
    from mailfleet.simulation.runner import Filed, Simulation

BOUNCE_EFFECT = timedelta(microseconds=1)  # a refused RCPT TO stops the lead just after it
PROVIDER = "microsoft365"  # the sandbox emulates Microsoft 365


def stop_grace(scenario: Scenario) -> timedelta:
    """How long after an answer arrives its stop may take effect."""
    if scenario.audit.stop_grace_seconds is not None:
        return timedelta(seconds=scenario.audit.stop_grace_seconds)
    return timedelta(minutes=scenario.inbox.sync_minutes)


def audit_rules(
    scenario: Scenario, campaign: CampaignSpec, world: World, cold_domains: frozenset[str]
) -> AuditRules:
    """The rules the run promised, from the scenario and its campaign (not the engine)."""
    fleet = scenario.fleet
    limits = get_preset(PROVIDER).limits
    gap = (
        timedelta(seconds=fleet.min_gap_seconds)
        if fleet.min_gap_seconds is not None
        else MailboxPolicy(0, limits).min_gap
    )
    floor = floor_gap(MailboxPolicy(0, limits, min_gap=gap))
    return AuditRules(
        senders={
            s.address: SenderRule(
                address=s.address,
                timezone=fleet.timezone,
                ramp_start=s.ramp_start,
                daily_cap=fleet.daily_cap,
                min_gap=gap,
                send_gap=floor,
            )
            for s in world.senders
        },
        window=WindowRule(
            timezone=campaign.timezone,
            days=frozenset(campaign.window.days),
            start_minute=WindowSpec.minutes(campaign.window.start),
            end_minute=WindowSpec.minutes(campaign.window.end),
        ),
        cold_domains=cold_domains,
        threaded_steps=[step.threaded for step in campaign.steps],
        lead_timezones={lead.email.lower(): lead.timezone for lead in world.leads if lead.timezone},
        use_lead_timezone=campaign.use_lead_timezone,
        messages_per_minute=limits.messages_per_minute,
        recipients_per_day=limits.recipients_per_day,
        warmup_ratio=scenario.audit.warmup_ratio,
        stop_grace=stop_grace(scenario),
    )


def required_stops(
    filed: Iterable[Filed], bounced: Iterable[Bounced], rules: StopRules, leads: Sequence[str]
) -> dict[str, datetime]:
    """Each lead's first instant no message may reach it, by the world's account."""
    colleagues: dict[str, list[str]] = defaultdict(list)
    for address in leads:
        company = company_domain(address)
        if company is not None:
            colleagues[company].append(address)
    stops: dict[str, datetime] = {}

    def stop(address: str, at: datetime) -> None:
        if address not in stops or at < stops[address]:
            stops[address] = at

    for item in filed:
        kind, prospect = item.answer.kind, item.answer.prospect
        always = kind in (Fate.REPLY, Fate.UNSUBSCRIBE, Fate.HARD_BOUNCE)
        by_rule = (kind is Fate.OUT_OF_OFFICE and rules.on_auto_reply) or (
            kind is Fate.SOFT_BOUNCE and rules.on_bounce == "any"
        )
        if always or by_rule:
            stop(prospect, item.at)
        if kind is Fate.REPLY and rules.on_company_reply:
            company = company_domain(prospect)
            for colleague in colleagues.get(company or "", []):
                stop(colleague, item.at)
    for refusal in bounced:
        stop(refusal.recipient, refusal.at + BOUNCE_EFFECT)
    return stops


def limit_refusals(sandbox: Sandbox) -> dict[str, int]:
    """Attempts the sandbox's Microsoft 365 limit meters refused, by reply code."""
    counts: Counter[str] = Counter()
    for mailbox in sandbox.directory.mailboxes():
        for reply in mailbox.meter.refusals:
            counts[f"{reply.code} {reply.text.split(' ', 1)[0]}"] += 1
    return dict(counts)


async def build_report(
    sim: Simulation, world: World, sandbox: Sandbox, db: Database
) -> dict[str, Any]:
    """The whole report of a finished run."""
    scenario = sim.scenario
    stops = required_stops(
        sim.filed, sim.log.bounced, sim.campaign.stop, [lead.email.lower() for lead in world.leads]
    )
    found = audit(
        sim.log.received,
        audit_rules(scenario, sim.campaign, world, sim.prospect_domains),
        stops=stops,
        limit_refusals=limit_refusals(sandbox),
    )
    engine_side = await _engine_side(sim, db, world)
    return {
        "scenario": scenario.name,
        "days": scenario.days,
        "started_at": sim.start.isoformat(),
        "ended_at": sim.end.isoformat(),
        "fleet": {
            "domains": scenario.fleet.domains,
            "mailboxes": len(world.senders),
            "tenants": scenario.fleet.tenants,
        },
        "leads": len(world.leads),
        "steps": len(sim.campaign.steps),
        "totals": _totals(sim, found, sandbox, stops),
        "inbound": {
            "answers_filed": dict(sorted(Counter(f.answer.kind.value for f in sim.filed).items())),
            "in_junk": sum(f.answer.junk for f in sim.filed),
            "read_by_engine": engine_side.pop("inbound"),
            "sync_errors": len(sim.sync.errors),
            "first_sync_errors": sim.sync.errors[:5],
        },
        "faults": _faults(sim, world, engine_side.pop("mailboxes")),
        "crash": _crash(sim),
        "exactly_once": {
            "duplicates": found.violations["duplicate_message_id"]
            + found.violations["duplicate_lead_step"],
            **engine_side.pop("exactly_once"),
        },
        "engine": engine_side,
        "gate": {
            "would_refuse": any(f["level"] == "error" for f in sim.gate),
            "forced": True,  # the world's campaign runs regardless, as --force would
            "findings": sim.gate,
        },
        "health": {
            "paused": sim.health_pauses,
            "every_minutes": scenario.health.every_minutes,
        },
        "warmup": await _warmup_side(sim, db, world),
        "world_changes": sim.world_changes,
        "violations": found.violations,
        "violation_details": found.details,
    }


async def _warmup_side(sim: Simulation, db: Database, world: World) -> dict[str, Any]:
    """Per mailbox and per sending domain: warmup sent, inbox placement the peers saw (7 and
    28 days), reply (and, per domain, bounce) rates; each mailbox's cold cap and its changes."""
    if sim.warmup_config is None:
        return {"enabled": False}
    now = sim.clock.now()
    ids = dict(world.mailbox_ids)
    async with db.session() as session:
        seen = await warmup_store.observations(session, ids.values(), now - timedelta(days=28))
        factors = await warmup_store.cold_cap_factors(session, ids.values())
        changes = (
            await session.execute(
                select(Event.mailbox_id, Event.at, Event.message)
                .where(Event.kind == "warmup.cold_cap")
                .order_by(Event.at, Event.id)
            )
        ).all()
    by_id = {v: k for k, v in ids.items()}
    mailboxes: dict[str, Any] = {}
    for address, mailbox_id in sorted(ids.items()):
        week = placement_stats(seen.get(mailbox_id, []), now, timedelta(days=7))
        month = placement_stats(seen.get(mailbox_id, []), now, timedelta(days=28))
        mailboxes[address] = {
            "sent_28d": month.sent,
            "inbox_share_7d": _share(week.inbox_share),
            "inbox_share_28d": _share(month.inbox_share),
            "junk_share_7d": _share(week.junk_share),
            "junk_share_28d": _share(month.junk_share),
            "reply_rate_28d": _share(month.reply_rate),
            "cold_cap_factor": factors.get(mailbox_id, 1.0),
        }
    domains: dict[str, Any] = {}
    for domain in sorted({address.rpartition("@")[2] for address in ids}):
        members = [i for address, i in ids.items() if address.rpartition("@")[2] == domain]
        observed = [o for i in members for o in seen.get(i, [])]
        week = placement_stats(observed, now, timedelta(days=7))
        month = placement_stats(observed, now, timedelta(days=28))
        domains[domain] = {
            "mailboxes": len(members),
            "sent_28d": month.sent,
            "inbox_share_7d": _share(week.inbox_share),
            "inbox_share_28d": _share(month.inbox_share),
            "junk_share_28d": _share(month.junk_share),
            "reply_rate_28d": _share(month.reply_rate),
            "bounce_rate_28d": _share(month.bounce_rate),
        }
    return {
        "enabled": True,
        "mailboxes": mailboxes,
        "domains": domains,
        "cold_cap_changes": [
            {"mailbox": by_id.get(int(mid or 0), ""), "at": at.isoformat(), "reason": message}
            for mid, at, message in changes
        ],
        "receiver_errors": sim.receiver_errors,
    }


def _share(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _totals(
    sim: Simulation, found: Audit, sandbox: Sandbox, stops: dict[str, datetime]
) -> dict[str, Any]:
    per_sender = list(found.by_sender.values())
    return {
        "messages_accepted": found.messages,
        "cold": found.cold,
        "warmup": found.warmup,
        "recipients": found.recipients,
        "by_step": found.by_step,
        "leads_reached": found.leads_reached,
        "leads_stopped_by_the_world": len(stops),
        "per_mailbox": {
            "min": min(per_sender, default=0),
            "max": max(per_sender, default=0),
            "mean": round(sum(per_sender) / len(per_sender), 1) if per_sender else 0,
        },
        "refusals": {
            "server_busy": sum(len(b.busy_refusals) for b in sim.behaviours.values()),
            "recipient_not_found_at_rcpt": len(sim.log.bounced),
            "provider_limits": sum(len(m.meter.refusals) for m in sandbox.directory.mailboxes()),
        },
    }


def _faults(sim: Simulation, world: World, statuses: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for fault in sim.scenario.faults:
        if isinstance(fault, ServerBusyFault):
            address = world.sender(fault.mailbox).address
            out.append(
                {
                    "kind": fault.kind,
                    "mailbox": address,
                    "at": sim.scenario.instant(fault.day, fault.time).isoformat(),
                    "minutes": fault.minutes,
                    "refusals": len(sim.behaviours[address].busy_refusals),
                    "mailbox_status_at_end": statuses.get(address),
                }
            )
    for note in sim.revocations:
        out.append({**note, "mailbox_status_at_end": statuses.get(note["mailbox"])})
    return out


def _crash(sim: Simulation) -> dict[str, Any] | None:
    crash = sim.crash
    if crash is None:
        return None
    accepted = {r.message_id for r in sim.log.received if r.message_id}
    return {
        "armed_at": crash.at.isoformat(),
        "struck_at": crash.fired_at.isoformat() if crash.fired_at else None,
        "in_flight": len(crash.in_flight),
        "in_flight_by_status": dict(Counter(status for _, status in crash.in_flight)),
        "in_flight_accepted_by_sandbox": sum(mid in accepted for mid, _ in crash.in_flight),
        "reconciled": crash.reconciled,
    }


async def _engine_side(sim: Simulation, db: Database, world: World) -> dict[str, Any]:
    """The engine's tables against the sandbox's records: lost or misrecorded sends."""
    accepted = {r.message_id for r in sim.log.received if r.message_id}
    async with db.session() as session:
        sends = (await session.execute(select(Send.message_id, Send.status))).all()
        enrollments = dict(
            (
                await session.execute(
                    select(Enrollment.status, func.count()).group_by(Enrollment.status)
                )
            ).all()
        )
        stalled = await session.scalar(
            select(func.count())
            .select_from(Enrollment)
            .where(
                Enrollment.status == EnrollmentStatus.ACTIVE,
                Enrollment.next_due_at.is_(None),
                ~Enrollment.id.in_(
                    select(Send.enrollment_id).where(
                        Send.status.in_(
                            (SendStatus.UNKNOWN, SendStatus.CLAIMED, SendStatus.SUBMITTING)
                        ),
                        Send.enrollment_id.is_not(None),
                    )
                ),
            )
        )
        boxes = (await session.execute(select(Mailbox.address, Mailbox.status))).all()
        inbound = await inbound_counts(session, world.workspace_id)
    by_status = Counter(str(status) for _, status in sends)
    sent_not_received = sum(
        1 for mid, status in sends if status == SendStatus.SENT and mid not in accepted
    )
    misrecorded = sum(
        1
        for mid, status in sends
        if status in (SendStatus.FAILED, SendStatus.DEFERRED) and mid in accepted
    )
    totals = sim.engine_totals
    return {
        "exactly_once": {
            "lost": sent_not_received + misrecorded + int(stalled or 0),
            "sent_not_received": sent_not_received,
            "accepted_but_recorded_refused": misrecorded,
            "stalled_enrollments": int(stalled or 0),
            "accepted_but_unknown": sum(
                1 for mid, status in sends if status == SendStatus.UNKNOWN and mid in accepted
            ),
            "unknown_never_accepted": sum(
                1 for mid, status in sends if status == SendStatus.UNKNOWN and mid not in accepted
            ),
        },
        "ticks": totals.ticks,
        "planned": totals.planned,
        "sent": totals.sent,
        "deferred": totals.deferred,
        "failed": totals.failed,
        "unknown": totals.unknown,
        "stopped": totals.stopped,
        "errors": totals.errors,
        "first_errors": totals.first_errors,
        "sends_by_status": dict(sorted(by_status.items())),
        "enrollments_by_status": {str(k): int(v) for k, v in sorted(enrollments.items())},
        "mailboxes": {address: str(status) for address, status in boxes},
        "inbound": dict(sorted(inbound.items())),
    }
