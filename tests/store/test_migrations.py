from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from mailfleet.clock import utc
from mailfleet.store import Base, Database, Workspace


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
    assert version == "0001"
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
