"""The public endpoint: RFC 8058 one-click POST, the confirmation page, bad tokens."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from fakes.rows import enroll_leads
from mailfleet.api.public import create_public_app
from mailfleet.clock import VirtualClock, utc
from mailfleet.content import unsubscribe
from mailfleet.store import (
    Campaign,
    CampaignStatus,
    Database,
    Enrollment,
    Event,
    Lead,
    Step,
    Suppression,
    Workspace,
)

OLD_KEY, NEW_KEY = b"o" * 32, b"n" * 32


@dataclass
class Site:
    db: Database
    client: httpx.AsyncClient
    workspace_id: int
    leads: dict[str, int]
    keys: list[bytes]

    def url(self, email: str, key: bytes = NEW_KEY) -> str:
        return f"/unsubscribe/{unsubscribe.sign(key, self.workspace_id, self.leads[email])}"

    async def statuses(self, email: str) -> list[str]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(Enrollment.status)
                .where(Enrollment.lead_id == self.leads[email])
                .order_by(Enrollment.campaign_id)
            )
            return [str(s) for s in rows]

    async def suppressed(self) -> list[str]:
        async with self.db.session() as session:
            return list(await session.scalars(select(Suppression.value).order_by(Suppression.id)))

    async def unsubscribe_events(self) -> list[str]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(Event.message).where(Event.kind == "unsubscribe").order_by(Event.id)
            )
            return list(rows)


def _campaign(workspace_id: int, name: str, now: object) -> Campaign:
    campaign = Campaign(
        workspace_id=workspace_id,
        name=name,
        status=CampaignStatus.ACTIVE,
        timezone="UTC",
        window_days=[1, 2, 3, 4, 5, 6, 7],
        window_start_minute=0,
        window_end_minute=24 * 60,
        use_lead_timezone=False,
        mailbox_tags=[],
        settings={},
        created_at=now,
        started_at=now,
    )
    campaign.steps.append(Step(position=1, subject="Hi", body_text="Hello", variants={}))
    return campaign


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    clock = VirtualClock(utc(2026, 3, 2, 9))
    now = clock.now()
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'public.db'}")
    await db.migrate()
    async with db.session() as session:
        ws = Workspace(slug="w", name="W", created_at=now)
        session.add(ws)
        await session.flush()
        first, second = _campaign(ws.id, "A", now), _campaign(ws.id, "B", now)
        session.add_all([first, second])
        await session.flush()
        people = [("ann@acme.example", {}), ("bob@acme.example", {})]
        await enroll_leads(session, ws.id, first.id, people, now)
        ann = await session.scalar(select(Lead.id).where(Lead.email == "ann@acme.example"))
        session.add(
            Enrollment(
                campaign_id=second.id,
                lead_id=ann,
                next_step=1,
                next_due_at=now,
                references=[],
                created_at=now,
                updated_at=now,
            )
        )
        leads = {e: i for e, i in (await session.execute(select(Lead.email, Lead.id))).all()}
        workspace_id = ws.id
    keys = [NEW_KEY, OLD_KEY]
    app = create_public_app(db, clock, lambda: keys)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://links.example") as client:
        yield Site(db, client, workspace_id, leads, keys)
    await db.close()


ONE_CLICK = {"List-Unsubscribe": "One-Click"}


async def test_get_shows_a_page_and_changes_nothing(site: Site) -> None:
    page = await site.client.get(site.url("ann@acme.example"))
    assert page.status_code == 200
    assert '<form method="post"' in page.text and "a***@acme.example" in page.text
    assert "ann@acme.example" not in page.text
    assert page.headers["cache-control"] == "no-store" and "set-cookie" not in page.headers
    assert await site.statuses("ann@acme.example") == ["active", "active"]
    assert await site.suppressed() == [] and await site.unsubscribe_events() == []


async def test_one_click_post_unsubscribes_from_every_campaign_once(site: Site) -> None:
    done = await site.client.post(site.url("ann@acme.example"), data=ONE_CLICK)
    assert done.status_code == 200 and "unsubscribed" in done.text
    assert await site.statuses("ann@acme.example") == ["unsubscribed", "unsubscribed"]
    assert await site.statuses("bob@acme.example") == ["active"]
    assert await site.suppressed() == ["ann@acme.example"]
    again = await site.client.post(site.url("ann@acme.example"), data=ONE_CLICK)
    assert again.status_code == 200
    events = await site.unsubscribe_events()
    assert len(events) == 1 and "(one-click)" in events[0] and "2 sequence(s)" in events[0]
    page = await site.client.get(site.url("ann@acme.example"))
    assert "You are unsubscribed" in page.text and "<form" not in page.text


async def test_multipart_one_click_body_is_accepted(site: Site) -> None:
    done = await site.client.post(
        site.url("bob@acme.example"), files={"List-Unsubscribe": (None, "One-Click")}
    )
    assert done.status_code == 200
    assert await site.suppressed() == ["bob@acme.example"]


async def test_the_page_button_posts_and_is_recorded_as_the_page(site: Site) -> None:
    page = await site.client.get(site.url("bob@acme.example"))
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]+)"', page.text))
    done = await site.client.post(site.url("bob@acme.example"), data=fields)
    assert done.status_code == 200
    assert await site.statuses("bob@acme.example") == ["unsubscribed"]
    assert "(page)" in (await site.unsubscribe_events())[0]


async def test_a_link_signed_before_a_key_rotation_still_works(site: Site) -> None:
    old = site.url("ann@acme.example", key=OLD_KEY)
    assert (await site.client.post(old, data=ONE_CLICK)).status_code == 200
    assert await site.suppressed() == ["ann@acme.example"]


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "1.2.3",
        "1.1." + "0" * 32,  # right shape, wrong signature
        "1." + "9" * 40 + "." + "a" * 32,
        "x" * 5000,
        "%00%0d%0a",
    ],
)
async def test_a_bad_token_gets_400_and_changes_nothing(site: Site, token: str) -> None:
    for response in (
        await site.client.get(f"/unsubscribe/{token}"),
        await site.client.post(f"/unsubscribe/{token}", data=ONE_CLICK),
    ):
        assert response.status_code == 400, response.text
        assert "Nothing was changed" in response.text
    assert await site.suppressed() == [] and await site.unsubscribe_events() == []


async def test_a_tampered_lead_id_is_refused(site: Site) -> None:
    good = site.url("ann@acme.example").rsplit("/", 1)[1]
    workspace, _, mac = good.split(".")
    forged = f"{workspace}.{site.leads['bob@acme.example']}.{mac}"
    response = await site.client.post(f"/unsubscribe/{forged}", data=ONE_CLICK)
    assert response.status_code == 400
    assert await site.statuses("bob@acme.example") == ["active"]


@pytest.mark.parametrize(
    "body",
    [b"", b"List-Unsubscribe=Yes", b"confirm=no", b"\xff\xfe=\x00", b"a=" + b"x" * 20_000],
)
async def test_a_post_without_the_one_click_body_changes_nothing(site: Site, body: bytes) -> None:
    response = await site.client.post(
        site.url("ann@acme.example"),
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400 and "List-Unsubscribe=One-Click" in response.text
    assert await site.statuses("ann@acme.example") == ["active", "active"]


async def test_a_deleted_contact_gets_404(site: Site) -> None:
    url = site.url("bob@acme.example")
    async with site.db.session() as session:
        bob = await session.get(Lead, site.leads["bob@acme.example"])
        await session.delete(bob)
    assert (await site.client.post(url, data=ONE_CLICK)).status_code == 404
    async with site.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Suppression)) == 0
