"""Moving an enrollment along its sequence once a step was accepted.

Shared by the tick that recorded an acceptance and by reconciliation, which finds
an acceptance after the fact (the Message-ID in the mailbox's Sent folder).
"""

from __future__ import annotations

from datetime import datetime

from mailfleet.planner import add_delay
from mailfleet.store import Campaign, Enrollment, EnrollmentStatus, Send

MAX_REFERENCES = 20


def record_in_thread(enrollment: Enrollment, send: Send, at: datetime) -> None:
    """Remember ``send`` as the newest message of the enrollment's thread."""
    step_no = send.step_position or enrollment.next_step
    if step_no == 1 or enrollment.thread_message_id is None:
        enrollment.thread_message_id = send.message_id
        enrollment.thread_subject = send.subject
    references = list(enrollment.references or [])
    if send.message_id not in references:
        references.append(send.message_id)
    enrollment.references = references[-MAX_REFERENCES:]
    enrollment.last_message_id = send.message_id
    enrollment.updated_at = at


def advance(enrollment: Enrollment, campaign: Campaign, send: Send, at: datetime) -> None:
    """Thread ``send`` in and schedule the next step from ``at`` (or complete the sequence).

    An enrollment that was stopped meanwhile (a reply while the message was in
    flight) keeps its status: the send is threaded in, nothing else is scheduled.
    """
    record_in_thread(enrollment, send, at)
    schedule_next(enrollment, campaign, send.step_position or enrollment.next_step, at)


def schedule_next(enrollment: Enrollment, campaign: Campaign, step_no: int, at: datetime) -> None:
    """Move an active enrollment past step ``step_no``: the next step is due after its delay
    counted from ``at``, or the sequence is complete. A stopped enrollment stays stopped."""
    enrollment.updated_at = at
    if enrollment.status != EnrollmentStatus.ACTIVE:
        enrollment.next_due_at = None
        return
    following = next((s for s in campaign.steps if s.position == step_no + 1), None)
    if following is None:
        enrollment.status = EnrollmentStatus.COMPLETED
        enrollment.next_due_at = None
        enrollment.next_step = step_no + 1
        return
    enrollment.next_step = following.position
    enrollment.next_due_at = add_delay(
        at,
        following.delay_days,
        business_days=following.business_days,
        tz=campaign.timezone,
        minutes=following.delay_minutes or 0,
    )
