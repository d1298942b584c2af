"""The Prometheus endpoint: fleet numbers read from the store on every scrape.

No process-global counters (they drift from the store and reset on restart): each
scrape of ``GET /metrics`` gathers a :class:`FleetMetrics` from the database and a
custom collector (:class:`FleetCollector`) turns it into metric families:

======================================  ==================================================
``mailfleet_sends``                     send rows by ``status`` and ``kind``
``mailfleet_sends_pending``             queue: ``claimed``, ``submitting``, ``unknown``
``mailfleet_enrollments_due``           queue: steps due now in active campaigns
``mailfleet_mailboxes``                 mailboxes by ``status``
``mailfleet_credential_failures_24h``   token refresh / login failures by ``kind``
``mailfleet_mailbox_recipients_24h``    rolling 24 h recipients, and ``…_limit`` beside it
``mailfleet_mailbox_cold_today``        cold sends of the local day, and ``…_cap`` beside it
``mailfleet_inbox_sync_lag_seconds``    age of each mailbox's least recent folder sync
``mailfleet_mailbox_health_score``      0–100, and ``mailfleet_domain_health_score``
``mailfleet_domain_flagged``            1 when most of a domain's mailboxes are paused
======================================  ==================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select

from mailfleet.deliverability.health import HealthPolicy, assess_fleet
from mailfleet.engine.snapshot import mailbox_policy
from mailfleet.limits import cold_cap_for_day
from mailfleet.planner.window import local_day
from mailfleet.store import Database, Domain, Mailbox
from mailfleet.store import metrics as queries
from mailfleet.store import repository as repo
from mailfleet.store.health import mailbox_evidence

PENDING = ("claimed", "submitting", "unknown")


@dataclass(frozen=True, slots=True)
class MailboxMetrics:
    """One mailbox's numbers."""

    address: str
    domain: str
    status: str
    recipients_24h: int
    recipients_limit: int | None
    cold_today: int
    cold_cap: int
    sync_lag: float | None  # seconds; None: never synced
    health_score: int


@dataclass(frozen=True, slots=True)
class DomainMetrics:
    """One sending domain's numbers."""

    name: str
    health_score: int
    flagged: bool


@dataclass(slots=True)
class FleetMetrics:
    """Everything one scrape exposes."""

    at: datetime
    sends: dict[tuple[str, str], int] = field(default_factory=dict)
    due: int = 0
    mailboxes_by_status: dict[str, int] = field(default_factory=dict)
    credential_failures: dict[str, int] = field(default_factory=dict)
    mailboxes: list[MailboxMetrics] = field(default_factory=list)
    domains: list[DomainMetrics] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)  # this process's, by component


async def gather_metrics(
    db: Database, now: datetime, policy: HealthPolicy | None = None
) -> FleetMetrics:
    """Read :class:`FleetMetrics` from the store at ``now``."""
    rules = policy or HealthPolicy()
    out = FleetMetrics(at=now)
    async with db.session() as session:
        out.sends = await queries.sends_by_outcome(session)
        out.due = await queries.due_enrollments(session, now)
        out.mailboxes_by_status = await queries.mailboxes_by_status(session)
        out.credential_failures = await queries.credential_failures(session, now - timedelta(1))
        boxes = list((await session.scalars(select(Mailbox).order_by(Mailbox.address))).all())
        domains = {d.id: d.name for d in (await session.scalars(select(Domain))).all()}
        usage = await repo.usage_by_mailbox(session, boxes, now)
        synced = await queries.oldest_sync(session)
        evidence = await mailbox_evidence(session, now, rules)
    healths, domain_healths = assess_fleet(evidence, rules)
    scores = {h.evidence.mailbox_id: h.score for h in healths}
    for box in boxes:
        box_policy = mailbox_policy(box, now)
        last = synced.get(box.id)
        out.mailboxes.append(
            MailboxMetrics(
                address=box.address,
                domain=domains.get(box.domain_id, ""),
                status=box.status,
                recipients_24h=usage[box.id].recipients_24h,
                recipients_limit=box_policy.limits.recipients_per_day,
                cold_today=usage[box.id].cold_today,
                cold_cap=cold_cap_for_day(box_policy, local_day(now, box.timezone)[0]),
                sync_lag=max(0.0, (now - last).total_seconds()) if last is not None else None,
                health_score=scores.get(box.id, 100),
            )
        )
    out.domains = [DomainMetrics(d.name, d.score, d.flagged) for d in domain_healths]
    return out


