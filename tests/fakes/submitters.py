"""Submitters that crash the process at a chosen point of the send state machine."""

from __future__ import annotations

from collections.abc import Sequence

from mailfleet.transport.smtp import SubmitResult
from mailfleet.transport.submitter import SendingMailbox, Submission, Submitter


class Crash(Exception):
    """The process died here."""


def crash(_: Submission) -> SubmitResult:
    """A FakeSubmitter answer: the process dies before any connection opens."""
    raise Crash


class DiesAfterTheServerAccepts:
    """The real submitter, then a crash before the outcome is recorded."""

    def __init__(self, real: Submitter) -> None:
        self.real = real

    def renews_tokens(self, mailbox: SendingMailbox) -> bool:
        return self.real.renews_tokens(mailbox)

    async def submit(
        self,
        mailbox: SendingMailbox,
        envelope_from: str,
        recipients: Sequence[str],
        raw: bytes,
        *,
        fresh_token: bool = False,
    ) -> SubmitResult:
        await self.real.submit(mailbox, envelope_from, recipients, raw, fresh_token=fresh_token)
        raise Crash
