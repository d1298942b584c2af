"""Lead import into a campaign: the bulk path against the ORM one, on SQLite.

Parses an Apollo-style export (from ``bench/lead_import.py``) once, then stores and
enrolls every lead in a fresh database with ``store.imports.import_into_campaign``
(executemany batches, dedupe by chunked lookups) and, as the baseline measured in
the same run, the plain ORM way: a Lead and an Enrollment object per row, flushed.
Both in one transaction, as ``mailfleet leads import`` does.

    python bench/lead_store.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from lead_import import make_csv

from mailfleet.clock import utc
from mailfleet.leads import ParsedLead, parse_leads
from mailfleet.store import Campaign, Database, Enrollment, Lead, Workspace
from mailfleet.store.imports import import_into_campaign

NOW = utc(2026, 3, 2, 9)


async def fresh(folder: Path, name: str) -> tuple[Database, int]:
    db = Database(f"sqlite+aiosqlite:///{folder / name}")
    await db.migrate()
    async with db.session() as session:
        ws = Workspace(slug="w", name="W", created_at=NOW)
        session.add(ws)
        await session.flush()
        campaign = Campaign(workspace_id=ws.id, name="C", created_at=NOW)
        session.add(campaign)
        await session.flush()
        return db, campaign.id


async def bulk(folder: Path, leads: tuple[ParsedLead, ...]) -> tuple[float, int]:
    db, campaign_id = await fresh(folder, "bulk.db")
    start = time.perf_counter()
    async with db.session() as session:
        campaign = await session.get(Campaign, campaign_id)
        assert campaign is not None
        report = await import_into_campaign(session, campaign, leads, NOW, source="bench.csv")
    elapsed = time.perf_counter() - start
    await db.close()
    return elapsed, report.enrolled


async def orm(folder: Path, leads: tuple[ParsedLead, ...]) -> tuple[float, int]:
    db, campaign_id = await fresh(folder, "orm.db")
    start = time.perf_counter()
    async with db.session() as session:
        rows = [
            Lead(
                workspace_id=1,
                email=lead.email,
                email_normalized=lead.email_normalized,
                first_name=lead.first_name,
                last_name=lead.last_name,
                company=lead.company,
                title=lead.title,
                timezone=lead.timezone,
                fields=dict(lead.fields),
                source=f"bench.csv row {lead.row}",
                created_at=NOW,
            )
            for lead in leads
        ]
        session.add_all(rows)
        await session.flush()
        session.add_all(
            Enrollment(
                campaign_id=campaign_id,
                lead_id=row.id,
                next_step=1,
                next_due_at=NOW,
                references=[],
                created_at=NOW,
                updated_at=NOW,
            )
            for row in rows
        )
        await session.flush()
    elapsed = time.perf_counter() - start
    await db.close()
    return elapsed, len(rows)


async def main() -> None:
    """Measure both paths and print the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    text = make_csv(args.rows)
    start = time.perf_counter()
    parsed = parse_leads(io.StringIO(text, newline=""), source="bench.csv")
    parse_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bulk_s, bulk_n = await bulk(folder, parsed.leads)
        orm_s, orm_n = await orm(folder, parsed.leads)
    assert bulk_n == orm_n == len(parsed.leads)
    print(f"rows: {args.rows:,}  valid leads: {len(parsed.leads):,}")
    print(f"parse            : {parse_s:7.2f} s")
    print(f"bulk store+enroll: {bulk_s:7.2f} s  {bulk_n / bulk_s:10,.0f} leads/s")
    print(f"ORM store+enroll : {orm_s:7.2f} s  {orm_n / orm_s:10,.0f} leads/s (baseline)")
    print(
        f"RESULT import_s={parse_s + bulk_s:.2f} store_s={bulk_s:.2f} "
        f"baseline_store_s={orm_s:.2f} ratio={orm_s / bulk_s:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
