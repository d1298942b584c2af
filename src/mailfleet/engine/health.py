"""The health pass: gather evidence, decide, pause mailboxes that passed a threshold.

:func:`apply_health` is what the engine's loop (and ``mailfleet run``) calls every
few minutes; it is idempotent: a mailbox already paused or disconnected is left
alone, and one a person resumed after a health pause is judged only on evidence
that arrived after the resume (see :mod:`mailfleet.deliverability.health`).
A pause writes the mailbox's status and reason, frees its queued first steps for
other mailboxes, and records a ``mailbox.paused`` event whose data carries
``source: health``, the rule, the evidence and the resume command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import update

from mailfleet.deliverability.health import (
    DomainHealth,
    HealthPolicy,
    MailboxHealth,
    assess_fleet,
)
from mailfleet.store import Database, Enrollment, EnrollmentStatus, Mailbox, MailboxStatus
from mailfleet.store import repository as repo
from mailfleet.store import warmup as warmup_store
from mailfleet.store.health import HEALTH_SOURCE, mailbox_evidence


@dataclass(frozen=True, slots=True)
class Paused:
    """A mailbox this pass paused."""

    mailbox_id: int
    address: str
    rule: str
    reason: str
    resume: str  # the command that lets it send again


@dataclass(slots=True)
class HealthReport:
    """What one health pass saw and did."""

    at: datetime
    mailboxes: list[MailboxHealth] = field(default_factory=list)
    domains: list[DomainHealth] = field(default_factory=list)
    paused: list[Paused] = field(default_factory=list)

    @property
    def flagged_domains(self) -> list[DomainHealth]:
        """Domains whose mailboxes are mostly paused."""
        return [d for d in self.domains if d.flagged]


def resume_command(address: str) -> str:
    """The command a person runs to let ``address`` send again."""
    return f"mailfleet mailbox resume {address}"


async def apply_health(
    db: Database,
    now: datetime,
    *,
    policy: HealthPolicy | None = None,
    workspace_id: int | None = None,
    junk_shares: Mapping[int, float] | None = None,
) -> HealthReport:
    """Assess every mailbox and domain at ``now``; pause active mailboxes that must stop."""
    rules = policy or HealthPolicy()
    report = HealthReport(at=now)
    async with db.session() as session:
        if junk_shares is None:  # spam placement as the warmup peers measured it
            junk_shares = await warmup_store.junk_shares(session, now, rules.window.days)
        evidence = await mailbox_evidence(
            session, now, rules, workspace_id=workspace_id, junk_shares=junk_shares
        )
        report.mailboxes, report.domains = assess_fleet(evidence, rules)
        for health in report.mailboxes:
            decision = health.pause
            if decision is None or health.evidence.status != MailboxStatus.ACTIVE:
                continue
            # Lock-free re-check: a person or the engine may have changed it meanwhile.
            mailbox = await session.get(Mailbox, health.evidence.mailbox_id)
            if mailbox is None or mailbox.status != MailboxStatus.ACTIVE:
                continue
            resume = resume_command(mailbox.address)
            reason = f"auto-paused by health: {decision.reason}; resume with `{resume}`"
            mailbox.status = MailboxStatus.PAUSED
            mailbox.status_reason = reason
            mailbox.paused_until = None
            await session.execute(
                update(Enrollment)
                .where(
                    Enrollment.mailbox_id == mailbox.id,
                    Enrollment.next_step == 1,
                    Enrollment.status == EnrollmentStatus.ACTIVE,
                )
                .values(mailbox_id=None)
                .execution_options(synchronize_session=False)
            )
            event = repo.add_event(
                session,
                workspace_id=mailbox.workspace_id,
                at=now,
                kind="mailbox.paused",
                message=reason,
                mailbox_id=mailbox.id,
            )
            event.data = {
                "source": HEALTH_SOURCE,
                "rule": decision.rule,
                "rate": round(decision.rate, 6),
                "threshold": decision.threshold,
                "sends": decision.sends,
                "events": decision.events,
                "resume": resume,
            }
            report.paused.append(
                Paused(mailbox.id, mailbox.address, decision.rule, decision.reason, resume)
            )
    return report
