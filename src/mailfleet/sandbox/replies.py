"""SMTP replies as Microsoft 365 words them, so clients are tested against the real texts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply: the three-digit code and the rest of the line (enhanced code and text)."""

    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


BANNER_TEXT = "Microsoft ESMTP MAIL Service ready"

READY_FOR_TLS = Reply(220, "2.0.0 SMTP server ready")
STARTTLS_REQUIRED = Reply(451, "5.7.3 STARTTLS is required to send mail")
NOT_AUTHENTICATED = Reply(530, "5.7.57 Client not authenticated to send mail")
AUTH_SUCCESSFUL = Reply(235, "2.7.0 Authentication successful")
AUTH_UNSUCCESSFUL = Reply(535, "5.7.3 Authentication unsuccessful")
UNRECOGNIZED_AUTH = Reply(504, "5.7.4 Unrecognized authentication type")
SEND_AS_DENIED = Reply(550, "5.7.60 SMTP; Client does not have permissions to send as this sender")
SEND_HELLO_FIRST = Reply(503, "5.5.2 Send hello first")
SENDER_OK = Reply(250, "2.1.0 Sender OK")
RECIPIENT_OK = Reply(250, "2.1.5 Recipient OK")
RESET_OK = Reply(250, "2.0.0 Resetting")
NOOP_OK = Reply(250, "2.0.0 OK")
CLOSING = Reply(221, "2.0.0 Service closing transmission channel")
TEMPORARY_ERROR = Reply(451, "4.3.0 Temporary server error. Please try again later")


def queued(message_id: str, hostname: str) -> Reply:
    """The reply to an accepted DATA: Microsoft echoes the Message-ID and its own host."""
    return Reply(250, f"2.0.0 OK {message_id} [Hostname={hostname}]")
