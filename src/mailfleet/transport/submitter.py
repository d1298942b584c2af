"""The submission port: hand one message to a mailbox's server, and a fake beside it.

Everything that sends — cold steps, warmup, and later replies written from the inbox —
goes through :func:`mailfleet.services.sending.submit` with a :class:`Submitter`. The
production one (:class:`mailfleet.engine.submitter.PooledSubmitter`) speaks SMTP on the
mailbox's pooled session; :class:`FakeSubmitter` answers from a script, so tests and
benchmarks swap the wire in one line instead of patching a private method (in the
spirit of httpx's ``MockTransport``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from mailfleet.providers.outcomes import Stage
from mailfleet.transport.smtp import Delivery, SubmitResult


class SendingMailbox(Protocol):
    """What a submitter needs to know of a mailbox."""

    @property
    def id(self) -> int: ...

    @property
    def address(self) -> str: ...


class Submitter(Protocol):
    """Submits one message from a mailbox; the reply says what happened."""

    async def submit(
        self,
        mailbox: SendingMailbox,
        envelope_from: str,
        recipients: Sequence[str],
        raw: bytes,
        *,
        fresh_token: bool = False,
    ) -> SubmitResult:
        """Submit ``raw``; ``fresh_token`` renews the OAuth token first (after 535 5.7.3)."""
        ...

    def renews_tokens(self, mailbox: SendingMailbox) -> bool:
        """Whether the mailbox logs in with a token that a retry could renew."""
        ...


@dataclass(frozen=True, slots=True)
class Submission:
    """One message a :class:`FakeSubmitter` was handed."""

    mailbox_id: int
    address: str
    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes
    fresh_token: bool


ACCEPTED = SubmitResult(Delivery.ACCEPTED, Stage.DATA, 250, "2.0.0 OK queued")


class FakeSubmitter:
    """Records every submission and answers with ``answer(submission)`` (default: 250)."""

    def __init__(
        self, answer: Callable[[Submission], SubmitResult] | None = None, *, tokens: bool = True
    ) -> None:
        self.answer = answer or (lambda _: ACCEPTED)
        self.tokens = tokens
        self.submissions: list[Submission] = []

    def renews_tokens(self, mailbox: SendingMailbox) -> bool:
        """As told at construction (``tokens``)."""
        return self.tokens

    async def submit(
        self,
        mailbox: SendingMailbox,
        envelope_from: str,
        recipients: Sequence[str],
        raw: bytes,
        *,
        fresh_token: bool = False,
    ) -> SubmitResult:
        """Record the submission and answer it."""
        made = Submission(
            mailbox.id, mailbox.address, envelope_from, tuple(recipients), raw, fresh_token
        )
        self.submissions.append(made)
        return self.answer(made)
