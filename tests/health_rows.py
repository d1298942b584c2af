"""Rows for health and metrics tests: a workspace's mailboxes, their sends and inbound reports."""

from __future__ import annotations

from datetime import datetime, timedelta

from mailfleet.clock import utc
from mailfleet.store import Database, Domain, InboundMessage, Mailbox, Send, Workspace

NOW = utc(2026, 3, 30, 12)


async def fleet(db: Database, addresses: list[str]) -> dict[str, int]:
    async with db.session() as session:
        ws = Workspace(slug="w", name="W", created_at=NOW - timedelta(days=90))
        session.add(ws)
        await session.flush()
        domains: dict[str, Domain] = {}
        ids = {}
        for address in addresses:
            name = address.partition("@")[2]
            if name not in domains:
                domains[name] = Domain(
                    workspace_id=ws.id, name=name, provider="generic", created_at=ws.created_at
                )
                session.add(domains[name])
                await session.flush()
            box = Mailbox(
                workspace_id=ws.id,
                domain_id=domains[name].id,
                address=address,
                provider="generic",
                smtp_host="h",
                smtp_port=587,
                smtp_security="starttls",
                auth_kind="password",
                tags=[],
                created_at=ws.created_at,
            )
            session.add(box)
            await session.flush()
            ids[address] = box.id
    return ids


sequence = iter(range(1, 1_000_000))


async def sends(
    db: Database,
    mailbox_id: int,
    count: int,
    at: datetime,
    *,
    status: str = "sent",
    outcome: str | None = None,
    kind: str = "cold",
) -> None:
    async with db.session() as session:
        for _ in range(count):
            n = next(sequence)
            session.add(
                Send(
                    workspace_id=1,
                    kind=kind,
                    mailbox_id=mailbox_id,
                    message_id=f"<{n}@s.example>",
                    from_address="x@s.example",
                    to_address=f"p{n}@p.example",
                    subject="s",
                    status=status,
                    outcome=outcome,
                    claimed_at=at,
                    finished_at=at,
                )
            )


async def inbound(
    db: Database,
    mailbox_id: int,
    count: int,
    at: datetime,
    *,
    kind: str = "bounce",
    hard: bool | None = True,
    status: str | None = "5.1.1",
) -> None:
    async with db.session() as session:
        for _ in range(count):
            n = next(sequence)
            session.add(
                InboundMessage(
                    workspace_id=1,
                    mailbox_id=mailbox_id,
                    dedupe_key=f"k{n}",
                    folder="INBOX",
                    source=f"1:{n}",
                    kind=kind,
                    received_at=at,
                    synced_at=at,
                    hard=hard,
                    status=status,
                    data={},
                )
            )
