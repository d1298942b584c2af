"""A step that cannot be composed: a bug of ours holds the lead, bad data stops it, visibly."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mailfleet.clock import VirtualClock
from mailfleet.content import TemplateError, TemplateProblem
from mailfleet.engine.compose import Composed, Composer
from mailfleet.sandbox import Sandbox
from mailfleet.store import Enrollment, EnrollmentStatus, Event

from .world import build_world


class FailsFirst(Composer):
    """The real composer, failing the first ``times`` calls with ``error``."""

    def __init__(self, error: Exception, times: int = 1) -> None:
        super().__init__("https://mf.example", b"k" * 32)
        self.error, self.left = error, times

    def compose(self, **kwargs: Any) -> Composed:
        if self.left:
            self.left -= 1
            raise self.error
        return super().compose(**kwargs)


async def state(world: Any) -> tuple[list[Enrollment], list[str]]:
    async with world.db.session() as session:
        rows = list((await session.scalars(select(Enrollment))).all())
        events = list(
            await session.scalars(select(Event.message).where(Event.kind == "send.not_composed"))
        )
    return rows, events


async def test_a_bug_while_composing_keeps_the_lead_and_retries_later(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=1, leads=1, steps=1)
    world.engine.composer = FailsFirst(RuntimeError("a bug"))
    try:
        report = await world.engine.tick()
        assert report.errors and "RuntimeError: a bug" in report.errors[0]
        (enrollment,), events = await state(world)
        assert enrollment.status == EnrollmentStatus.ACTIVE
        assert enrollment.next_due_at is not None and "keeps its place" in events[0]
        await world.engine.run_until(clock.now() + timedelta(hours=2))
    finally:
        await world.engine.close()
    (enrollment,), _ = await state(world)
    assert enrollment.status == EnrollmentStatus.COMPLETED
    assert len(sandbox.prospects.deliveries()) == 1


async def test_data_the_template_refuses_stops_that_lead_with_the_reason(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    world = await build_world(tmp_path, clock, sandbox, mailboxes=1, leads=1, steps=1)
    refused = TemplateError("step 1 body", [TemplateProblem(1, "company is undefined")])
    world.engine.composer = FailsFirst(refused)
    try:
        await world.engine.tick()
    finally:
        await world.engine.close()
    (enrollment,), events = await state(world)
    assert enrollment.status == EnrollmentStatus.STOPPED
    assert "cannot render step 1" in (enrollment.stop_reason or "") and events
