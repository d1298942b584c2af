"""``mailfleet health``: bounce, complaint and auth-failure rates, scores and pauses.

Per mailbox and per sending domain over the last 7 and 28 days. Read-only unless
``--apply``, which runs the same pass as ``mailfleet run`` does every few minutes:
mailboxes past a threshold are paused with the reason and the resume command.
``--json`` prints ``{"at", "mailboxes": [...], "domains": [...], "paused": [...]}``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from mailfleet.cli.common import console, with_db
from mailfleet.cli.common import workspace as find_workspace
from mailfleet.clock import SystemClock
from mailfleet.deliverability.health import (
    DomainHealth,
    HealthPolicy,
    MailboxHealth,
    Rates,
    assess_fleet,
)
from mailfleet.engine.health import HealthReport, apply_health
from mailfleet.services.errors import ServiceError
from mailfleet.store import Database
from mailfleet.store.health import mailbox_evidence


def _rates(rates: Rates) -> dict[str, float | None]:
    return {
        "hard_bounce": rates.hard_bounce,
        "complaint": rates.complaint,
        "auth_failure": rates.auth_failure,
    }


def _mailbox_json(m: MailboxHealth) -> dict[str, Any]:
    e = m.evidence
    return {
        "address": e.address,
        "domain": e.domain,
        "status": e.status,
        "score": m.score,
        "sends_7d": e.week.sends,
        "sends_28d": e.month.sends,
        "hard_bounces_28d": e.month.hard_bounces,
        "soft_bounces_28d": e.month.soft_bounces,
        "complaints_28d": e.month.complaints,
        "auth_failures_28d": e.month.auth_failures,
        "junk_share_28d": e.junk_share_28d,
        "rates_7d": _rates(m.week),
        "rates_28d": _rates(m.month),
        "acknowledged_at": e.acknowledged_at.isoformat() if e.acknowledged_at else None,
        "pause": None
        if m.pause is None
        else {"rule": m.pause.rule, "reason": m.pause.reason, "rate": m.pause.rate},
        "notes": list(m.notes),
    }


def _domain_json(d: DomainHealth) -> dict[str, Any]:
    return {
        "domain": d.name,
        "mailboxes": d.mailboxes,
        "paused": d.paused,
        "disconnected": d.disconnected,
        "score": d.score,
        "sends_28d": d.month.sends,
        "rates_28d": _rates(d.rates),
        "flagged": d.flagged,
        "reason": d.reason,
    }


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def health(
    workspace: Annotated[str | None, typer.Option("--workspace", help="Workspace slug.")] = None,
    apply: Annotated[
        bool,
        typer.Option("--apply", help="Pause mailboxes past a threshold now (as `run` does)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Health of every mailbox and sending domain: bounces, complaints, auth failures, score."""

    async def load(db: Database) -> HealthReport:
        now = SystemClock().now()
        async with db.session() as session:
            try:
                found = await find_workspace(session, workspace)
            except ServiceError:
                if workspace is not None:
                    raise
                return HealthReport(at=now)  # nothing set up yet
            workspace_id = found.id
            if not apply:
                policy = HealthPolicy()
                evidence = await mailbox_evidence(session, now, policy, workspace_id=workspace_id)
                boxes, domains = assess_fleet(evidence, policy)
                return HealthReport(at=now, mailboxes=boxes, domains=domains)
        return await apply_health(db, now, workspace_id=workspace_id)

    report = with_db(load)
    if as_json:
        data = {
            "at": report.at.isoformat(),
            "mailboxes": [_mailbox_json(m) for m in report.mailboxes],
            "domains": [_domain_json(d) for d in report.domains],
            "paused": [
                {"address": p.address, "rule": p.rule, "reason": p.reason, "resume": p.resume}
                for p in report.paused
            ],
        }
        print(json.dumps(data, indent=2))
        return
    if not report.mailboxes:
        console.print("no mailboxes", highlight=False)
        return
    boxes = Table(title="Mailbox health (cold sends, 28 days)")
    for column in ("mailbox", "status", "score", "sends 7d/28d", "hard bounce", "complaint"):
        boxes.add_column(column, justify="left" if column in ("mailbox", "status") else "right")
    boxes.add_column("auth fail", justify="right")
    boxes.add_column("junk", justify="right")
    for m in report.mailboxes:
        e = m.evidence
        boxes.add_row(
            e.address,
            e.status,
            str(m.score),
            f"{e.week.sends}/{e.month.sends}",
            f"{e.month.hard_bounces} ({_pct(m.month.hard_bounce)})",
            f"{e.month.complaints} ({_pct(m.month.complaint, 2)})",
            str(e.month.auth_failures),
            _pct(e.junk_share_28d, 0),
        )
    console.print(boxes)
    domains = Table(title="Domain health")
    for column in ("domain", "mailboxes", "paused", "score", "hard bounce", "complaint"):
        domains.add_column(column, justify="left" if column == "domain" else "right")
    for d in report.domains:
        domains.add_row(
            d.name + (" [red]flagged[/]" if d.flagged else ""),
            str(d.mailboxes),
            str(d.paused),
            str(d.score),
            _pct(d.rates.hard_bounce),
            _pct(d.rates.complaint, 2),
        )
    console.print(domains)
    for m in report.mailboxes:
        if m.pause is not None and m.evidence.status == "active" and not apply:
            console.print(
                f"  [red]✗[/] {m.evidence.address} would be paused: {m.pause.reason} "
                "(`mailfleet health --apply`, or `mailfleet run`, pauses it)",
                highlight=False,
            )
        for note in m.notes:
            console.print(f"  [yellow]![/] {m.evidence.address}: {note}", highlight=False)
    for d in report.flagged_domains:
        console.print(f"  [red]✗[/] {d.name}: {d.reason}", highlight=False)
    for p in report.paused:
        console.print(
            f"  [red]paused[/] {p.address}: {p.reason}; resume with `{p.resume}`", highlight=False
        )
