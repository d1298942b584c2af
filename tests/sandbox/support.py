"""Names and helpers shared by the sandbox tests."""

from __future__ import annotations

import ssl

import aiosmtplib

from mailfleet.sandbox import Sandbox

TENANT = "contoso.onmicrosoft.com"
SENDER = "alice@brand-mail.test"
PEER = "bob@brand-mail.test"
PASSWORD = "correct horse battery staple"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "s3cr3t~value"
APP_SCOPE = "https://outlook.office365.com/.default"
PROSPECT_DOMAIN = "prospect.test"
HOSTNAME = "smtp.sandbox.test"
# Long enough for any loopback exchange, short enough that a hang fails fast.
STEP_TIMEOUT = 3.0


def app_token(sandbox: Sandbox) -> str:
    """An app-only SMTP token, issued directly (the HTTP flow has its own tests)."""
    return sandbox.tokens.issue(TENANT, CLIENT_ID, CLIENT_SECRET, APP_SCOPE).value


def smtp_client(sandbox: Sandbox, tls_context: ssl.SSLContext | None = None) -> aiosmtplib.SMTP:
    """A client for the sandbox that does not STARTTLS on its own."""
    return aiosmtplib.SMTP(
        hostname=sandbox.smtp_host,
        port=sandbox.smtp_port,
        start_tls=False,
        tls_context=tls_context or sandbox.client_tls_context(),
        timeout=STEP_TIMEOUT,
    )


def populate(box: Sandbox) -> Sandbox:
    """One tenant, two mailboxes (SENDER with a password), an app and a prospect domain."""
    box.add_tenant(TENANT)
    box.add_mailbox(SENDER, TENANT, password=PASSWORD)
    box.add_mailbox(PEER, TENANT)
    box.register_app(TENANT, CLIENT_ID, CLIENT_SECRET)
    box.add_prospect_domain(PROSPECT_DOMAIN)
    return box
