"""Migration 0003 on a database with data: domains filled in, counts keep working."""

from pathlib import Path

from sqlalchemy import text

from mailfleet.store import Database
from mailfleet.store.db import upgrade


async def test_0003_fills_lead_and_recent_send_domains(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    await upgrade(db.url, "0002")
    async with db.engine.begin() as conn:
        for sql in (
            "insert into workspace (id, slug, name, created_at) values (1, 'w', 'W', '2026-03-02')",
            "insert into domain (id, workspace_id, name, provider, created_at) "
            "values (1, 1, 'd.test', 'microsoft365', '2026-03-02')",
            "insert into mailbox (id, workspace_id, domain_id, address, display_name, provider, "
            "smtp_host, smtp_port, smtp_security, auth_kind, timezone, warmup_enabled, tags, "
            "status, created_at) values (1, 1, 1, 'a@d.test', '', 'microsoft365', 'h', 587, "
            "'starttls', 'password', 'UTC', 1, '[]', 'active', '2026-03-02')",
            "insert into lead (id, workspace_id, email, email_normalized, fields, created_at) "
            "values (1, 1, 'Ann@Acme.COM', 'ann@acme.com', '{}', '2026-03-02')",
            "insert into send (id, workspace_id, kind, mailbox_id, message_id, from_address, "
            "to_address, recipients, subject, status, attempts, claimed_at) values (1, 1, 'cold', "
            "1, '<m@d.test>', 'a@d.test', 'Ann@Acme.COM', 1, 's', 'sent', 1, "
            "datetime('now', '-1 hour'))",
        ):
            await conn.execute(text(sql))
    await db.migrate()
    async with db.engine.connect() as conn:
        lead = (await conn.execute(text("select email_domain from lead"))).scalar()
        send = (await conn.execute(text("select recipient_domain, reconciled_at from send"))).one()
        box = (await conn.execute(text("select warmup_enabled, warmup_ratio from mailbox"))).one()
    await db.close()
    assert lead == "acme.com"
    assert tuple(send) == ("acme.com", None)
    assert tuple(box) == (1, None)  # warmup stays on at the default ratio
