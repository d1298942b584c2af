"""Understanding received mail: one pure classifier from raw bytes to a typed verdict.

``classify(raw)`` says whether a message is a bounce, a delivery report, an
automatic answer, a complaint, a request to unsubscribe, a person's reply,
warmup traffic or something else, with what the engine needs to act: failed
recipients (hard or soft, and why), the original Message-ID, the return date of
an out-of-office answer, the threading ids and the new text of a reply.
"""

from mailfleet.inbound.classifier import (
    DEFAULT_WARMUP_MARKER,
    MAX_RESULT_TEXT,
    classify,
)
from mailfleet.inbound.message import MAX_MESSAGE_BYTES
from mailfleet.inbound.reasons import bounce_reason
from mailfleet.inbound.result import (
    Action,
    BounceReason,
    Classification,
    Complaint,
    Kind,
    Recipient,
)
from mailfleet.inbound.threads import new_text, thread_subject

__all__ = [
    "DEFAULT_WARMUP_MARKER",
    "MAX_MESSAGE_BYTES",
    "MAX_RESULT_TEXT",
    "Action",
    "BounceReason",
    "Classification",
    "Complaint",
    "Kind",
    "Recipient",
    "bounce_reason",
    "classify",
    "new_text",
    "thread_subject",
]
