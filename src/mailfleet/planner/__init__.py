"""The planner: pure decisions about which lead gets which step from which mailbox, when."""

from mailfleet.planner.schedule import (
    HELD,
    CampaignState,
    DueEnrollment,
    MailboxState,
    Plan,
    PlannedSend,
    plan_sends,
)
from mailfleet.planner.window import SendingWindow, add_delay, local_day

__all__ = [
    "HELD",
    "CampaignState",
    "DueEnrollment",
    "MailboxState",
    "Plan",
    "PlannedSend",
    "SendingWindow",
    "add_delay",
    "local_day",
    "plan_sends",
]
