from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from mailfleet.clock import utc
from mailfleet.store import Base, Database, Mailbox, Workspace
from mailfleet.store.db import alembic_config, upgrade


@pytest.fixture
async def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    yield database  # type: ignore[misc]
    await database.close()


async def test_upgrade_creates_every_table_on_an_empty_database(db: Database) -> None:
    await db.migrate()
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        version = (await conn.execute(text("select version_num from alembic_version"))).scalar()
        mode = (await conn.execute(text("pragma journal_mode"))).scalar()
    assert set(Base.metadata.tables) <= tables
    assert version == ScriptDirectory.from_config(alembic_config(db.url)).get_current_head()
    assert mode == "wal"


async def test_migrations_match_the_models(db: Database) -> None:
    await db.migrate()
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
        )
    assert diff == []


async def test_upgrade_is_idempotent_and_times_come_back_in_utc(db: Database) -> None:
    await db.migrate()
    await db.migrate()
    async with db.session() as session:
        session.add(Workspace(slug="w", name="W", created_at=utc(2026, 3, 2, 9, 30)))
    async with db.session() as session:
        ws = (await session.scalars(select(Workspace))).one()
    assert ws.created_at == utc(2026, 3, 2, 9, 30)
    assert ws.created_at.tzinfo is not None


async def test_naive_datetimes_are_refused(db: Database) -> None:
    await db.migrate()
    with pytest.raises(Exception, match="naive datetime"):
        async with db.session() as session:
            session.add(Workspace(slug="w", name="W", created_at=datetime(2026, 3, 2)))


async def test_0002_keeps_existing_mailboxes_at_full_speed(db: Database) -> None:
    await upgrade(db.url, "0001")
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
    await db.migrate()
    async with db.session() as session:
        mailbox = await session.get(Mailbox, 1)
    assert mailbox is not None
    assert (mailbox.failure_streak, mailbox.rate_factor, mailbox.slowed_until) == (0, None, None)
