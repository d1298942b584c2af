"""The whole sandbox in one call: token service, SMTP, IMAP, DNS, mail store, prospects."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from types import TracebackType

from mailfleet.clock import Clock
from mailfleet.sandbox.behaviour import MailboxBehaviour, Submission
from mailfleet.sandbox.directory import Directory, SandboxMailbox
from mailfleet.sandbox.dns import SandboxDnsServer, ZoneRecord, Zones, sandbox_domain_zone
from mailfleet.sandbox.imap import ImapServer
from mailfleet.sandbox.junk import JunkRules
from mailfleet.sandbox.limits import MICROSOFT_365_LIMITS, NO_LIMITS, SubmissionLimits
from mailfleet.sandbox.mailstore import INBOX, JUNK, SENT_ITEMS, MailStore
from mailfleet.sandbox.prospects import ProspectSimulator
from mailfleet.sandbox.smtp import SubmissionServer
from mailfleet.sandbox.tls import TlsMaterial, create_tls_material
from mailfleet.sandbox.token_server import TokenServer
from mailfleet.sandbox.tokens import OAuthApp, TokenService

EXTRA_FOLDERS = ("Archive", "Deleted Items")
"""Folders a world mailbox has besides INBOX, Junk and Sent Items, as in Microsoft 365."""


class Sandbox:
    """A running emulated provider on 127.0.0.1; build it with :func:`start_sandbox`."""

    def __init__(
        self,
        clock: Clock,
        tls: TlsMaterial,
        hostname: str,
        *,
        limits: SubmissionLimits = MICROSOFT_365_LIMITS,
    ) -> None:
        self.clock = clock
        self.tls = tls
        self.journal: Path | None = None  # one JSON line per accepted message, when set
        self.hostname = hostname
        self.directory = Directory(limits, hostname)
        self.tokens = TokenService(clock, self.directory)
        self.store = MailStore()
        self.prospects = ProspectSimulator()
        self.junk = JunkRules()
        self.zones = Zones()
        self.dns = SandboxDnsServer(self.zones)
        self.smtp = SubmissionServer(
            clock=clock,
            directory=self.directory,
            tokens=self.tokens,
            tls_context=tls.server_context,
            deliver=self.deliver,
            hostname=hostname,
        )
        self.token_server = TokenServer(self.tokens, clock)
        self.imap = ImapServer(
            clock=clock,
            directory=self.directory,
            tokens=self.tokens,
            store=self.store,
            tls_context=tls.server_context,
        )

    # -- addresses ----------------------------------------------------------------------

    @property
    def smtp_host(self) -> str:
        """The submission server's address (always loopback)."""
        return self.smtp.host

    @property
    def smtp_port(self) -> int:
        """The submission server's port (STARTTLS, like 587)."""
        return self.smtp.port

    @property
    def imap_host(self) -> str:
        """The IMAP server's address (always loopback)."""
        return self.imap.host

    @property
    def imap_port(self) -> int:
        """The IMAP server's port (implicit TLS, like 993)."""
        return self.imap.port

    @property
    def token_base_url(self) -> str:
        """Base URL of the token service, ``http://127.0.0.1:PORT``."""
        return self.token_server.base_url

    def token_url(self, tenant: str) -> str:
        """The Azure-AD-style token endpoint of ``tenant``."""
        return f"{self.token_base_url}/{tenant}/oauth2/v2.0/token"

    @property
    def introspection_url(self) -> str:
        """The RFC 7662 introspection endpoint."""
        return f"{self.token_base_url}/introspect"

    @property
    def ca_file(self) -> Path:
        """PEM file of the CA that signed the sandbox's certificate; clients trust it."""
        return self.tls.ca_file

    def client_tls_context(self) -> ssl.SSLContext:
        """A verifying client TLS context that trusts the sandbox CA."""
        return self.tls.client_context()

    # -- the world's population -----------------------------------------------------------

    def add_tenant(self, tenant: str) -> None:
        """Create a tenant (idempotent)."""
        self.directory.add_tenant(tenant)

    def add_mailbox(
        self,
        address: str,
        tenant: str,
        password: str | None = None,
        behaviour: MailboxBehaviour | None = None,
        limits: SubmissionLimits | None = None,
    ) -> SandboxMailbox:
        """Create a mailbox with its folders; a ``password`` allows AUTH LOGIN.

        ``limits`` default to the sandbox's: Microsoft 365's real ones unless lifted.
        """
        mailbox = self.directory.add_mailbox(address, tenant, password, behaviour, limits)
        self.store.ensure_mailbox(mailbox.address)
        for folder in EXTRA_FOLDERS:
            self.store.create_folder(mailbox.address, folder)
        return mailbox

    def publish_domain(
        self,
        domain: str,
        provider: str = "microsoft365",
        *,
        tenant: str | None = None,
        omit: tuple[str, ...] = (),
        broken: tuple[str, ...] = (),
    ) -> None:
        """Publish (or re-publish) a sending domain's DNS on the sandbox nameserver.

        ``omit`` and ``broken`` name parts among ``mx``, ``spf``, ``dkim`` and
        ``dmarc`` to leave out or publish wrong; re-publishing replaces the domain's
        records, so a test can fix (or break) a domain on the way.
        """
        name = domain.strip().lower().rstrip(".")
        records = sandbox_domain_zone(name, provider, tenant=tenant, omit=omit, broken=broken)

        def other(record: ZoneRecord) -> bool:
            owner = record.name.lower().rstrip(".")
            return owner != name and not owner.endswith("." + name)

        kept = [r for r in self.zones.records if other(r)]
        seen = set(kept)
        fresh = []
        for record in records:  # the provider's shared records are served once
            if record not in seen:
                seen.add(record)
                fresh.append(record)
        self.zones.records[:] = kept + fresh

    @property
    def dns_address(self) -> str:
        """``HOST:PORT`` of the sandbox nameserver (``MAILFLEET_DNS_NAMESERVER``)."""
        return self.dns.address

    def set_behaviour(self, address: str, behaviour: MailboxBehaviour) -> None:
        """Swap the behaviour (healthy, throttled, …) of an existing mailbox."""
        mailbox = self.directory.mailbox(address)
        if mailbox is None:
            raise KeyError(f"unknown mailbox {address!r}")
        mailbox.behaviour = behaviour

    def set_limits(self, address: str, limits: SubmissionLimits) -> None:
        """Change one mailbox's submission limits; what it already sent stays counted."""
        mailbox = self.directory.mailbox(address)
        if mailbox is None:
            raise KeyError(f"unknown mailbox {address!r}")
        mailbox.meter.limits = limits

    def lift_limits(self, limits: SubmissionLimits = NO_LIMITS) -> None:
        """Give every mailbox, and those added later, ``limits`` (default: none at all)."""
        self.directory.limits = limits
        for mailbox in self.directory.mailboxes():
            mailbox.meter.limits = limits

    def register_app(
        self, tenant: str, client_id: str, client_secret: str, mailboxes: set[str] | None = None
    ) -> OAuthApp:
        """Register an app with SMTP/IMAP/POP access to ``mailboxes`` (None: all of the tenant)."""
        return self.tokens.register_app(
            tenant, client_id, client_secret, "all" if mailboxes is None else mailboxes
        )

    def add_prospect_domain(self, domain: str) -> None:
        """Mail to any address at ``domain`` reaches a simulated prospect."""
        self.prospects.add_domain(domain)

    def set_junk_share(self, recipient: str, sender_domain: str, share: float) -> None:
        """From now on, file ``share`` of mail from ``sender_domain`` to ``recipient`` in Junk.

        ``recipient`` may be ``"*"`` (every mailbox of the world) and ``sender_domain``
        ``"*"`` (any sender); the most specific rule wins, and ``share`` 0 lifts it.
        Which messages go to Junk is fixed by their Message-ID, so a run repeats.
        """
        self.junk.set(recipient, sender_domain, share)

    # -- delivery -------------------------------------------------------------------------

    def deliver(self, submission: Submission, now: datetime) -> None:
        """File an accepted message: each recipient's INBOX (or Junk, by the junk rules),
        the sender's Sent Items, prospects."""
        recipients = submission.recipients
        if self.journal is not None:
            self._write_journal(submission, now)
        for recipient in dict.fromkeys(recipients):
            junk = self.junk.files_in_junk(recipient, submission.sender, submission.raw)
            self.store.append(
                recipient,
                JUNK if junk else INBOX,
                submission.raw,
                sender=submission.sender,
                recipients=recipients,
                received_at=now,
            )
            if self.prospects.is_prospect(recipient):
                self.prospects.record(recipient, submission.sender, submission.raw, now)
        self.store.append(
            submission.sender,
            SENT_ITEMS,
            submission.raw,
            sender=submission.sender,
            recipients=recipients,
            received_at=now,
            flags={"\\Seen"},
        )

    def _write_journal(self, submission: Submission, now: datetime) -> None:
        """The sandbox's own record of what it accepted: the audit a test reads."""
        assert self.journal is not None
        headers = message_from_bytes(submission.raw, policy=email_policy.compat32)
        entry = {
            "at": now.isoformat(),
            "from": submission.sender,
            "to": list(submission.recipients),
            "message_id": headers.get("Message-ID"),
            "in_reply_to": headers.get("In-Reply-To"),
            "subject": headers.get("Subject"),
            "list_unsubscribe": headers.get("List-Unsubscribe"),
        }
        with self.journal.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")

    def release_answers(self, now: datetime | None = None) -> int:
        """File the prospects' answers due by ``now`` (the clock's time) in the senders' folders.

        Replies, out-of-office answers and bounces go to the sending mailbox's INBOX,
        or its Junk folder for the share the simulator files there.
        """
        answers = self.prospects.due(now or self.clock.now())
        for answer in answers:
            self.store.append(
                answer.mailbox,
                JUNK if answer.junk else INBOX,
                answer.raw,
                sender=answer.prospect,
                recipients=[answer.mailbox],
                received_at=answer.at,
            )
        return len(answers)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the token service, then SMTP and IMAP; on a failure nothing is left running."""
        try:
            await self.token_server.start()
            self.dns.start()
            await self.smtp.start()
            await self.imap.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close SMTP and IMAP sessions and listeners, then the token service (idempotent)."""
        try:
            await self.smtp.stop()
        finally:
            try:
                await self.imap.stop()
            finally:
                self.dns.stop()
                await self.token_server.stop()

    async def __aenter__(self) -> Sandbox:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def start_sandbox(
    clock: Clock,
    workdir: Path,
    *,
    hostname: str = "smtp.sandbox.test",
    limits: SubmissionLimits = MICROSOFT_365_LIMITS,
    ports: SandboxPorts | None = None,
) -> Sandbox:
    """Start a whole sandbox on free loopback ports (or ``ports``); TLS files under ``workdir/tls``.

    Every mailbox gets Microsoft 365's submission ``limits`` unless told otherwise;
    pass :data:`~mailfleet.sandbox.limits.NO_LIMITS` to lift them (benchmarks).
    """
    tls = create_tls_material(workdir / "tls", ("localhost", "127.0.0.1", hostname))
    sandbox = Sandbox(clock, tls, hostname, limits=limits)
    if ports is not None:
        sandbox.smtp.port, sandbox.imap.port = ports.smtp, ports.imap
        sandbox.token_server.port, sandbox.dns.port = ports.tokens, ports.dns
    await sandbox.start()
    return sandbox


@dataclass(frozen=True, slots=True)
class SandboxPorts:
    """Fixed loopback ports, so mailboxes registered once keep working across restarts."""

    smtp: int = 2587
    imap: int = 2993
    tokens: int = 2080
    dns: int = 2053
