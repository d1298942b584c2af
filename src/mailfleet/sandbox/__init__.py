"""An emulated provider world on loopback: Microsoft 365 submission, IMAP, tokens, prospects.

``await start_sandbox(clock, workdir)`` starts everything on free ports of 127.0.0.1
and returns a :class:`Sandbox`; ``await sandbox.stop()`` (or ``async with``) ends it.
"""

from mailfleet.sandbox.behaviour import MailboxBehaviour, Submission
from mailfleet.sandbox.directory import Directory, SandboxMailbox, normalize_address
from mailfleet.sandbox.faults import FAULTS, FaultSpec, Refusal, closed_port, fault
from mailfleet.sandbox.imap import ImapServer
from mailfleet.sandbox.limits import (
    MICROSOFT_365_LIMITS,
    NO_LIMITS,
    LimitMeter,
    SubmissionLimits,
)
from mailfleet.sandbox.mailstore import (
    INBOX,
    JUNK,
    SENT_ITEMS,
    MailFolder,
    MailStore,
    StoredMessage,
)
from mailfleet.sandbox.prospects import (
    Answer,
    AnswerShares,
    Fate,
    ProspectDelivery,
    ProspectSimulator,
)
from mailfleet.sandbox.replies import Reply
from mailfleet.sandbox.smtp import Principal, SubmissionServer
from mailfleet.sandbox.tls import TlsMaterial, client_context, create_tls_material
from mailfleet.sandbox.token_server import TokenServer, build_token_app
from mailfleet.sandbox.tokens import (
    AccessToken,
    Introspection,
    OAuthApp,
    TokenCheck,
    TokenError,
    TokenService,
    TokenStatus,
)
from mailfleet.sandbox.world import Sandbox, start_sandbox

__all__ = [
    "FAULTS",
    "INBOX",
    "JUNK",
    "MICROSOFT_365_LIMITS",
    "NO_LIMITS",
    "SENT_ITEMS",
    "AccessToken",
    "Answer",
    "AnswerShares",
    "Directory",
    "Fate",
    "FaultSpec",
    "ImapServer",
    "Introspection",
    "LimitMeter",
    "MailFolder",
    "MailStore",
    "MailboxBehaviour",
    "OAuthApp",
    "Principal",
    "ProspectDelivery",
    "ProspectSimulator",
    "Refusal",
    "Reply",
    "Sandbox",
    "SandboxMailbox",
    "StoredMessage",
    "Submission",
    "SubmissionLimits",
    "SubmissionServer",
    "TlsMaterial",
    "TokenCheck",
    "TokenError",
    "TokenServer",
    "TokenService",
    "TokenStatus",
    "build_token_app",
    "client_context",
    "closed_port",
    "create_tls_material",
    "fault",
    "normalize_address",
    "start_sandbox",
]
