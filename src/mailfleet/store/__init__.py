"""The store: tables, migrations and the database connection (SQLite or PostgreSQL)."""

from mailfleet.store.db import Database, upgrade
from mailfleet.store.inbox import InboundMessage, MailboxFolderState, Pop3Seen
from mailfleet.store.models import (
    Base,
    Campaign,
    CampaignStatus,
    Domain,
    Enrollment,
    EnrollmentStatus,
    Event,
    Lead,
    Mailbox,
    MailboxLease,
    MailboxStatus,
    Send,
    SendKind,
    SendStatus,
    Step,
    Suppression,
    Workspace,
)

__all__ = [
    "Base",
    "Campaign",
    "CampaignStatus",
    "Database",
    "Domain",
    "Enrollment",
    "EnrollmentStatus",
    "Event",
    "InboundMessage",
    "Lead",
    "Mailbox",
    "MailboxFolderState",
    "MailboxLease",
    "MailboxStatus",
    "Pop3Seen",
    "Send",
    "SendKind",
    "SendStatus",
    "Step",
    "Suppression",
    "Workspace",
    "upgrade",
]
