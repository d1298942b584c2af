"""A person resolves unknown sends: the lead's sequence goes on as the decision says."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.world import build_world
from mailfleet.clock import VirtualClock
from mailfleet.sandbox import Sandbox
from mailfleet.services import sends
from mailfleet.services.errors import ServiceError
from mailfleet.store import Enrollment, Event, Lead, Send, SendStatus


async def test_sent_resend_and_skip_each_continue_the_sequence(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=1, leads=3, steps=2)
    await world.engine.run_until(clock.now() + timedelta(hours=2))
    # The state a crash while submitting leaves once the Sent folder was searched in vain.
    async with world.db.session() as session:
        rows = (
            await session.execute(
                select(Send, Enrollment, Lead.email)
                .join(Enrollment, Enrollment.id == Send.enrollment_id)
                .join(Lead)
                .order_by(Lead.email)
            )
        ).all()
        assert len(rows) == 3
        ids = {}
        for send, enrollment, email in rows:
            send.status = SendStatus.UNKNOWN
            send.reconciled_at = clock.now()
            enrollment.next_step, enrollment.next_due_at = 1, None
            enrollment.last_message_id = enrollment.thread_message_id = None
            enrollment.references = []
            ids[email] = (send.id, send.message_id)
    assert [u.id for u in await sends.unknown_sends(world.db)] == sorted(i for i, _ in ids.values())
    delivered_first = {a: len(sandbox.store.messages(a)) for a in ids}
    assert set(delivered_first.values()) == {1}

    at = clock.now()
    done = await sends.resolve(world.db, ids["lead0@prospect.example"][0], "sent", at=at)
    assert done.status == "sent" and done.next_due_at is not None
    again = await sends.resolve(world.db, ids["lead1@prospect.example"][0], "resend", at=at)
    assert again.status == "deferred" and again.next_due_at == at
    skipped = await sends.resolve(world.db, ids["lead2@prospect.example"][0], "skip", at=at)
    assert skipped.status == "failed" and skipped.next_due_at == at + timedelta(days=1)
    assert await sends.unknown_sends(world.db) == []
    with pytest.raises(ServiceError, match="not unknown"):
        await sends.resolve(world.db, ids["lead0@prospect.example"][0], "skip", at=at)
    with pytest.raises(ServiceError, match="no send 999"):
        await sends.resolve(world.db, 999, "sent", at=at)

    await world.engine.run_until(clock.now() + timedelta(days=3))
    await world.engine.close()

    def got(address: str) -> list[tuple[str, str | None, str]]:
        out = []
        for stored in sandbox.store.messages(address):
            msg = message_from_bytes(stored.raw, policy=policy.default)
            out.append((str(msg["Message-ID"]), msg["In-Reply-To"], str(msg["Subject"])))
        return out

    first0, first1, _ = (ids[f"lead{i}@prospect.example"][1] for i in range(3))
    lead0 = got("lead0@prospect.example")
    assert len(lead0) == 2 and lead0[1][1] == first0  # the follow-up threads to it
    lead1 = got("lead1@prospect.example")
    # Resent once with its Message-ID, then the follow-up threads to it.
    assert [m[0] for m in lead1[:2]] == [first1, first1] and len(lead1) == 3
    assert lead1[2][1] == first1
    lead2 = got("lead2@prospect.example")
    # Skipped: only the follow-up, unthreaded, with the first step's subject.
    assert len(lead2) == 2 and lead2[1][1] is None and lead2[1][2] == "Hello Co 2"
    async with world.db.session() as session:
        events = (
            await session.scalars(select(Event.message).where(Event.kind == "send.resolved"))
        ).all()
    assert sorted(m.rsplit(" ", 3)[-3] for m in events) == ["resend", "sent", "skip"]
    await world.db.close()
