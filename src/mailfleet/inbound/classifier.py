"""Classify one received message: raw bytes in, a frozen :class:`Classification` out.

The order of the questions is the design:

1. Is it a report? RFC 3464 delivery status (``bounce`` or ``delivered``), an
   ARF feedback report or a JMRP copy (``complaint``). Reports carry empty
   Return-Paths and auto headers, so they are recognised before anything that
   reads those headers.
2. Is it a bounce in an MTA's own format? Only mail that looks like one (a
   mailer-daemon sender, a non-delivery subject, ``X-Failed-Recipients``) goes
   to flufl.bounce; Exim's bounces say ``Auto-Submitted: auto-replied`` and must
   not become out-of-office answers.
3. Does it carry the warmup marker (``warmup``)?
4. Did a machine answer (``auto_reply``): RFC 3834 and vendor headers, an
   automatic-answer subject, or out-of-office wording with its usual redirect.
   A return date is read from the text.
5. Did a person ask to be removed (``unsubscribe``), in the new text only, so
   our own quoted footer never counts?
6. Otherwise a person answered (``reply``), unless nobody could have (no
   sender, a no-reply or daemon sender, a newsletter, nothing at all: ``other``).

Only headers and the parts each question needs are read; the body is decoded
once. Nothing here reads the clock: ``now`` only anchors a relative return date
when the message has no readable Date.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from email.message import Message

from mailfleet.inbound.arf import FEEDBACK_TYPES, JMRP_SENDERS, read_complaint
from mailfleet.inbound.autoreply import auto_signals, is_newsletter
from mailfleet.inbound.dates import return_date as read_return_date
from mailfleet.inbound.dsn import STATUS_TYPES, read_bounce_text, read_status_report
from mailfleet.inbound.message import (
    MAX_MESSAGE_BYTES,
    Parsed,
    Part,
    addresses,
    body_text,
    first_message_id,
    message_date,
    message_ids,
    parse,
    walk,
)
from mailfleet.inbound.result import Action, Classification, Complaint, Kind, Recipient
from mailfleet.inbound.threads import is_reply_subject, new_text, thread_subject
from mailfleet.inbound.wording import (
    AUTO_SUBJECT,
    BOUNCE_SUBJECT,
    DAEMON_LOCAL,
    NOREPLY_LOCAL,
    automatic,
    out_of_office,
    redirect,
    unsubscribe,
)

DEFAULT_WARMUP_MARKER = "mfwu-"
"""Token that marks warmup mail in a header value or the body until the warmup side sets one."""
MAX_RESULT_TEXT = 4000
"""Characters of text a :class:`Classification` carries."""
MAX_REFERENCES = 50
"""References kept from a message (a long thread's full chain is not needed)."""
_HEURISTIC_BYTES = 64 * 1024  # what flufl.bounce reads: its cost grows with every body line
_MAX_OOO_TEXT = 3000  # out-of-office wording alone counts only in a short text
_NOT_COMPLAINTS = frozenset({"auth-failure", "not-spam"})
_SUCCESS = frozenset({Action.DELIVERED, Action.RELAYED, Action.EXPANDED})
_DELIVERY_SYSTEM = ("mail delivery", "mailer-daemon", "postmaster", "mail administrator")


class _Envelope:
    """The headers every kind of result carries."""

    __slots__ = (
        "date",
        "from_address",
        "from_name",
        "in_reply_to",
        "message_id",
        "references",
        "subject",
        "to_addresses",
    )

    def __init__(self, parsed: Parsed) -> None:
        sender = addresses(parsed.raw("from"))
        self.from_name: str | None = (sender[0][0] or None) if sender else None
        self.from_address: str | None = sender[0][1] if sender else None
        self.to_addresses = tuple(a for _, a in addresses(parsed.raw("to")))
        self.subject = parsed.header("subject")
        self.message_id = first_message_id(parsed.raw("message-id"))
        replied = message_ids(parsed.raw("in-reply-to"))
        self.in_reply_to: str | None = replied[0] if replied else None
        self.references = tuple(message_ids(parsed.raw("references"))[-MAX_REFERENCES:])
        self.date = message_date(parsed.raw("date"))


def classify(
    raw: bytes,
    *,
    our_message_ids: Callable[[str], bool] | None = None,
    warmup_marker: str | None = DEFAULT_WARMUP_MARKER,
    now: datetime | None = None,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> Classification:
    """Classify a raw RFC 5322 message; never raises on bad input.

    ``our_message_ids`` answers whether a Message-ID (``"<…>"``) is one of our
    sends; it fills ``matched_message_id`` and picks among several returned ids.
    ``warmup_marker`` is a token (at least 4 characters) searched in header
    values and the body; None turns warmup detection off. ``now`` anchors
    relative return dates ("back on Monday") when the message has no Date.
    Only the first ``max_bytes`` of ``raw`` are read.
    """
    if warmup_marker is not None and len(warmup_marker.strip()) < 4:
        raise ValueError("warmup_marker must be at least 4 characters, or None")
    parsed = parse(raw, max_bytes)
    env = _Envelope(parsed)
    return _Classifier(parsed, env, our_message_ids, warmup_marker, now).run()


class _Classifier:
    """One classification: the parsed message and what has been decided so far."""

    def __init__(
        self,
        parsed: Parsed,
        env: _Envelope,
        ours: Callable[[str], bool] | None,
        marker: str | None,
        now: datetime | None,
    ) -> None:
        self.parsed = parsed
        self.msg = parsed.message
        self.env = env
        self.ours = ours
        self.marker = marker.strip() if marker else None
        self.now = now
        self._parts: list[Part] | None = None
        self._body: str | None = None
        self._new: str | None = None
        self._low: str | None = None

    # -- lazily decoded text -------------------------------------------------

    @property
    def parts(self) -> list[Part]:
        if self._parts is None:
            self._parts = [] if self.parsed.headers_only else walk(self.msg)
        return self._parts

    @property
    def body(self) -> str:
        if self._body is None:
            headers_only = self.parsed.headers_only
            self._body = body_text(self.msg, headers_only=headers_only, parts=self.parts)
        return self._body

    @property
    def new(self) -> str:
        if self._new is None:
            self._new = new_text(self.body)
        return self._new

    @property
    def low(self) -> str:
        if self._low is None:
            self._low = self.new.lower()
        return self._low

    # -- building results ----------------------------------------------------

    def _answered(self) -> str | None:
        """The message this one answers: In-Reply-To, else the last of References."""
        if self.env.in_reply_to:
            return self.env.in_reply_to
        return self.env.references[-1] if self.env.references else None

    def _matched(self, original: str | None) -> str | None:
        if self.ours is None:
            return None
        candidates = [original] if original else []
        if self.env.in_reply_to:
            candidates.append(self.env.in_reply_to)
        candidates.extend(reversed(self.env.references))
        for candidate in candidates:
            if self.ours(candidate):
                return candidate
        return None

    def _result(
        self,
        kind: Kind,
        signals: list[str],
        *,
        text: str | None = None,
        recipients: tuple[Recipient, ...] = (),
        original_message_id: str | None = None,
        complaint: Complaint | None = None,
        return_date: date | None = None,
        language: str | None = None,
    ) -> Classification:
        env = self.env
        return Classification(
            kind=kind,
            from_address=env.from_address,
            from_name=env.from_name,
            to_addresses=env.to_addresses,
            subject=env.subject,
            thread_subject=thread_subject(env.subject),
            message_id=env.message_id,
            in_reply_to=env.in_reply_to,
            references=env.references,
            date=env.date,
            matched_message_id=self._matched(original_message_id),
            recipients=recipients,
            original_message_id=original_message_id,
            complaint=complaint,
            return_date=return_date,
            language=language,
            text=(self.new if text is None else text)[:MAX_RESULT_TEXT],
            signals=tuple(signals),
            truncated=self.parsed.truncated,
        )

    # -- the questions, in order ---------------------------------------------

    def run(self) -> Classification:
        """Ask the questions in order; the first answer wins."""
        for step in (self._report, self._bounce_text, self._warmup, self._auto_reply):
            result = step()
            if result is not None:
                return result
        return self._person()

    def _report(self) -> Classification | None:
        if self.parsed.headers_only or not self.msg.is_multipart():
            return self._jmrp()
        ctype = self.msg.get_content_type()
        if ctype == "multipart/report":
            report_type = str(self.msg.get_param("report-type", "") or "").lower()
            if report_type == "disposition-notification":
                return self._result(Kind.OTHER, ["mdn"], text=self.body)
        elif ctype != "multipart/mixed":
            # Reports are multipart/report, or wrapped in multipart/mixed by some relays;
            # a person's multipart/alternative or related mail holds none.
            return self._jmrp()
        status_part = feedback_part = None
        for part, ctype in self.parts:
            if ctype in STATUS_TYPES and status_part is None:
                status_part = part
            elif ctype in FEEDBACK_TYPES and feedback_part is None:
                feedback_part = part
        if feedback_part is not None:
            complaint = read_complaint(self.msg, feedback_part, self.ours, parts=self.parts)
            # DMARC failure reports and "not spam" reports are ARF but nobody complained.
            person = complaint.complaint.feedback_type not in _NOT_COMPLAINTS
            return self._result(
                Kind.COMPLAINT if person else Kind.OTHER,
                [f"arf:{complaint.complaint.feedback_type}"],
                recipients=complaint.recipients,
                original_message_id=complaint.original_message_id,
                complaint=complaint.complaint,
                text=complaint.text,
            )
        if status_part is None:
            return self._jmrp()
        report = read_status_report(self.msg, status_part, self.ours, parts=self.parts)
        signals = list(report.signals)
        if not report.recipients:
            # A report the parser could not split: read it as a text bounce.
            fallback = read_bounce_text(
                self.msg,
                self.ours,
                text=self.body,
                heuristic_msg=self._heuristic_message(),
                parts=self.parts,
            )
            report = fallback if fallback.recipients else report
            signals.extend(fallback.signals)
        delivered = bool(report.recipients) and all(r.action in _SUCCESS for r in report.recipients)
        return self._result(
            Kind.DELIVERED if delivered else Kind.BOUNCE,
            signals,
            recipients=report.recipients,
            original_message_id=report.original_message_id or self._answered(),
            text=report.text,
        )

    def _jmrp(self) -> Classification | None:
        sender = (self.env.from_address or "").lower()
        if sender not in JMRP_SENDERS or self.parsed.headers_only:
            return None
        complaint = read_complaint(self.msg, None, self.ours, parts=self.parts)
        if complaint.original_message_id is None and not complaint.recipients:
            return None
        return self._result(
            Kind.COMPLAINT,
            ["jmrp"],
            recipients=complaint.recipients,
            original_message_id=complaint.original_message_id,
            complaint=complaint.complaint,
            text=complaint.text,
        )

    def _heuristic_message(self) -> Message:
        data = self.parsed.data
        if len(data) <= _HEURISTIC_BYTES or self.parsed.headers_only:
            return self.msg
        return parse(data[:_HEURISTIC_BYTES]).message

    def _from_daemon(self) -> bool:
        address = self.env.from_address or ""
        if DAEMON_LOCAL.match(address.rpartition("@")[0]):
            return True
        name = (self.env.from_name or "").lower()
        return any(word in name for word in _DELIVERY_SYSTEM)

    def _bounce_text(self) -> Classification | None:
        daemon = self._from_daemon()
        subject = bool(BOUNCE_SUBJECT.search(self.env.subject))
        failed_header = self.parsed.has("x-failed-recipients")
        if not (daemon or subject or failed_header):
            return None
        report = read_bounce_text(
            self.msg,
            self.ours,
            text=self.body,
            heuristic_msg=self._heuristic_message(),
            parts=self.parts,
            from_mta=daemon,
        )
        if not (report.recipients or failed_header or (daemon and subject)):
            return None
        signals = ["bounce-text", *report.signals]
        if daemon:
            signals.append("sender:daemon")
        if subject:
            signals.append("subject:bounce")
        return self._result(
            Kind.BOUNCE,
            signals,
            recipients=report.recipients,
            original_message_id=report.original_message_id or self._answered(),
            text=report.text,
        )

    def _warmup(self) -> Classification | None:
        marker = self.marker
        if not marker:
            return None
        for name, values in self.parsed.headers.items():
            if name in ("subject", "from", "to", "cc"):
                continue
            if any(marker in value for value in values):
                return self._result(Kind.WARMUP, [f"warmup:header:{name}"])
        if marker in self.body:
            return self._result(Kind.WARMUP, ["warmup:body"])
        return None

    def _auto_reply(self) -> Classification | None:
        if self._from_daemon():
            return None  # system mail from a mail server: a bounce was ruled out already
        signals = auto_signals(self.parsed)
        text = self.new
        low = self.low
        language = out_of_office(low) if len(low) < 2 * _MAX_OOO_TEXT else None
        subject = bool(AUTO_SUBJECT.search(self.env.subject))
        machine = automatic(low[:_MAX_OOO_TEXT])
        if subject:
            signals.append("subject:auto")
        if machine:
            signals.append("wording:automatic")
        if language is not None:
            signals.append(f"wording:ooo:{language}")
        wording = language is not None and len(low) < _MAX_OOO_TEXT and redirect(low)
        headers = any(s.startswith("header:") for s in signals)
        if not (headers or subject or machine or wording):
            return None
        if is_newsletter(self.parsed) and not (subject or language):
            return self._result(Kind.OTHER, [*signals, "newsletter"])
        anchor = self.env.date or self.now
        back = read_return_date(text, anchor=anchor.date() if anchor else None, language=language)
        return self._result(Kind.AUTO_REPLY, signals, return_date=back, language=language)

    def _person(self) -> Classification:
        env = self.env
        address = env.from_address or ""
        local = address.rpartition("@")[0]
        if not address:
            return self._result(Kind.OTHER, ["no-sender"])
        if NOREPLY_LOCAL.match(local) or DAEMON_LOCAL.match(local):
            return self._result(Kind.OTHER, ["sender:no-reply"])
        if is_newsletter(self.parsed):
            return self._result(Kind.OTHER, ["newsletter"])
        text = self.new
        language = unsubscribe(self.low)
        replying = bool(env.in_reply_to or env.references) or is_reply_subject(env.subject)
        if language is None and not replying:
            language = unsubscribe(env.subject.lower())
        if language is not None:
            signals = [f"wording:unsubscribe:{language}"]
            return self._result(Kind.UNSUBSCRIBE, signals, language=language)
        if not text and not env.subject.strip():
            return self._result(Kind.OTHER, ["empty"])
        return self._result(Kind.REPLY, ["person"])
