"""An emulated provider world on loopback: Microsoft 365 submission, tokens, mail, prospects.

``await start_sandbox(clock, workdir)`` starts everything on free ports of 127.0.0.1
and returns a :class:`Sandbox`; ``await sandbox.stop()`` (or ``async with``) ends it.
"""

from mailfleet.sandbox.behaviour import MailboxBehaviour, Submission
from mailfleet.sandbox.directory import Directory, SandboxMailbox, normalize_address
from mailfleet.sandbox.mailstore import (
    INBOX,
    JUNK,
    SENT_ITEMS,
    MailFolder,
    MailStore,
    StoredMessage,
)
from mailfleet.sandbox.prospects import ProspectDelivery, ProspectSimulator
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
    "INBOX",
    "JUNK",
    "SENT_ITEMS",
    "AccessToken",
    "Directory",
    "Introspection",
    "MailFolder",
    "MailStore",
    "MailboxBehaviour",
    "OAuthApp",
    "Principal",
    "ProspectDelivery",
    "ProspectSimulator",
    "Reply",
    "Sandbox",
    "SandboxMailbox",
    "StoredMessage",
    "Submission",
    "SubmissionServer",
    "TlsMaterial",
    "TokenCheck",
    "TokenError",
    "TokenServer",
    "TokenService",
    "TokenStatus",
    "build_token_app",
    "client_context",
    "create_tls_material",
    "normalize_address",
    "start_sandbox",
]
