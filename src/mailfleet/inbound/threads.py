"""Threads: the subject a conversation goes by, and the new text of a reply without its history.

Quoted history is found by mail-parser-reply's header patterns ("On … wrote:"
and Outlook blocks in en, de, fr, es, nl, it) plus the markers it lacks: the
Portuguese forms, the localised "-----Original Message-----" lines and
Outlook's underscore rule. The library's patterns are quadratic in the length of
a line, so they read a skeleton of the text — at most :data:`MAX_REPLY_SCAN`
characters, every line cut to :data:`MAX_SKELETON_LINE` — and the cut it finds
is mapped back to the full lines.
"""

from __future__ import annotations

import re

from mailparser_reply import EmailMessage

MAX_REPLY_SCAN = 8000
"""Characters of a body searched for the start of quoted history."""
MAX_SKELETON_LINE = 200
"""Characters of each line the reply parser sees."""

# The library's "On … wrote:" and Outlook header patterns for its languages, compiled once.
# Only the first header's position is needed (signatures stay in the new text), so its
# per-message split into replies, signatures and disclaimers is not run.
_LIBRARY_HEADERS: re.Pattern[str] = EmailMessage(
    text="", languages=["en", "de", "fr", "es", "nl", "it"]
).HEADER_REGEX

# Prefixes mail clients put before a subject in replies, forwards and automatic answers,
# in the seven languages and the usual others, plus bracketed tags like "[EXTERNAL]".
_SUBJECT_PREFIX = re.compile(
    r"^(?:\s*(?:(?:re|aw|antw(?:ort)?|wg|fw|fwd|tr|rif|r|sv|vs|res|enc|rv|ref|réf|odp|doorst)"
    r"\s*(?:\[\d{1,4}\]|\(\d{1,4}\))?\s*[:：]|\[[^\]]{0,40}\]|(?:automatic|auto)[ -]?reply\s*:"
    r"|automatische\s+antwort\s*:|r[ée]ponse\s+automatique\s*:|respuesta\s+autom[áa]tica\s*:"
    r"|automatisch\s+antwoord\s*:|resposta\s+autom[áa]tica\s*:|risposta\s+automatica\s*:"
    r"|out\s+of\s+(?:the\s+)?office\s*:|abwesenheitsnotiz\s*:|undeliverable\s*:"
    r"|unzustellbar\s*:|non\s+remis\s*:|onbestelbaar\s*:))+\s*",
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")
# Cheap test for what any of the library's header patterns needs: a "Word:" at the start
# of a line, an attribution verb, or a separator line.
_MAYBE_HEADER = re.compile(
    r"^[ \t>*]*[^\W\d_]{1,15}\s?:|wrote|schrieb|crit|escribi|schreef|scritto|-----|___",
    re.MULTILINE,
)

# History markers the library does not know, each at the start of a line.
_HISTORY = re.compile(
    r"^[ \t>]*(?:"
    r"-{2,}\s*(?:original\s+message|ursprüngliche\s+nachricht|message\s+d.origine"
    r"|mensaje\s+original|oorspronkelijk\s+bericht|mensagem\s+original|messaggio\s+originale"
    r"|forwarded\s+message|weitergeleitete\s+nachricht)\s*-{2,}"
    r"|_{20,}\s*$"
    r"|em\s.{4,200}?escreveu:?\s*$"
    r"|(?:on|am|le|el|op|il|em)\s.{4,200}?(?:wrote|schrieb|a\s+écrit|escribió|schreef"
    r"|ha\s+scritto|escreveu)\s*(?:[^\n:]{0,80})?:\s*$"
    r"|\*?(?:from|von|de|van|da)\s*:\*?[^\n]{1,300}\n[ \t>]*\*?(?:sent|date|gesendet|datum"
    r"|envoyé|enviado(?:\s+el)?|fecha|verzonden|datum|inviato|data)\s*:"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
_WROTE_TAIL = re.compile(
    r"(?:\n(?:on|am|le|el|op|il|em)\s[^\n]{0,300})?\n[^\n]{0,300}"
    r"(?:wrote|schrieb|écrit|escribió|schreef|scritto|escreveu)[^\n]{0,80}:\s*$",
    re.IGNORECASE,
)


def thread_subject(subject: str) -> str:
    """The subject without reply, forward and automatic-answer prefixes, spaces collapsed.

    "RE: AW: [EXTERNAL] Quick question" and "Automatic reply: Quick question"
    both give "Quick question", so a reply can be matched to our thread by subject.
    """
    rest = _SUBJECT_PREFIX.sub("", subject, count=1)
    return _SPACES.sub(" ", rest).strip()


def is_reply_subject(subject: str) -> bool:
    """Whether the subject starts with a reply, forward or automatic-answer prefix."""
    return _SUBJECT_PREFIX.match(subject) is not None


def _library_cut(text: str) -> int:
    """Line index where mail-parser-reply's header patterns first match, else -1."""
    skeleton = "\n".join(line.strip()[:MAX_SKELETON_LINE] for line in text.split("\n"))
    match = _LIBRARY_HEADERS.search(skeleton)
    if match is None:
        return -1
    start = match.start()
    while start < len(skeleton) and skeleton[start] == "\n":
        start += 1
    return skeleton.count("\n", 0, start)


def new_text(body: str) -> str:
    """The text a person wrote above the quoted history (signature kept), stripped."""
    text = body[:MAX_REPLY_SCAN].replace("\r\n", "\n")
    marker = _HISTORY.search(text)
    if marker is not None:
        text = text[: marker.start()]
    if not text.strip():
        return ""
    cut = _library_cut(text) if _MAYBE_HEADER.search(text) else -1
    lines = text.split("\n")
    if cut >= 0:
        lines = lines[:cut]
    # Inline-quoted lines trailing the new text ("> …") are history too.
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith(">")):
        lines.pop()
    result = "\n".join(lines).strip()
    # An attribution line the cut left behind, possibly wrapped over two lines.
    head, end = result[:-700], "\n" + result[-700:]
    tail = _WROTE_TAIL.search(end)
    if tail is not None:
        result = (head + end[: tail.start()]).strip()
    return result
