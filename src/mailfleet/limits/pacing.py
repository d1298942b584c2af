"""Pacing: a mailbox's cold sends spread through the sending window, not burst at its start.

The rule is "remaining capacity over remaining window time": with ``remaining``
cold sends left in the day and the window closing at ``closes``, the next send
waits ``(closes - anchor) / (remaining + 1)`` after the anchor — the later of the
last cold send and the window's opening. On schedule the spacing stays the same
all day (each send leaves one fewer to place in proportionally less time); a
mailbox that fell behind catches up, never faster than its minimum gap. The
spacing is jittered per send (stable, so a retry computes the same instant).
"""

from __future__ import annotations

from datetime import datetime, timedelta

PACE_JITTER = 0.4
"""The spacing is multiplied by a factor in [1 - PACE_JITTER/2, 1 + PACE_JITTER/2)."""


def paced_at(
    *,
    last_cold_at: datetime | None,
    remaining: int,
    opens: datetime,
    closes: datetime,
    jitter: float = 0.5,
) -> datetime:
    """The earliest instant the next cold send of a mailbox may go in a window ``[opens, closes)``.

    ``remaining`` counts the cold sends the mailbox may still make today (at least 1
    when asked); ``jitter`` is a stable number in [0, 1) for this send.
    """
    anchor = opens if last_cold_at is None or last_cold_at < opens else last_cold_at
    if closes <= anchor:
        return anchor
    spacing: timedelta = (closes - anchor) / (max(1, remaining) + 1)
    return anchor + spacing * (1 - PACE_JITTER / 2 + PACE_JITTER * jitter)


def paced_allowance(*, cap: int, opens: datetime, closes: datetime, now: datetime) -> int:
    """How many sends a campaign capped at ``cap`` a day may have made by ``now``.

    One at the opening, then evenly more, reaching the cap before the window closes.
    """
    if now <= opens:
        return 1
    length = (closes - opens).total_seconds()
    if length <= 0 or now >= closes:
        return cap
    return min(cap, 1 + int(cap * (now - opens).total_seconds() / length))


def allowance_grows_at(*, cap: int, sent: int, opens: datetime, closes: datetime) -> datetime:
    """The instant :func:`paced_allowance` first exceeds ``sent`` (for a wake-up time)."""
    if sent >= cap:
        return closes
    length = closes - opens
    return opens + length * (sent / cap)
