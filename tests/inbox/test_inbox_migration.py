"""Migration 0004 adds the inbox tables and the POP3 columns, and can be undone."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text

from mailfleet.store import Database
from mailfleet.store.db import alembic_config, upgrade

TABLES = {"mailbox_folder_state", "pop3_seen", "inbound_message"}


async def tables_and_columns(db: Database) -> tuple[set[str], set[str]]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(
            lambda c: (
                set(inspect(c).get_table_names()),
                {col["name"] for col in inspect(c).get_columns("mailbox")},
            )
        )


async def test_0004_upgrades_a_database_with_mailboxes_and_downgrades(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        await upgrade(db.url, "0003")
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "insert into workspace (id, slug, name, created_at) "
                    "values (1, 'w', 'W', '2026-03-02 09:00:00')"
                )
            )
            await conn.execute(
                text(
                    "insert into domain (id, workspace_id, name, provider, created_at) "
                    "values (1, 1, 'd.test', 'microsoft365', '2026-03-02 09:00:00')"
                )
            )
            await conn.execute(
                text(
                    "insert into mailbox (id, workspace_id, domain_id, address, display_name, "
                    "provider, smtp_host, smtp_port, smtp_security, auth_kind, timezone, "
                    "warmup_enabled, tags, status, created_at) values (1, 1, 1, 'a@d.test', '', "
                    "'microsoft365', 'h', 587, 'starttls', 'password', 'UTC', 1, '[]', 'active', "
                    "'2026-03-02 09:00:00')"
                )
            )
        await upgrade(db.url, "0004")
        tables, columns = await tables_and_columns(db)
        assert tables >= TABLES and {"pop3_host", "pop3_port", "pop3_security"} <= columns
        async with db.engine.connect() as conn:
            row = (await conn.execute(text("select address, pop3_host from mailbox"))).one()
        assert tuple(row) == ("a@d.test", None)
        await asyncio.to_thread(command.downgrade, alembic_config(db.url), "0003")
        tables, columns = await tables_and_columns(db)
        assert not TABLES & tables and "pop3_host" not in columns
    finally:
        await db.close()
