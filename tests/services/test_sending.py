"""The send state machine's wire step: the token-refresh retry, through the Submitter port."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mailfleet.providers.outcomes import Stage
from mailfleet.services import sending
from mailfleet.transport.smtp import Delivery, SubmitResult
from mailfleet.transport.submitter import ACCEPTED, FakeSubmitter, Submission

DEAD_TOKEN = SubmitResult(Delivery.REFUSED, Stage.AUTH, 535, "5.7.3 Authentication unsuccessful")


@dataclass(frozen=True)
class Box:
    id: int = 1
    address: str = "rep@brand.example"


def dead_then_fine(made: Submission) -> SubmitResult:
    return ACCEPTED if made.fresh_token else DEAD_TOKEN


@pytest.mark.parametrize(("tokens", "tries"), [(True, 2), (False, 1)])
async def test_a_dead_token_is_renewed_once_for_oauth_mailboxes_only(
    tokens: bool, tries: int
) -> None:
    fake = FakeSubmitter(dead_then_fine, tokens=tokens)
    result = await sending.submit(
        fake, Box(), "microsoft365", "rep@brand.example", ["a@x.example"], b"raw"
    )
    assert len(fake.submissions) == tries
    assert result.delivery is (Delivery.ACCEPTED if tokens else Delivery.REFUSED)
    assert [s.fresh_token for s in fake.submissions] == [False, True][:tries]


async def test_an_accepted_message_is_submitted_once() -> None:
    fake = FakeSubmitter()
    result = await sending.submit(
        fake, Box(), "microsoft365", "rep@brand.example", ["a@x.example"], b"raw"
    )
    assert result.delivery is Delivery.ACCEPTED and len(fake.submissions) == 1
