"""Simulated prospects: the people on the receiving end of a campaign, and how they answer.

Each delivery to a prospect domain is recorded. Each prospect address has a fate,
drawn deterministically from the address and a seed in the shares of
:class:`AnswerShares`: it replies (once, to its first or second message), asks
to be removed, is out of office (an RFC 3834 answer to each message, at most one
every four days, mostly with a return date), bounces for good (user unknown),
bounces softly once (mailbox full), or stays silent. Answers are queued at a
realistic delay after the delivery, on the virtual clock, and addressed to the
**sending** mailbox; :meth:`ProspectSimulator.due` hands over those whose time
has come (the sandbox files them, some in Junk, with
:meth:`~mailfleet.sandbox.world.Sandbox.release_answers`).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import heapq
import itertools
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import getaddresses
from enum import StrEnum

from mailfleet.sandbox.answers import (
    Original,
    build_dsn,
    build_out_of_office,
    build_reply,
    mailbox_full,
    user_unknown,
)
from mailfleet.sandbox.directory import normalize_address
from mailfleet.sandbox.headers import summarize_headers


class Fate(StrEnum):
    """How one prospect answers."""

    REPLY = "reply"
    UNSUBSCRIBE = "unsubscribe"
    OUT_OF_OFFICE = "out_of_office"
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    SILENT = "silent"


@dataclass(frozen=True, slots=True)
class AnswerShares:
    """Shares of prospects per fate (the rest stay silent) and of answers filed in Junk."""

    reply: float = 0.10
    unsubscribe: float = 0.02
    out_of_office: float = 0.06
    hard_bounce: float = 0.03
    soft_bounce: float = 0.01
    junk: float = 0.15
    seed: int = 0

    def __post_init__(self) -> None:
        shares = (self.reply, self.unsubscribe, self.out_of_office, self.hard_bounce)
        if any(s < 0 for s in (*shares, self.soft_bounce, self.junk)):
            raise ValueError("answer shares cannot be negative")
        if sum(shares) + self.soft_bounce > 1 or self.junk > 1:
            raise ValueError("answer shares add up to more than 1")


SILENT = AnswerShares(0, 0, 0, 0, 0, 0)
"""Prospects that never answer."""


@dataclass(frozen=True, slots=True)
class ProspectDelivery:
    """One message as a prospect received it."""

    address: str
    sender: str
    message_id: str | None
    in_reply_to: str | None
    subject: str | None
    received_at: datetime
    references: tuple[str, ...] = ()
    sender_name: str = ""
    headers: bytes = field(default=b"", repr=False)
    body: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True, order=True)
class Answer:
    """A message a prospect sends back to the sending mailbox at ``at``."""

    at: datetime
    seq: int
    kind: Fate = field(compare=False)
    prospect: str = field(compare=False)
    mailbox: str = field(compare=False)  # the sending mailbox it goes to
    junk: bool = field(compare=False)
    raw: bytes = field(compare=False, repr=False)
    answers_message_id: str | None = field(compare=False, default=None)
    return_date: date | None = field(compare=False, default=None)


REPLIES = (
    "Hi {sender},\n\nThanks for reaching out. Happy to talk - does Thursday afternoon work "
    "for a quick call?\n\nBest,\n{name}",
    "Hi {sender},\n\nNot a priority for us this quarter, but feel free to check back in the "
    "summer.\n\nThanks,\n{name}",
    "Hello {sender},\n\nCould you send over some pricing details first? Then I can take it "
    "to the team.\n\n{name}",
    "Hi {sender},\n\nI'm not the right person for this - our head of operations would be. "
    "I've copied her in.\n\nRegards,\n{name}",
)
UNSUBSCRIBES = (
    "Please remove me from your mailing list.\n\n{name}",
    "Not interested. Please stop emailing me.",
    "Unsubscribe",
)


def _unit(*parts: object) -> float:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _person(address: str) -> str:
    local = address.partition("@")[0]
    words = [w for w in local.replace("_", ".").replace("-", ".").split(".") if w.isalpha()]
    return " ".join(w.capitalize() for w in words[:2]) or local


def _first_name(name: str) -> str:
    return name.split()[0] if name.split() else name


def _plain_body(raw: bytes) -> tuple[bytes, str, str]:
    """The header block, the plain text body and the From display name of ``raw``."""
    head, _, _ = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        part = message.get_body(preferencelist=("plain",))
        text = part.get_content() if isinstance(part, EmailMessage) else ""
        names = getaddresses([str(message.get("From", ""))])
        sender_name = names[0][0] if names else ""
    except Exception:  # the simulator quotes what it can; a bad message is quoted empty
        text, sender_name = "", ""
    return head, str(text), sender_name


class ProspectSimulator:
    """Knows which domains are prospects', remembers deliveries and queues the answers."""

    def __init__(self, shares: AnswerShares | None = None) -> None:
        self.shares = shares or AnswerShares()
        self._domains: set[str] = set()
        self._deliveries: list[ProspectDelivery] = []
        self._by_address: defaultdict[str, list[ProspectDelivery]] = defaultdict(list)
        self._queue: list[Answer] = []
        self._sent: list[Answer] = []
        self._seq = itertools.count()
        self._last_ooo: dict[tuple[str, str], datetime] = {}
        self._answered: set[str] = set()
        self._sender_bounce: dict[str, float] = {}

    def set_sender_bounce(self, sender: str, share: float) -> None:
        """Make ``share`` of the prospects mailed by ``sender`` bounce hard (a bad list slice).

        Drawn per prospect address and seed, on top of their own fate; 0 lifts it.
        """
        if not 0 <= share <= 1:
            raise ValueError(f"bounce share for {sender} must be between 0 and 1, not {share}")
        key = normalize_address(sender)
        if share:
            self._sender_bounce[key] = share
        else:
            self._sender_bounce.pop(key, None)

    def fate_from(self, address: str, sender: str) -> Fate:
        """How ``address`` answers mail from ``sender`` (its own fate, or a bad slice's bounce)."""
        share = self._sender_bounce.get(normalize_address(sender), 0.0)
        if share and _unit("sender-bounce", self.shares.seed, normalize_address(address)) < share:
            return Fate.HARD_BOUNCE
        return self.fate(address)

    def add_domain(self, domain: str) -> None:
        """Treat every address at ``domain`` as a simulated prospect."""
        self._domains.add(domain.strip().lower().rstrip("."))

    @property
    def domains(self) -> frozenset[str]:
        """The prospect domains."""
        return frozenset(self._domains)

    def is_prospect(self, address: str) -> bool:
        """Whether ``address`` belongs to a prospect domain."""
        _, _, domain = normalize_address(address).rpartition("@")
        return domain in self._domains

    def fate(self, address: str) -> Fate:
        """How ``address`` answers: the same for the same address and seed, every run."""
        s = self.shares
        u = _unit("fate", s.seed, normalize_address(address))
        for fate, share in (
            (Fate.HARD_BOUNCE, s.hard_bounce),
            (Fate.SOFT_BOUNCE, s.soft_bounce),
            (Fate.OUT_OF_OFFICE, s.out_of_office),
            (Fate.UNSUBSCRIBE, s.unsubscribe),
            (Fate.REPLY, s.reply),
        ):
            if u < share:
                return fate
            u -= share
        return Fate.SILENT

    def record(
        self, address: str, sender: str, raw: bytes, received_at: datetime
    ) -> ProspectDelivery:
        """Remember that ``address`` received ``raw`` from ``sender``, and queue its answer."""
        headers = summarize_headers(raw)
        head, body, sender_name = _plain_body(raw)
        delivery = ProspectDelivery(
            address=normalize_address(address),
            sender=normalize_address(sender),
            message_id=headers.message_id,
            in_reply_to=headers.in_reply_to,
            subject=headers.subject,
            received_at=received_at,
            references=headers.references,
            sender_name=sender_name,
            headers=head,
            body=body,
        )
        self._deliveries.append(delivery)
        self._by_address[delivery.address].append(delivery)
        answer = self._answer(delivery, len(self._by_address[delivery.address]))
        if answer is not None:
            heapq.heappush(self._queue, answer)
        return delivery

    def _answer(self, delivery: ProspectDelivery, nth: int) -> Answer | None:
        fate = self.fate_from(delivery.address, delivery.sender)
        if fate is Fate.SILENT:
            return None
        address = delivery.address
        rng = random.Random(f"{self.shares.seed}:{address}:{nth}")
        name = _person(address)
        original = Original(
            recipient=address,
            sender=delivery.sender,
            sender_name=delivery.sender_name,
            message_id=delivery.message_id,
            references=delivery.references,
            subject=delivery.subject or "",
            date=delivery.received_at,
            headers=delivery.headers,
            body=delivery.body,
        )
        domain = address.rpartition("@")[2]
        sender_domain = delivery.sender.rpartition("@")[2]
        token = hashlib.sha256(f"{self.shares.seed}:{address}:{nth}".encode()).hexdigest()[:24]
        message_id = f"<{token}@{domain}>"
        at = delivery.received_at
        return_date: date | None = None
        if fate is Fate.HARD_BOUNCE or (fate is Fate.SOFT_BOUNCE and nth == 1):
            at += timedelta(seconds=rng.randint(30, 300))
            failure = user_unknown(address) if fate is Fate.HARD_BOUNCE else mailbox_full(address)
            raw = build_dsn(
                original,
                failure,
                reporting_mta=f"outbound.{sender_domain}",
                remote_mta=f"mx.{domain}",
                at=at,
                message_id=f"<{token}@{sender_domain}>",  # the postmaster's own id
                boundary=f"dsn-{token[:12]}",
            )
        elif fate is Fate.OUT_OF_OFFICE:
            last = self._last_ooo.get((address, delivery.sender))
            if last is not None and delivery.received_at - last < timedelta(days=4):
                return None  # RFC 3834: not every message gets another automatic answer
            self._last_ooo[(address, delivery.sender)] = delivery.received_at
            at += timedelta(seconds=rng.randint(20, 240))
            if rng.random() < 0.75:
                return_date = (delivery.received_at + timedelta(days=rng.randint(3, 10))).date()
            raw = build_out_of_office(
                original, name=name, return_date=return_date, at=at, message_id=message_id
            )
        elif fate in (Fate.REPLY, Fate.UNSUBSCRIBE):
            wanted = 1 if fate is Fate.UNSUBSCRIBE or _unit("step", address) < 0.6 else 2
            if nth != wanted or address in self._answered:
                return None
            self._answered.add(address)
            at += timedelta(minutes=rng.randint(20, 30 * 60))
            texts = REPLIES if fate is Fate.REPLY else UNSUBSCRIBES
            text = rng.choice(texts).format(
                name=name, sender=_first_name(delivery.sender_name) or "there"
            )
            raw = build_reply(original, name=name, text=text, at=at, message_id=message_id)
        else:
            return None
        junk = _unit("junk", self.shares.seed, address, nth) < self.shares.junk
        return Answer(
            at=at,
            seq=next(self._seq),
            kind=fate,
            prospect=address,
            mailbox=delivery.sender,
            junk=junk,
            raw=raw,
            answers_message_id=delivery.message_id,
            return_date=return_date,
        )

    def due(self, now: datetime) -> list[Answer]:
        """Take the queued answers whose time has come, oldest first."""
        ready: list[Answer] = []
        while self._queue and self._queue[0].at <= now:
            answer = heapq.heappop(self._queue)
            ready.append(answer)
            self._sent.append(answer)
        return ready

    def next_answer_at(self) -> datetime | None:
        """When the next queued answer is due, if any."""
        return self._queue[0].at if self._queue else None

    def answers(self) -> list[Answer]:
        """Every answer handed over so far, in order."""
        return list(self._sent)

    def received(self, address: str) -> list[ProspectDelivery]:
        """What ``address`` received, oldest first."""
        return list(self._by_address.get(normalize_address(address), []))

    def deliveries(self) -> list[ProspectDelivery]:
        """Every delivery to any prospect, oldest first."""
        return list(self._deliveries)

    def count(self) -> int:
        """How many deliveries to prospects there were (one per recipient)."""
        return len(self._deliveries)
