"""Mailboxes as the operator hands them over: credential kinds and the bulk-import CSV."""

from mailfleet.mailboxes.kinds import SECRET_FIELDS, AuthKind, is_oauth
from mailfleet.mailboxes.reader import (
    ImportDefaults,
    MailboxFileError,
    MailboxRow,
    ParsedMailboxes,
    RowError,
    parse_mailboxes,
)

__all__ = [
    "SECRET_FIELDS",
    "AuthKind",
    "ImportDefaults",
    "MailboxFileError",
    "MailboxRow",
    "ParsedMailboxes",
    "RowError",
    "is_oauth",
    "parse_mailboxes",
]
