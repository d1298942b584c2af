"""The production :class:`~mailfleet.transport.submitter.Submitter`: SMTP on pooled sessions."""

from __future__ import annotations

from collections.abc import Sequence

from mailfleet.engine.credentials import CredentialCache, CredentialError
from mailfleet.providers.outcomes import Stage
from mailfleet.store import Mailbox
from mailfleet.transport.oauth import TokenError
from mailfleet.transport.smtp import Delivery, SmtpPool, SubmitResult
from mailfleet.transport.submitter import SendingMailbox


class PooledSubmitter:
    """Submits on the mailbox's pooled SMTP session with its current credentials."""

    def __init__(self, credentials: CredentialCache, pool: SmtpPool) -> None:
        self.credentials = credentials
        self.pool = pool

    def renews_tokens(self, mailbox: SendingMailbox) -> bool:
        """OAuth mailboxes renew their token; password ones have nothing to renew."""
        assert isinstance(mailbox, Mailbox)
        try:
            return self.credentials.credentials(mailbox).tokens is not None
        except CredentialError:
            return False

    async def submit(
        self,
        mailbox: SendingMailbox,
        envelope_from: str,
        recipients: Sequence[str],
        raw: bytes,
        *,
        fresh_token: bool = False,
    ) -> SubmitResult:
        """Submit ``raw``; a login failure is a refusal at the token stage, never a crash."""
        assert isinstance(mailbox, Mailbox)
        try:
            endpoint = self.credentials.endpoint(mailbox)
            creds = self.credentials.credentials(mailbox)
        except CredentialError as exc:
            return SubmitResult(Delivery.REFUSED, Stage.TOKEN, None, str(exc), error=exc)
        connection = self.pool.connection(mailbox.id, endpoint, creds)
        if fresh_token and creds.tokens is not None:
            try:
                await creds.tokens.access_token(force_refresh=True)
            except TokenError as exc:
                return SubmitResult(Delivery.REFUSED, Stage.TOKEN, None, str(exc), error=exc)
            await connection.close()  # the next AUTH uses the new token
        return await connection.submit(envelope_from, list(recipients), raw)
