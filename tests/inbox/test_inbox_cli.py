"""``mailfleet inbox`` and the counts the deliverability rules read, over recorded messages."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailfleet.cli.main import app
from mailfleet.store import (
    Campaign,
    Database,
    Domain,
    InboundMessage,
    Lead,
    Mailbox,
    Send,
    SendStatus,
    Workspace,
)
from mailfleet.store.inbox_queries import bounce_rates, inbound_counts, unified_inbox

runner = CliRunner()
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
# (mailbox, kind, minutes after T0, campaign, folder, hard)
MESSAGES = [
    ("a@one.example", "reply", 10, "Spring", "INBOX", None),
    ("a@one.example", "auto_reply", 20, "Spring", "INBOX", None),
    ("b@one.example", "reply", 30, "Autumn", "Junk", None),
    ("c@two.example", "unsubscribe", 40, "Spring", "INBOX", None),
    ("c@two.example", "bounce", 50, "Spring", "INBOX", True),
    ("c@two.example", "bounce", 60, "Spring", "INBOX", False),
    ("a@one.example", "complaint", 70, "Spring", "INBOX", None),
    ("b@one.example", "other", 80, None, "INBOX", None),
]


async def populate(url: str) -> None:
    db = Database(url)
    await db.migrate()
    async with db.session() as session:
        ws = Workspace(slug="w", name="W", created_at=T0)
        session.add(ws)
        await session.flush()
        domains = {}
        for name in ("one.example", "two.example"):
            domains[name] = Domain(workspace_id=ws.id, name=name, provider="generic", created_at=T0)
            session.add(domains[name])
        await session.flush()
        boxes = {}
        for address in ("a@one.example", "b@one.example", "c@two.example"):
            boxes[address] = Mailbox(
                workspace_id=ws.id,
                domain_id=domains[address.rpartition("@")[2]].id,
                address=address,
                provider="generic",
                smtp_host="h",
                smtp_port=587,
                smtp_security="starttls",
                auth_kind="password",
                created_at=T0,
            )
            session.add(boxes[address])
        campaigns = {
            n: Campaign(workspace_id=ws.id, name=n, created_at=T0) for n in ("Spring", "Autumn")
        }
        session.add_all(campaigns.values())
        lead = Lead(
            workspace_id=ws.id,
            email="ana@p.example",
            email_normalized="ana@p.example",
            fields={},
            created_at=T0,
        )
        session.add(lead)
        await session.flush()
        for n, address in enumerate(["a@one.example"] * 10 + ["c@two.example"] * 4):
            session.add(
                Send(
                    workspace_id=ws.id,
                    mailbox_id=boxes[address].id,
                    message_id=f"<s{n}@x>",
                    from_address=address,
                    to_address="ana@p.example",
                    subject="S",
                    status=SendStatus.SENT,
                    claimed_at=T0 - timedelta(hours=1),
                )
            )
        for n, (address, kind, minutes, campaign, folder, hard) in enumerate(MESSAGES):
            session.add(
                InboundMessage(
                    workspace_id=ws.id,
                    mailbox_id=boxes[address].id,
                    dedupe_key=f"<m{n}@p.example>",
                    message_id=f"<m{n}@p.example>",
                    folder=folder,
                    source=f"1:{n}",
                    kind=kind,
                    from_address="ana@p.example",
                    from_name="Ana",
                    subject=f"Re: message {n}",
                    text=f"text {n}\nsecond line",
                    received_at=T0 + timedelta(minutes=minutes),
                    synced_at=T0 + timedelta(minutes=minutes),
                    campaign_id=campaigns[campaign].id if campaign else None,
                    lead_id=lead.id,
                    hard=hard,
                    data={},
                )
            )
    await db.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'inbox.db'}"
    monkeypatch.setenv("MAILFLEET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MAILFLEET_DATABASE_URL", url)
    asyncio.run(populate(url))
    return url


def run_json(*args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["inbox", "--json", *args])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.output))


def test_inbox_lists_replies_across_mailboxes_newest_first(home: str) -> None:
    entries = run_json()
    assert [(e["kind"], e["mailbox"]) for e in entries] == [
        ("unsubscribe", "c@two.example"),
        ("reply", "b@one.example"),
        ("reply", "a@one.example"),
    ]
    first = entries[-1]
    assert set(first) == {
        "received_at",
        "kind",
        "mailbox",
        "folder",
        "from",
        "from_name",
        "subject",
        "text",
        "campaign",
        "lead",
        "matched_by",
    }
    assert first["campaign"] == "Spring" and first["received_at"] == "2026-03-02T09:10:00+00:00"


def test_inbox_filters_by_campaign_mailbox_and_kind(home: str) -> None:
    assert [e["kind"] for e in run_json("--campaign", "autumn")] == ["reply"]
    assert [e["kind"] for e in run_json("--mailbox", "A@one.example")] == ["reply"]
    kinds = [e["kind"] for e in run_json("--kind", "bounce", "--kind", "auto-reply")]
    assert kinds == ["bounce", "bounce", "auto_reply"]
    assert len(run_json("--kind", "all")) == len(MESSAGES)
    assert len(run_json("--kind", "all", "--limit", "2")) == 2


def test_inbox_table_and_bad_kind(home: str) -> None:
    table = runner.invoke(app, ["inbox"], env={"COLUMNS": "160"})
    assert table.exit_code == 0, table.output
    assert "Inbox" in table.output and "c@two.example" in table.output
    assert "reply (junk)" in table.output
    bad = runner.invoke(app, ["inbox", "--kind", "spam"])
    assert bad.exit_code == 2 and "unknown kind spam" in bad.output


def test_an_empty_installation_has_an_empty_inbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILFLEET_HOME", str(tmp_path / "fresh"))
    monkeypatch.delenv("MAILFLEET_DATABASE_URL", raising=False)
    result = runner.invoke(app, ["inbox"])
    assert result.exit_code == 0 and "no messages" in result.output
    assert json.loads(runner.invoke(app, ["inbox", "--json"]).output) == []


def test_bounce_and_complaint_counts_per_mailbox_and_domain(home: str) -> None:
    async def query() -> None:
        db = Database(home)
        async with db.session() as session:
            by_mailbox = {r.key: r for r in await bounce_rates(session, 1, T0 - timedelta(days=1))}
            by_domain = {
                r.key: r
                for r in await bounce_rates(session, 1, T0 - timedelta(days=1), by="domain")
            }
            counts = await inbound_counts(session, 1)
            everything = await unified_inbox(session, workspace_id=1, kinds=None)
        await db.close()
        a, c = by_mailbox["a@one.example"], by_mailbox["c@two.example"]
        assert (a.sends, a.hard_bounces, a.soft_bounces, a.complaints) == (10, 0, 0, 1)
        assert (c.sends, c.hard_bounces, c.soft_bounces) == (4, 1, 1)
        assert c.hard_bounce_rate == 0.25 and a.complaint_rate == 0.1
        assert "b@one.example" not in by_mailbox  # neither sent nor got anything back
        assert by_domain["one.example"].sends == 10 and by_domain["two.example"].hard_bounces == 1
        assert counts["reply"] == 2 and counts["hard_bounce"] == 1 and counts["in_junk"] == 1
        assert len(everything) == len(MESSAGES)

    asyncio.run(query())
