"""When someone is back: a return date read from out-of-office text in seven languages.

Absolute dates ("until 14 March 2025", "bis 14.03.", "jusqu'au 3 avril",
"hasta el 15 de abril", "t/m 7 april", "até 22/05/2025", "fino al 2 giugno")
are collected and the latest plausible one wins, so a range "from 3 to 14
March" gives the 14th. Without one, a weekday or "tomorrow" or "next week"
after a return cue ("back on Monday", "ab Montag wieder") is resolved against
``anchor``, the day the answer was written. A date with no year, or any relative
date, needs the anchor; nothing here reads the clock.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

MAX_SCAN_CHARS = 4000
"""Characters of text searched; a return date is stated near the top."""
# A return date further from the anchor than this is a typo or someone else's date.
_PAST = timedelta(days=7)
_FUTURE = timedelta(days=400)

_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        "january jan januar jänner janvier janv enero ene januari janeiro gennaio genn",
        "february feb februar février fevrier févr fevr febrero februari fevereiro febbraio",
        "march mar märz maerz mär mars marzo maart mrt março marco",
        "april apr avril avr abril aprile",
        "may mai mayo mei maio maggio",
        "june jun juni juin junio junho giugno",
        "july jul juli juillet juil julio julho luglio",
        "august aug août aout agosto augustus",
        "september sep sept septembre septiembre setiembre setembro settembre sett",
        "october oct oktober okt octobre octubre outubro ottobre ott",
        "november nov novembre noviembre novembro",
        "december dec dezember dez décembre decembre déc diciembre dic dezembro dicembre",
    ),
    start=1,
):
    for _name in _names.split():
        _MONTHS[_name] = _number
_MONTH = "|".join(sorted((re.escape(m) for m in _MONTHS), key=len, reverse=True))

_DAY_MONTH = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th|er|e|º|°)?\.?\s{{1,3}}(?:of\s+|de\s+)?({_MONTH})\b\.?"
    rf"(?:,?\s{{1,3}}(?:de\s+)?(\d{{4}})\b)?",
)
_MONTH_DAY = re.compile(
    rf"(?<![^\W\d_])({_MONTH})\b\.?\s{{1,3}}(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s{{1,3}}(\d{{4}})\b)?",
)
_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_DOTTED = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(?:(\d{4}|\d{2})\b|(?!\d))")
_SLASHED = re.compile(
    r"(?<![\d/-])(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?(?![\d/])"
    r"|(?<![\d/-])(\d{1,2})-(\d{1,2})-(\d{4})(?![\d-])"
)

_WEEKDAYS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        "monday montag lundi lunes maandag segunda segunda-feira lunedì lunedi",
        "tuesday dienstag mardi martes dinsdag terça terca terça-feira martedì martedi",
        "wednesday mittwoch mercredi miércoles miercoles woensdag quarta quarta-feira mercoledì",
        "thursday donnerstag jeudi jueves donderdag quinta quinta-feira giovedì giovedi",
        "friday freitag vendredi viernes vrijdag sexta sexta-feira venerdì venerdi",
        "saturday samstag samedi sábado sabado zaterdag sabato",
        "sunday sonntag dimanche domingo zondag domenica",
    )
):
    for _name in _names.split():
        _WEEKDAYS[_name] = _number
_WEEKDAY = "|".join(sorted((re.escape(d) for d in _WEEKDAYS), key=len, reverse=True))
_CUE = (
    r"back|return(?:ing)?|until|till|through|zurück|zurueck|wieder|bis|retour|jusqu.au|jusqu.à"
    r"|regres\w*|hasta|vuelta|terug|weer|tot|t/m|volta|até|ate|retorn\w*|rientr\w*|fino\s+a"
)
_CUED_WEEKDAY = re.compile(rf"(?:{_CUE})\W+(?:\w+\W+){{0,3}}?({_WEEKDAY})\b")
_ANY_WEEKDAY = re.compile(rf"(?<![^\W\d_])({_WEEKDAY})\b")
_TOMORROW = re.compile(
    r"\b(?:tomorrow|demain|(?<!la\s)mañana|amanhã|amanha|domani)\b",
)
_NEXT_WEEK = re.compile(
    r"\bnext\s+week\b|n(?:ä|ae)chste[nr]?\s+woche|semaine\s+prochaine|pr[óo]xima\s+semana"
    r"|semana\s+que\s+(?:viene|vem)|volgende\s+week|prossima\s+settimana",
)


def _year(two_or_four: str) -> int:
    value = int(two_or_four)
    return value + 2000 if value < 100 else value


def _make(year: int | None, month: int, day: int, anchor: date | None) -> date | None:
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        return None
    if year is None:
        if anchor is None:
            return None
        for candidate_year in (anchor.year, anchor.year + 1):
            found = _safe_date(candidate_year, month, day)
            if found is not None and found >= anchor - _PAST:
                return found
        return None
    return _safe_date(year, month, day)


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _absolute(text: str, anchor: date | None, month_first: bool) -> list[date]:
    found: list[date | None] = []
    for match in _DAY_MONTH.finditer(text):
        day, month, year = match.groups()
        found.append(_make(int(year) if year else None, _MONTHS[month.lower()], int(day), anchor))
    for match in _MONTH_DAY.finditer(text):
        month, day, year = match.groups()
        found.append(_make(int(year) if year else None, _MONTHS[month.lower()], int(day), anchor))
    for match in _ISO.finditer(text):
        year, month, day = match.groups()
        found.append(_make(int(year), int(month), int(day), anchor))
    for match in _DOTTED.finditer(text):
        day, month, year = match.groups()
        found.append(_make(_year(year) if year else None, int(month), int(day), anchor))
    for match in _SLASHED.finditer(text):
        groups = match.groups()
        first, second, year = groups[:3] if groups[0] is not None else groups[3:]
        a, b = int(first), int(second)
        # Day first unless the text is English (US order) or the first number cannot be a day.
        if a > 12 or (b <= 12 and not month_first):
            day, month = a, b
        else:
            day, month = b, a
        found.append(_make(_year(year) if year else None, month, day, anchor))
    return [d for d in found if d is not None]


def _next_weekday(anchor: date, weekday: int) -> date:
    ahead = (weekday - anchor.weekday()) % 7 or 7
    return anchor + timedelta(days=ahead)


def _relative(text: str, anchor: date) -> date | None:
    cued = _CUED_WEEKDAY.search(text)
    if cued is not None:
        return _next_weekday(anchor, _WEEKDAYS[cued.group(1).lower()])
    days = {_WEEKDAYS[m.group(1).lower()] for m in _ANY_WEEKDAY.finditer(text)}
    if len(days) == 1:
        return _next_weekday(anchor, days.pop())
    if _TOMORROW.search(text):
        return anchor + timedelta(days=1)
    if _NEXT_WEEK.search(text):
        return _next_weekday(anchor, 0)
    return None


def return_date(text: str, *, anchor: date | None, language: str | None = None) -> date | None:
    """The day the writer of an out-of-office text is back, if the text says.

    ``anchor`` is the day the text was written (the message's Date, else the
    caller's now); ``language`` "en" reads 3/4/2025 as March 4th, others as 3 April.
    """
    text = text[:MAX_SCAN_CHARS].lower()
    candidates = _absolute(text, anchor, month_first=language == "en")
    if anchor is not None:
        candidates = [d for d in candidates if anchor - _PAST <= d <= anchor + _FUTURE]
    else:
        candidates = [d for d in candidates if 2000 <= d.year <= 2100]
    if candidates:
        return max(candidates)
    if anchor is None:
        return None
    return _relative(text, anchor)
