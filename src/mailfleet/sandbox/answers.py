"""What simulated prospects send back, written as real mail programs and MTAs write it.

Three builders, pure (the time and the ids are arguments):

- :func:`build_reply` — a person's answer: ``Re:`` subject, ``In-Reply-To`` and
  ``References`` threading it (RFC 5322), the new text on top and the quoted
  history under an "On …, … wrote:" line.
- :func:`build_out_of_office` — an Exchange-style automatic reply: RFC 3834
  ``Auto-Submitted: auto-replied``, ``X-Auto-Response-Suppress``, an "Automatic
  reply:" subject and a return date in the text (or none).
- :func:`build_dsn` — a non-delivery report from the postmaster: RFC 3464
  ``multipart/report; report-type=delivery-status`` with a human part, the
  per-recipient ``message/delivery-status`` fields and the original's headers
  as ``text/rfc822-headers``; sent with an empty ``Return-Path``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from email.utils import format_datetime, formataddr

_CRLF = "\r\n"


@dataclass(frozen=True, slots=True)
class Original:
    """The message being answered, as the prospect's side received it."""

    recipient: str  # the prospect
    sender: str  # our mailbox
    sender_name: str
    message_id: str | None
    references: tuple[str, ...]
    subject: str
    date: datetime
    headers: bytes  # the header block, for a delivery report
    body: str  # the plain text, for quoting


def _header_lines(fields: list[tuple[str, str]]) -> str:
    return "".join(f"{name}: {value}{_CRLF}" for name, value in fields)


def _thread_fields(original: Original) -> list[tuple[str, str]]:
    if original.message_id is None:
        return []
    references = [*original.references[-10:], original.message_id]
    return [("In-Reply-To", original.message_id), ("References", " ".join(references))]


def _reply_subject(subject: str) -> str:
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def _quoted(original: Original) -> str:
    when = original.date.strftime("%a, %d %b %Y at %H:%M")
    lines = original.body.strip().splitlines() or [""]
    quoted = _CRLF.join(f"> {line}".rstrip() for line in lines[:60])
    who = (
        formataddr((original.sender_name, original.sender))
        if original.sender_name
        else (f"<{original.sender}>")
    )
    return f"On {when}, {who} wrote:{_CRLF}{quoted}{_CRLF}"


def _text_part(text: str) -> str:
    # Plain ASCII keeps the simulator's mail 7-bit; names with accents go in headers only.
    return text.replace("\r\n", "\n").replace("\n", _CRLF)


def build_reply(
    original: Original,
    *,
    name: str,
    text: str,
    at: datetime,
    message_id: str,
) -> bytes:
    """A person's threaded answer to ``original`` with the history quoted below it."""
    body = _text_part(text.strip()) + _CRLF + _CRLF + _quoted(original)
    fields = [
        ("From", formataddr((name, original.recipient))),
        ("To", formataddr((original.sender_name, original.sender))),
        ("Subject", _reply_subject(original.subject)),
        ("Date", format_datetime(at)),
        ("Message-ID", message_id),
        *_thread_fields(original),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'text/plain; charset="utf-8"'),
        ("Content-Transfer-Encoding", "8bit"),
    ]
    return (_header_lines(fields) + _CRLF + body).encode("utf-8")


def build_out_of_office(
    original: Original,
    *,
    name: str,
    return_date: date | None,
    at: datetime,
    message_id: str,
) -> bytes:
    """An automatic out-of-office answer; the return date is in the text when given."""
    domain = original.recipient.rpartition("@")[2]
    if return_date is not None:
        until = f"{return_date.day} {return_date.strftime('%B %Y')}"
        first = f"I am out of the office until {until} with limited access to email."
    else:
        first = "I am currently out of the office with limited access to email."
    text = (
        f"Thank you for your message.{_CRLF}{_CRLF}{first}{_CRLF}"
        f"For urgent matters please contact office@{domain}.{_CRLF}{_CRLF}"
        f"Kind regards,{_CRLF}{name}{_CRLF}"
    )
    fields = [
        ("From", formataddr((name, original.recipient))),
        ("To", formataddr((original.sender_name, original.sender))),
        ("Subject", f"Automatic reply: {original.subject}"),
        ("Date", format_datetime(at)),
        ("Message-ID", message_id),
        *_thread_fields(original),
        ("Auto-Submitted", "auto-replied"),
        ("X-Auto-Response-Suppress", "All"),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'text/plain; charset="utf-8"'),
        ("Content-Transfer-Encoding", "8bit"),
    ]
    return (_header_lines(fields) + _CRLF + text).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Failure:
    """Why delivery to the prospect failed, as the receiving MTA said it."""

    status: str  # RFC 3463, e.g. 5.1.1
    reply: str  # the SMTP reply, e.g. "550 5.1.1 <a@b>: Recipient address rejected: …"
    summary: str  # the human sentence of the report


