"""Every Microsoft 365 row of the reply table, produced by the sandbox, and the engine's reaction.

Each row runs the same story on the virtual clock with two mailboxes of one tenant,
A (rep0, the one that misbehaves) and B (rep1), three leads and two steps:

1. t0: lead 0's first step goes from A, lead 1's from B; all healthy.
2. A fault is set on A. At t0+12h lead 2's first step is planned on A and refused:
   the Send row, the mailbox and the enrollment are checked right after that tick,
   then again an hour later (first step moved to B, bounced, stopped, or waiting).
3. At t0+1d the follow-ups are due: lead 1's goes from B; lead 0's waits for A when
   a person must act, or goes from A once the hold, the slowdown or the window ends.

Throughout, the fault counts the attempts the sandbox saw, proving that nothing
Microsoft punishes for repeating was repeated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import select

from mailfleet.clock import VirtualClock, utc
from mailfleet.engine.reaction import ESCALATE_AFTER
from mailfleet.engine.runtime import Engine, mailbox_policy
from mailfleet.limits import RampPolicy
from mailfleet.providers.outcomes import OutcomeKind
from mailfleet.sandbox import (
    SENT_ITEMS,
    MailboxBehaviour,
    Refusal,
    Reply,
    Sandbox,
    SubmissionLimits,
    fault,
)
from mailfleet.store import (
    Enrollment,
    EnrollmentStatus,
    Event,
    Lead,
    Mailbox,
    MailboxStatus,
    Send,
    SendStatus,
    Suppression,
)

from .world import TENANT, World, build_world

A, B = "rep0@sender.example", "rep1@sender.example"
LEAD = "lead{}@prospect.example"
PASSWORD = "pa55word"
APP_SCOPE = "https://outlook.office365.com/.default"


@dataclass(frozen=True)
class Row:
    fault: str
    kind: OutcomeKind
    code: int
    enhanced: str
    remedy: str  # words of the remedy the mailbox's reason (or the send's error) carries
    mailbox: str = "paused"  # paused (a person acts) | window (until it frees) | held | active
    first_step: str = "moved"  # moved | bounced | stopped | waits
    refusals: int = 1
    password: bool = False
    only_lead2: bool = False  # the fault concerns lead 2's address or message only
    hog_sessions: bool = False  # other clients hold A's 3 sessions instead of a fault
    rate_factor: float | None = None


ROWS = [
    Row("smtp_auth_disabled", OutcomeKind.PAUSE_MAILBOX, 535, "5.7.139", "Set-CASMailbox"),
    Row(
        "smtp_auth_disabled_tenant",
        OutcomeKind.PAUSE_MAILBOX,
        535,
        "5.7.139",
        "Set-TransportConfig",
    ),
    Row(
        "security_defaults",
        OutcomeKind.PAUSE_MAILBOX,
        535,
        "5.7.139",
        "Conditional Access",
        password=True,
    ),
    Row(
        "basic_auth_retired",
        OutcomeKind.PAUSE_MAILBOX,
        550,
        "5.7.30",
        "mailfleet mailbox connect",
        password=True,
    ),
    # 535 5.7.3: one forced token refresh and one more try, then the pause.
    Row("auth_unsuccessful", OutcomeKind.PAUSE_MAILBOX, 535, "5.7.3", "SMTP.SendAsApp", refusals=2),
    Row(
        "client_not_authenticated",
        OutcomeKind.PAUSE_MAILBOX,
        530,
        "5.7.57",
        "Authenticated SMTP",
    ),
    Row("ip_blocked", OutcomeKind.PAUSE_MAILBOX, 550, "5.7.708", "delisting"),
    Row("send_as_denied", OutcomeKind.PAUSE_MAILBOX, 550, "5.7.60", "Add-RecipientPermission"),
    Row("sender_throttled", OutcomeKind.PAUSE_MAILBOX, 550, "5.2.252", "throttle expires"),
    Row("banned_sender", OutcomeKind.PAUSE_MAILBOX, 550, "5.1.8", "Restricted entities"),
    Row("unregistered_domain", OutcomeKind.PAUSE_MAILBOX, 550, "5.7.750", "Domains"),
    Row("mailbox_full", OutcomeKind.PAUSE_MAILBOX, 554, "5.2.2", "Empty Sent Items"),
    Row("outbound_spam", OutcomeKind.PAUSE_MAILBOX, 554, "5.2.0", "Restricted entities"),
    Row(
        "recipient_quota",
        OutcomeKind.PAUSE_MAILBOX,
        554,
        "5.2.0",
        "rolling window frees",
        mailbox="window",
    ),
    Row(
        "tenant_recipient_limit",
        OutcomeKind.PAUSE_TENANT,
        550,
        "5.7.233",
        "every mailbox of this tenant",
        mailbox="window",
        first_step="waits",
    ),
    Row(
        "server_busy",
        OutcomeKind.SLOW,
        451,
        "4.7.500",
        "halve",
        mailbox="held",
        rate_factor=0.5,
    ),
    Row(
        "submission_rate",
        OutcomeKind.SLOW,
        550,
        "5.2.2",
        "halve",
        mailbox="held",
        rate_factor=0.5,
    ),
    Row(
        "concurrent_connections",
        OutcomeKind.SLOW,
        432,
        "4.3.2",
        "fewer connections",
        mailbox="held",
        hog_sessions=True,
        refusals=0,
    ),
    Row("temporary_error", OutcomeKind.RETRY, 451, "4.3.0", "backoff", mailbox="held"),
    Row(
        "recipient_not_found",
        OutcomeKind.DROP_RECIPIENT,
        550,
        "5.1.1",
        "suppress",
        mailbox="active",
        first_step="bounced",
        only_lead2=True,
    ),
    Row(
        "recipient_not_found_5_1_10",
        OutcomeKind.DROP_RECIPIENT,
        550,
        "5.1.10",
        "suppress",
        mailbox="active",
        first_step="bounced",
        only_lead2=True,
    ),
    Row(
        "content_spam",
        OutcomeKind.REJECTED,
        550,
        "5.7.520",
        "Review the step's content",
        mailbox="active",
        first_step="stopped",
        only_lead2=True,
    ),
]


async def make_world(
    tmp_path: Path,
    clock: VirtualClock,
    sandbox: Sandbox,
    *,
    password: bool = False,
    **options: int,
) -> World:
    """build_world, with an engine that idles in long naps (it wakes for every due time)."""
    world = await build_world(tmp_path, clock, sandbox, **options)
    await world.engine.close()
    world.engine = Engine(
        world.db,
        clock,
        world.box,
        public_url="https://mf.example",
        unsubscribe_key=b"k" * 32,
        seed=1,
        idle_wake=timedelta(hours=6),
        fleet=world.engine.fleet,
    )
    if password:
        mailbox = sandbox.directory.mailbox(A)
        assert mailbox is not None
        mailbox.password = PASSWORD
        async with world.db.session() as session:
            row = await one(session, select(Mailbox).where(Mailbox.address == A))
            row.auth_kind = "password"
            row.secret = world.box.seal({"username": A, "password": PASSWORD})
    return world


async def one(session, query):  # type: ignore[no-untyped-def]
    return (await session.scalars(query)).one()


async def send_to(world: World, lead: int, step: int) -> Send:
    async with world.db.session() as session:
        return await one(  # type: ignore[no-any-return]
            session,
            select(Send).where(Send.to_address == LEAD.format(lead), Send.step_position == step),
        )


async def enrollment_of(world: World, lead: int) -> Enrollment:
    async with world.db.session() as session:
        return await one(  # type: ignore[no-any-return]
            session,
            select(Enrollment)
            .join(Lead, Lead.id == Enrollment.lead_id)
            .where(Lead.email == LEAD.format(lead)),
        )


async def mailboxes(world: World) -> dict[str, Mailbox]:
    async with world.db.session() as session:
        return {m.address: m for m in (await session.scalars(select(Mailbox))).all()}


async def hold_sessions(sandbox: Sandbox, address: str, count: int) -> list[aiosmtplib.SMTP]:
    """Other clients authenticated as ``address``, using up its concurrent sessions."""
    token = sandbox.tokens.issue(TENANT, "app", "s3cret-value", APP_SCOPE).value
    clients = []
    for _ in range(count):
        smtp = aiosmtplib.SMTP(
            hostname=sandbox.smtp_host,
            port=sandbox.smtp_port,
            start_tls=False,
            tls_context=sandbox.client_tls_context(),
            timeout=3,
        )
        await smtp.connect()
        await smtp.starttls()
        await smtp.auth_xoauth2(address, token)
        clients.append(smtp)
    return clients


@pytest.mark.parametrize("row", ROWS, ids=[r.fault for r in ROWS])
async def test_each_reply_row_gets_its_reaction(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox, row: Row
) -> None:
    t0 = clock.now()
    world = await make_world(
        tmp_path, clock, sandbox, mailboxes=2, leads=3, steps=2, password=row.password
    )
    engine = world.engine
    async with world.db.session() as session:
        lead2 = await one(
            session,
            select(Enrollment).join(Lead).where(Lead.email == LEAD.format(2)),
        )
        lead2.next_due_at = t0 + timedelta(hours=12)
    hogs: list[aiosmtplib.SMTP] = []
    try:
        # 1. Healthy: one first step from each mailbox.
        await engine.run_until(t0 + timedelta(hours=1))
        assert (await send_to(world, 0, 1)).from_address == A
        assert (await send_to(world, 1, 1)).from_address == B

        # 2. A misbehaves when lead 2's first step is planned on it.
        await engine.run_until(t0 + timedelta(hours=12))  # idle sessions close meanwhile
        behaviour: Refusal | None = None
        if row.hog_sessions:
            hogs = await hold_sessions(sandbox, A, 3)
        else:
            behaviour = fault(row.fault, recipients=[LEAD.format(2)] if row.only_lead2 else None)
            sandbox.set_behaviour(A, behaviour)
        report = await engine.tick()
        assert report.planned == 1

        send = await send_to(world, 2, 1)
        assert send.from_address == A
        assert send.outcome == row.kind.value
        assert (send.reply_code, send.reply_enhanced) == (row.code, row.enhanced)
        final = row.first_step in ("bounced", "stopped")
        assert send.status == (SendStatus.FAILED if final else SendStatus.DEFERRED)
        assert row.remedy in (send.error or "")
        boxes = await mailboxes(world)
        now = clock.now()
        if row.mailbox == "paused":
            assert boxes[A].status == MailboxStatus.PAUSED and boxes[A].paused_until is None
            assert row.remedy in (boxes[A].status_reason or "")
        elif row.mailbox == "window":
            # The window frees when the oldest counted send (lead 0's, at t0) leaves it.
            assert boxes[A].status == MailboxStatus.PAUSED
            assert boxes[A].paused_until == t0 + timedelta(hours=24)
            assert row.remedy in (boxes[A].status_reason or "")
        elif row.mailbox == "held":
            assert boxes[A].status == MailboxStatus.ACTIVE
            assert boxes[A].paused_until is not None and boxes[A].paused_until > now
            assert boxes[A].failure_streak == 1
            assert boxes[A].rate_factor == row.rate_factor
        else:
            assert boxes[A].status == MailboxStatus.ACTIVE and boxes[A].paused_until is None
        if row.kind is OutcomeKind.PAUSE_TENANT:
            assert boxes[B].status == MailboxStatus.PAUSED
            assert boxes[B].paused_until == t0 + timedelta(hours=24)
        else:
            assert boxes[B].status == MailboxStatus.ACTIVE

        await engine.run_until(t0 + timedelta(hours=13))
        send = await send_to(world, 2, 1)
        enrollment = await enrollment_of(world, 2)
        if row.first_step == "moved":
            assert (send.status, send.from_address) == (SendStatus.SENT, B)
            assert enrollment.mailbox_id == boxes[B].id
        elif row.first_step == "waits":
            assert send.status == SendStatus.DEFERRED
            assert (enrollment.status, enrollment.next_step) == (EnrollmentStatus.ACTIVE, 1)
        else:
            status = EnrollmentStatus.BOUNCED if row.first_step == "bounced" else "stopped"
            assert enrollment.status == status and enrollment.next_due_at is None
        async with world.db.session() as session:
            suppressed = (await session.scalars(select(Suppression.value))).all()
        assert suppressed == ([LEAD.format(2)] if row.first_step == "bounced" else [])

        # 3. Follow-ups. Throttles, holds and windows end; a person's pause does not.
        if row.mailbox != "paused" and behaviour is not None and not row.only_lead2:
            sandbox.set_behaviour(A, MailboxBehaviour())
        for smtp in hogs:
            await smtp.quit()
        hogs = []
        await engine.run_until(t0 + timedelta(days=1, hours=2))
        assert (await send_to(world, 1, 2)).status == SendStatus.SENT
        follow_up = await enrollment_of(world, 0)
        boxes = await mailboxes(world)
        if row.mailbox == "paused":
            # Waits for its thread's mailbox: never moved, never sent.
            assert follow_up.status == EnrollmentStatus.ACTIVE and follow_up.next_step == 2
            assert follow_up.mailbox_id == boxes[A].id
            assert sandbox.store.count(A, SENT_ITEMS) == 1
        else:
            sent = await send_to(world, 0, 2)
            assert (sent.status, sent.from_address) == (SendStatus.SENT, A)
            if row.mailbox == "window":
                assert sent.claimed_at >= t0 + timedelta(hours=24)
        if row.first_step == "waits":
            assert (await send_to(world, 2, 1)).status == SendStatus.SENT
        if behaviour is not None:
            assert behaviour.refusals == row.refusals  # nothing was tried again
        meter = sandbox.directory.mailbox(A).meter  # type: ignore[union-attr]
        assert len(meter.refusals) == (1 if row.hog_sessions else 0)
    finally:
        for smtp in hogs:
            smtp.close()
        await engine.close()
        await world.db.close()


# -- tokens --------------------------------------------------------------------------------


def xoauth2_refusals(caplog: pytest.LogCaptureFixture, address: str) -> int:
    return sum(f"XOAUTH2 for {address} refused" in r.getMessage() for r in caplog.records)


async def test_a_token_revoked_mid_run_is_refreshed_once_and_sending_goes_on(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailfleet.sandbox.smtp")
    t0 = clock.now()
    world = await make_world(tmp_path, clock, sandbox, mailboxes=1, leads=3, steps=1)
    try:
        await world.engine.run_until(t0 + timedelta(minutes=5))
        assert len(sandbox.store.messages(A, SENT_ITEMS)) == 1
        async with world.db.session() as session:
            row = await one(session, select(Mailbox))
        tokens = world.engine.credentials.credentials(row).tokens
        assert tokens is not None
        sandbox.tokens.revoke((await tokens.access_token()).token)
        await world.engine.run_until(t0 + timedelta(hours=2))
    finally:
        await world.engine.close()
        await world.db.close()
    assert xoauth2_refusals(caplog, A) == 1
    assert len(sandbox.store.messages(A, SENT_ITEMS)) == 3
    async with world.db.session() as session:
        sends = (await session.scalars(select(Send))).all()
        box = await one(session, select(Mailbox))
    assert {s.status for s in sends} == {SendStatus.SENT}
    assert box.status == MailboxStatus.ACTIVE


async def test_a_login_refused_after_the_refresh_pauses_with_the_checklist(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailfleet.sandbox.smtp")
    t0 = clock.now()
    world = await make_world(tmp_path, clock, sandbox, mailboxes=1, leads=3, steps=1)
    try:
        await world.engine.run_until(t0 + timedelta(minutes=5))
        # The app loses its access to the mailbox (no Add-MailboxPermission any more):
        # new tokens are issued, and every one is refused for this mailbox.
        sandbox.register_app(TENANT, "app", "s3cret-value", mailboxes={"someone@else.example"})
        async with world.db.session() as session:
            row = await one(session, select(Mailbox))
        tokens = world.engine.credentials.credentials(row).tokens
        assert tokens is not None
        sandbox.tokens.revoke((await tokens.access_token()).token)
        await world.engine.run_until(t0 + timedelta(hours=6))
    finally:
        await world.engine.close()
        await world.db.close()
    assert xoauth2_refusals(caplog, A) == 2  # the stale token, then the refreshed one
    async with world.db.session() as session:
        box = await one(session, select(Mailbox))
        deferred = (
            await session.scalars(select(Send).where(Send.status == SendStatus.DEFERRED))
        ).all()
    assert box.status == MailboxStatus.PAUSED
    assert "535 5.7.3" in (box.status_reason or "")
    assert "Add-MailboxPermission" in (box.status_reason or "")
    assert len(deferred) == 1 and deferred[0].outcome == OutcomeKind.PAUSE_MAILBOX


# -- limits the planner respects, and those it cannot see ----------------------------------


async def test_full_speed_never_trips_microsofts_30_a_minute(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    t0 = clock.now()
    world = await make_world(
        tmp_path, clock, sandbox, mailboxes=1, leads=45, steps=1, gap_seconds=0, daily_cap=100
    )
    # Full speed: no pacing through the sending window either.
    # 100 a day is above the practice band: the fleet's ramp says so explicitly.
    world.engine.fleet = replace(world.engine.fleet, pace=False, ramp=RampPolicy(steady_max=100))
    try:
        await world.engine.run_until(t0 + timedelta(minutes=5))
    finally:
        await world.engine.close()
        await world.db.close()
    meter = sandbox.directory.mailbox(A).meter  # type: ignore[union-attr]
    assert meter.refusals == []  # the sandbox never had to say 451 4.7.500
    stamps = [m.received_at for m in sandbox.store.messages(A, SENT_ITEMS)]
    assert len(stamps) == 45
    in_a_minute = [sum(t - timedelta(minutes=1) < s <= t for s in stamps) for t in stamps]
    assert max(in_a_minute) == 30  # full speed, and not one more
    async with world.db.session() as session:
        outcomes = set((await session.scalars(select(Send.outcome))).all())
    assert outcomes == {OutcomeKind.ACCEPTED}


async def test_the_rolling_recipient_quota_pauses_until_the_oldest_send_leaves_it(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    t0 = clock.now()
    world = await make_world(tmp_path, clock, sandbox, mailboxes=1, leads=4, steps=1)
    # Microsoft counts 10,000; the sandbox counts 3 here so the test stays small.
    sandbox.set_limits(A, SubmissionLimits(recipients_per_day=3))
    try:
        await world.engine.run_until(t0 + timedelta(hours=2))
        async with world.db.session() as session:
            box = await one(session, select(Mailbox))
            refused = await one(session, select(Send).where(Send.status == SendStatus.DEFERRED))
            first = await one(session, select(Send).where(Send.to_address == LEAD.format(0)))
        assert refused.outcome == OutcomeKind.PAUSE_MAILBOX and refused.reply_enhanced == "5.2.0"
        assert box.status == MailboxStatus.PAUSED
        assert box.paused_until == first.claimed_at + timedelta(hours=24)
        assert box.paused_until < refused.claimed_at + timedelta(hours=24)
        await world.engine.run_until(t0 + timedelta(days=1, hours=1))
    finally:
        await world.engine.close()
        await world.db.close()
    meter = sandbox.directory.mailbox(A).meter  # type: ignore[union-attr]
    assert len(meter.refusals) == 1  # no retry while paused
    async with world.db.session() as session:
        last = await one(session, select(Send).where(Send.to_address == refused.to_address))
        box = await one(session, select(Mailbox))
    assert last.status == SendStatus.SENT
    assert last.claimed_at == first.claimed_at + timedelta(hours=24)
    assert box.status == MailboxStatus.ACTIVE


# -- backoff and slowdown ------------------------------------------------------------------


async def test_transient_errors_back_off_per_mailbox_exponentially_then_reset(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    t0 = clock.now()
    world = await make_world(tmp_path, clock, sandbox, mailboxes=1, leads=2, steps=1)
    behaviour = fault("temporary_error", times=3)
    sandbox.set_behaviour(A, behaviour)
    try:
        await world.engine.run_until(t0 + timedelta(hours=1))
    finally:
        await world.engine.close()
        await world.db.close()
    refused = [at for at, _ in behaviour.refused]
    first = min(m.received_at for m in sandbox.store.messages(A, SENT_ITEMS))
    waits = [b - a for a, b in zip(refused, [*refused[1:], first], strict=True)]
    minute = timedelta(minutes=1)
    # Equal jitter: the n-th wait is between half and all of 2^(n-1) minutes.
    for n, wait in enumerate(waits):
        assert minute * 2**n / 2 <= wait <= minute * 2**n, waits
    async with world.db.session() as session:
        box = await one(session, select(Mailbox))
        kinds = (await session.scalars(select(Event.kind))).all()
    assert box.failure_streak == 0 and box.paused_until is None
    assert kinds.count("mailbox.backoff") == 3
    assert len(sandbox.store.messages(A, SENT_ITEMS)) == 2


async def test_a_try_again_hint_sets_the_wait(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    t0 = clock.now()
    world = await make_world(tmp_path, clock, sandbox, mailboxes=1, leads=1, steps=1)
    behaviour = Refusal(
        "hint", "mail", Reply(451, "4.7.0 Temporary rate limit, try again in 7 minutes"), times=1
    )
    sandbox.set_behaviour(A, behaviour)
    try:
        await world.engine.run_until(t0 + timedelta(hours=1))
    finally:
        await world.engine.close()
        await world.db.close()
    sent = sandbox.store.messages(A, SENT_ITEMS)
    assert [m.received_at - behaviour.refused[0][0] for m in sent] == [timedelta(minutes=7)]


async def test_transient_errors_that_never_clear_ask_a_person(
    tmp_path: Path, clock: VirtualClock, sandbox: Sandbox
) -> None:
    t0 = clock.now()
    world = await make_world(tmp_path, clock, sandbox, mailboxes=1, leads=1, steps=1)
    behaviour = fault("temporary_error")
    sandbox.set_behaviour(A, behaviour)
    try:
        await world.engine.run_until(t0 + timedelta(hours=12))
    finally:
        await world.engine.close()
        await world.db.close()
    async with world.db.session() as session:
        box = await one(session, select(Mailbox))
    assert behaviour.refusals == ESCALATE_AFTER
    assert box.status == MailboxStatus.PAUSED and box.paused_until is None
    assert f"{ESCALATE_AFTER} transient failures in a row" in (box.status_reason or "")


def test_a_slowed_mailbox_sends_at_its_lowered_rate_until_the_slowdown_ends() -> None:
    at = utc(2026, 3, 2, 9)
    box = Mailbox(
        id=1,
        provider="microsoft365",
        min_gap_seconds=600,
        rate_factor=0.25,
        slowed_until=at + timedelta(hours=1),
    )
    slowed = mailbox_policy(box, at)
    assert slowed.limits.messages_per_minute == 7
    assert slowed.min_gap == timedelta(seconds=2400)
    assert slowed.max_jitter == timedelta(seconds=1200)
    normal = mailbox_policy(box, at + timedelta(hours=1))
    assert normal.limits.messages_per_minute == 30
    assert normal.min_gap == timedelta(seconds=600)


def test_transport_decides_whether_a_failure_at_data_is_unknown() -> None:
    """A failure before the body was written is a retry; after it, unknown."""
    from mailfleet.engine.reaction import classify
    from mailfleet.providers.outcomes import OutcomeKind, Stage
    from mailfleet.transport.smtp import Delivery, SubmitResult

    before = SubmitResult(
        Delivery.REFUSED, Stage.DATA, None, "connection lost", error=ConnectionResetError("reset")
    )
    after = SubmitResult(
        Delivery.UNKNOWN, Stage.DATA, None, "connection lost", error=ConnectionResetError("reset")
    )
    assert classify(before, "microsoft365", "a@x.example").kind is OutcomeKind.RETRY
    assert classify(after, "microsoft365", "a@x.example").kind is OutcomeKind.UNKNOWN