class FleetCollector(Collector):
    """Turns one :class:`FleetMetrics` into Prometheus metric families."""

    def __init__(self, metrics: FleetMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        """Yield every family of the module's table."""
        m = self.metrics
        sends = GaugeMetricFamily(
            "mailfleet_sends", "Send rows by status and kind.", labels=["status", "kind"]
        )
        for (status, kind), count in sorted(m.sends.items()):
            sends.add_metric([status, kind], count)
        yield sends
        pending = GaugeMetricFamily(
            "mailfleet_sends_pending",
            "Sends in flight or awaiting reconciliation, by status.",
            labels=["status"],
        )
        for status in PENDING:
            pending.add_metric([status], sum(c for (s, _), c in m.sends.items() if s == status))
        yield pending
        yield GaugeMetricFamily(
            "mailfleet_enrollments_due", "Steps due now in active campaigns.", value=m.due
        )
        boxes = GaugeMetricFamily("mailfleet_mailboxes", "Mailboxes by status.", labels=["status"])
        for status in ("active", "paused", "disconnected"):
            boxes.add_metric([status], m.mailboxes_by_status.get(status, 0))
        yield boxes
        failures = GaugeMetricFamily(
            "mailfleet_credential_failures_24h",
            "Token refresh and login failures in the last 24 hours, by event kind.",
            labels=["kind"],
        )
        for kind, count in sorted(m.credential_failures.items()):
            failures.add_metric([kind], count)
        yield failures
        labels = ["mailbox", "domain"]
        families = {
            "recipients": GaugeMetricFamily(
                "mailfleet_mailbox_recipients_24h",
                "Recipients in the rolling 24 hours.",
                labels=labels,
            ),
            "limit": GaugeMetricFamily(
                "mailfleet_mailbox_recipients_24h_limit",
                "The provider's rolling 24 h recipient limit.",
                labels=labels,
            ),
            "cold": GaugeMetricFamily(
                "mailfleet_mailbox_cold_today", "Cold sends of the local day.", labels=labels
            ),
            "cap": GaugeMetricFamily(
                "mailfleet_mailbox_cold_today_cap", "Today's cold cap (ramp).", labels=labels
            ),
            "lag": GaugeMetricFamily(
                "mailfleet_inbox_sync_lag_seconds",
                "Seconds since the mailbox's least recently synced folder was read.",
                labels=labels,
            ),
            "score": GaugeMetricFamily(
                "mailfleet_mailbox_health_score", "Health score, 0 to 100.", labels=labels
            ),
        }
        for box in m.mailboxes:
            key = [box.address, box.domain]
            families["recipients"].add_metric(key, box.recipients_24h)
            if box.recipients_limit is not None:
                families["limit"].add_metric(key, box.recipients_limit)
            families["cold"].add_metric(key, box.cold_today)
            families["cap"].add_metric(key, box.cold_cap)
            if box.sync_lag is not None:
                families["lag"].add_metric(key, box.sync_lag)
            families["score"].add_metric(key, box.health_score)
        yield from families.values()
        score = GaugeMetricFamily(
            "mailfleet_domain_health_score", "Domain health score, 0 to 100.", labels=["domain"]
        )
        flagged = GaugeMetricFamily(
            "mailfleet_domain_flagged",
            "1 when most of the domain's mailboxes are paused.",
            labels=["domain"],
        )
        for domain in m.domains:
            score.add_metric([domain.name], domain.health_score)
            flagged.add_metric([domain.name], int(domain.flagged))
        yield score
        yield flagged


class FaultCollector(Collector):
    """The faults this process survived, by component (``mailfleet_process_faults``)."""

    def __init__(self, faults: dict[str, int]) -> None:
        self.faults = faults

    def collect(self) -> Iterator[Metric]:
        """One family: faults by component since the process started."""
        family = GaugeMetricFamily(
            "mailfleet_process_faults",
            "Faults logged and survived by this process since it started, by component.",
            labels=["component"],
        )
        for component, count in sorted(self.faults.items()):
            family.add_metric([component], count)
        yield family


def render(metrics: FleetMetrics) -> bytes:
    """The Prometheus text exposition of ``metrics``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(metrics))
    registry.register(FaultCollector(metrics.faults))
    return generate_latest(registry)