def user_unknown(address: str) -> Failure:
    """A dead address: the hard bounce."""
    return Failure(
        "5.1.1",
        f"550 5.1.1 <{address}>: Recipient address rejected: User unknown in virtual mailbox table",
        "The email account that you tried to reach does not exist.",
    )


def mailbox_full(address: str) -> Failure:
    """A full mailbox: a soft bounce even though it is permanent for this message."""
    return Failure(
        "5.2.2",
        f"552 5.2.2 <{address}>: Mailbox full, quota exceeded",
        "The recipient's mailbox is full and cannot accept messages now.",
    )


def build_dsn(
    original: Original,
    failure: Failure,
    *,
    reporting_mta: str,
    remote_mta: str,
    at: datetime,
    message_id: str,
    boundary: str,
) -> bytes:
    """An RFC 3464 failure report for ``original``, from the sending domain's postmaster."""
    sender_domain = original.sender.rpartition("@")[2]
    human = (
        f"Delivery has failed to these recipients or groups:{_CRLF}{_CRLF}"
        f"{original.recipient}{_CRLF}{failure.summary}{_CRLF}{_CRLF}"
        f"Diagnostic information for administrators:{_CRLF}{_CRLF}"
        f"Generating server: {reporting_mta}{_CRLF}"
        f"Remote server returned '{failure.reply}'{_CRLF}"
    )
    status = (
        f"Reporting-MTA: dns; {reporting_mta}{_CRLF}"
        f"Arrival-Date: {format_datetime(original.date)}{_CRLF}"
        f"{_CRLF}"
        f"Original-Recipient: rfc822; {original.recipient}{_CRLF}"
        f"Final-Recipient: rfc822; {original.recipient}{_CRLF}"
        f"Action: failed{_CRLF}"
        f"Status: {failure.status}{_CRLF}"
        f"Remote-MTA: dns; {remote_mta}{_CRLF}"
        f"Diagnostic-Code: smtp; {failure.reply}{_CRLF}"
    )
    headers = original.headers.decode("utf-8", "replace").replace("\r\n", "\n").rstrip("\n")
    headers = headers.replace("\n", _CRLF) + _CRLF
    fields = [
        ("Return-Path", "<>"),
        ("From", formataddr(("Mail Delivery System", f"postmaster@{sender_domain}"))),
        ("To", original.sender),
        ("Subject", f"Undeliverable: {original.subject}"),
        ("Date", format_datetime(at)),
        ("Message-ID", message_id),
        ("Auto-Submitted", "auto-replied"),
        ("MIME-Version", "1.0"),
        (
            "Content-Type",
            f'multipart/report; report-type=delivery-status; boundary="{boundary}"',
        ),
    ]
    parts = [
        f'Content-Type: text/plain; charset="us-ascii"{_CRLF}{_CRLF}{human}',
        f"Content-Type: message/delivery-status{_CRLF}{_CRLF}{status}",
        f"Content-Type: text/rfc822-headers{_CRLF}{_CRLF}{headers}",
    ]
    body = "".join(f"--{boundary}{_CRLF}{part}{_CRLF}" for part in parts) + f"--{boundary}--{_CRLF}"
    head = _header_lines(fields) + _CRLF
    return (head + "This is a MIME-encapsulated message." + _CRLF + _CRLF + body).encode("utf-8")
