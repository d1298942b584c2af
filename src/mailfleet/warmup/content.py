"""Warmup text: natural business mail generated locally from templates, spintax and topics.

Nothing is fetched and nothing is tracked: no links, no images, no HTML. Every
choice is a pure function of a seed, so the same thread, message and seed give
the same text. A thread has a topic; its first message asks something about it,
the follow-ups and replies continue the same topic over several days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from string import Template

from mailfleet.content.spintax import spin
from mailfleet.warmup.plan import unit

TOPICS: tuple[tuple[str, str], ...] = (
    ("quarterly planning", "the planning session"),
    ("the supplier review", "the supplier shortlist"),
    ("onboarding for the new hires", "the onboarding checklist"),
    ("the budget forecast", "the forecast numbers"),
    ("the customer workshop", "the workshop agenda"),
    ("the office move", "the moving schedule"),
    ("the training schedule", "the training dates"),
    ("our partner meeting", "the meeting notes"),
    ("the product roadmap", "the roadmap draft"),
    ("the team offsite", "the offsite venue"),
    ("the invoice process", "the new invoice steps"),
    ("the hiring plan", "the interview panel"),
    ("the contract renewal", "the renewal terms"),
    ("the quarterly report", "the report outline"),
    ("the trade fair", "the stand layout"),
    ("the website refresh", "the content plan"),
)

SUBJECTS = (
    "{Quick question|A question|Question} about $topic",
    "$Topic{| - next steps| follow-up| update}",
    "{Thoughts on|Notes on|Re-thinking} $topic",
    "{Catching up|Checking in} on $topic",
    "$Topic this {week|month}",
)

OPENINGS = (
    "{Hi|Hello|Hey} $peer,\n\n{I hope your week is going well.|Hope you are doing well.|"
    "Hope all is good on your side.} {I wanted to ask|I was wondering|Quick one} about $topic: "
    "{do you have a few minutes this week|could we compare notes|would you share your view} "
    "{before Friday|when you get a chance|sometime next week}?\n\n"
    "{We are looking at|I am putting together|We have started on} $item and "
    "{your input would help a lot|it would be good to hear how you handle it|"
    "I would value a second opinion}.\n\n{Thanks|Many thanks|Best},\n$sender",
    "{Hi|Hello} $peer,\n\n{Following our last chat|As promised|Just a short note}, "
    "{I have been thinking about|I had another look at|we made progress on} $topic. "
    "{The main open point is|What is still open is|The part I am unsure about is} $item.\n\n"
    "{Let me know what you think.|Happy to discuss whenever suits you.|"
    "Any thoughts are welcome.}\n\n{Regards|Best regards|Cheers},\n$sender",
)

FOLLOW_UPS = (
    "{Hi|Hello} $peer,\n\n{A quick follow-up on|Coming back to|Circling back on} $topic. "
    "{We went through|I reviewed|The team looked at} $item {yesterday|this morning|today} and "
    "{it looks good overall|there are a couple of small changes|most of it is settled}.\n\n"
    "{Speak soon|Talk soon|Thanks again},\n$sender",
    "$peer,\n\n{One more thing about|An update on|Small update regarding} $topic: "
    "{we moved|I adjusted|we finalised} $item {a little|as discussed|for next week}.\n\n"
    "{Best|Regards},\n$sender",
)

REPLIES = (
    "{Hi|Hello|Hey} $peer,\n\n{Thanks for the note|Thanks for reaching out|Good to hear from you}"
    ". {Sounds good to me|That works for us|Makes sense} - {I will look at|I can check|"
    "let me go through} $item {tomorrow|later this week|by Thursday}.\n\n"
    "{Best|Thanks|Cheers},\n$sender",
    "$peer,\n\n{Agreed|Good point|Thanks, noted}. {On our side|Here} $topic "
    "{is on track|moved forward this week|is nearly wrapped up}; {I will send|I will share|"
    "expect} {a short update|my notes|a summary} {soon|next week|in a few days}.\n\n"
    "{Regards|Best},\n$sender",
)

_LINK = re.compile(r"https?://|www\.|<img|<a\s", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class WarmupText:
    """A subject and a plain-text body."""

    subject: str
    body: str


def topic_for(seed: object) -> int:
    """The index of a thread's topic in :data:`TOPICS`."""
    return int(unit("topic", seed) * len(TOPICS))


def _first_name(display: str, address: str) -> str:
    name = display.strip().split(" ")[0] if display.strip() else ""
    if name:
        return name
    local = address.partition("@")[0]
    word = re.split(r"[._-]", local)[0]
    return word.capitalize() if word.isalpha() else "there"


def _fill(source: str, seed: str, topic: int, sender: str, peer: str) -> str:
    name, item = TOPICS[topic % len(TOPICS)]
    text = spin(source, seed)
    return Template(text).safe_substitute(
        topic=name, Topic=name[0].upper() + name[1:], item=item, sender=sender, peer=peer
    )


def _pick(options: tuple[str, ...], *seed: object) -> str:
    return options[int(unit(*seed) * len(options))]


def opening(
    seed: str, topic: int, *, sender_name: str, sender: str, peer_name: str, peer: str
) -> WarmupText:
    """The first message of a thread about ``topic``."""
    who, to = _first_name(sender_name, sender), _first_name(peer_name, peer)
    subject = _fill(_pick(SUBJECTS, "subject", seed), seed + ":s", topic, who, to)
    body = _fill(_pick(OPENINGS, "opening", seed), seed + ":b", topic, who, to)
    return WarmupText(subject, body)


def continuation(
    seed: str, topic: int, *, reply: bool, sender_name: str, sender: str, peer_name: str, peer: str
) -> str:
    """The body of a later message in a thread: a follow-up, or a reply to the other side."""
    who, to = _first_name(sender_name, sender), _first_name(peer_name, peer)
    options = REPLIES if reply else FOLLOW_UPS
    return _fill(_pick(options, "next", seed), seed + ":b", topic, who, to)


def has_link(text: str) -> bool:
    """Whether ``text`` contains a link or image markup (warmup text never should)."""
    return _LINK.search(text) is not None
