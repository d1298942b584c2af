"""The usage ledger: what each mailbox has sent recently, kept in memory between ticks.

Counting a fleet's sends in SQL at every tick costs more than the rest of the tick
(seconds at 10,000 mailboxes), so the engine keeps the counted sends of the last
:data:`HORIZON` in memory and answers every question the planner asks from them:

- per mailbox: messages in the last minute and in a rolling 24 hours, recipients in
  a rolling 24 hours, cold and accepted-warmup sends of its local day, cold sends per
  recipient domain in its local day, the last send (for the gap) and the last cold one
  (for pacing) — exactly :func:`mailfleet.store.repository.usage_by_mailbox`'s figures;
- per campaign: sends since an instant (its local day's start);
- per workspace and recipient domain: cold sends in a rolling 24 hours;
- per group of mailboxes (a sending domain, a tenant): sums of the members' counts.

A send is counted while its status is one of :data:`~mailfleet.store.repository.COUNTED`
(in flight, accepted or possibly accepted), as the store counts it. The engine
:meth:`record`\\ s each claim, :meth:`forget`\\ s a send that ended uncounted (refused,
deferred, stopped before submission), :meth:`load`\\ s the whole ledger from the
store after a recovery, and periodically asks the store which sends it holds differently
(:meth:`stale`), so a send made or changed by another process is never missed for long.
Sends are keyed by their id when they have one, so re-claiming a
deferred send or re-loading the store never counts one twice.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import NamedTuple

from mailfleet.store import SendKind, SendStatus
from mailfleet.store.repository import CountedSend, SendKey, UsageCounts

HORIZON = timedelta(hours=26)
"""How far back the ledger keeps sends: a rolling day, and a local day of 25 hours (DST)."""

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


class LedgerSend(NamedTuple):
    """One counted send as the ledger keeps it.

    A named tuple rather than a frozen dataclass: a resync builds one per counted send of
    the fleet's last day, and a tuple is several times cheaper to make.
    """

    mailbox_id: int
    at: datetime
    kind: str = SendKind.COLD
    recipients: int = 1
    send_id: int | None = None  # None: noted by another part of the process, no row known
    campaign_id: int | None = None
    workspace_id: int | None = None
    recipient_domain: str = ""
    accepted: bool = False  # the server took it (warmup counts toward the ratio only then)

    @property
    def cold(self) -> bool:
        """Whether this is a cold send."""
        return self.kind == SendKind.COLD

    @property
    def warm(self) -> bool:
        """Whether this is an accepted warmup send (what the warmup ratio counts)."""
        return self.kind == SendKind.WARMUP and self.accepted


@dataclass(slots=True)
class _Track:
    """One mailbox's sends, oldest first, with running recipient totals."""

    sends: list[LedgerSend] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)  # send ids (0: none), parallel to times
    cumulative: list[int] = field(default_factory=lambda: [0])  # recipients before index i
    cold_times: list[datetime] = field(default_factory=list)
    warm_times: list[datetime] = field(default_factory=list)

    def add(self, send: LedgerSend) -> None:
        if not self.times or send.at >= self.times[-1]:
            self.sends.append(send)
            self.times.append(send.at)
            self.ids.append(send.send_id or 0)
            self.cumulative.append(self.cumulative[-1] + send.recipients)
        else:
            index = bisect_right(self.times, send.at)
            self.sends.insert(index, send)
            self.times.insert(index, send.at)
            self.ids.insert(index, send.send_id or 0)
            self._rebuild_cumulative()
        if send.cold:
            insort(self.cold_times, send.at)
        if send.warm:
            insort(self.warm_times, send.at)

    def remove(self, send: LedgerSend) -> None:
        index = self.sends.index(send)
        del self.sends[index]
        del self.times[index]
        del self.ids[index]
        self._rebuild_cumulative()
        if send.cold:
            _remove_time(self.cold_times, send.at)
        if send.warm:
            _remove_time(self.warm_times, send.at)

    def prune(self, before: datetime) -> list[LedgerSend]:
        """Drop the sends older than ``before``; return them."""
        cut = bisect_left(self.times, before)
        if not cut:
            return []
        gone = self.sends[:cut]
        del self.sends[:cut]
        del self.times[:cut]
        del self.ids[:cut]
        del self.cumulative[:cut]
        del self.cold_times[: bisect_left(self.cold_times, before)]
        del self.warm_times[: bisect_left(self.warm_times, before)]
        return gone

    def _rebuild_cumulative(self) -> None:
        total = 0
        self.cumulative = [0]
        for send in self.sends:
            total += send.recipients
            self.cumulative.append(total)

    def recipients_since(self, index: int) -> int:
        return self.cumulative[-1] - self.cumulative[index]


def _remove_time(times: list[datetime], at: datetime) -> None:
    index = bisect_left(times, at)
    if index < len(times) and times[index] == at:
        del times[index]


def _count_since(times: list[datetime], since: datetime) -> int:
    return len(times) - bisect_left(times, since)


def _first_since(times: list[datetime], since: datetime) -> datetime | None:
    index = bisect_left(times, since)
    return times[index] if index < len(times) else None


EMPTY = UsageCounts(0, 0, None, 0, 0, None, None, 0)


class UsageLedger:
    """Counted sends of the last :data:`HORIZON`, per mailbox, campaign and recipient domain."""

    def __init__(self) -> None:
        self._tracks: dict[int, _Track] = {}
        self._by_id: dict[int, LedgerSend] = {}
        self._campaigns: dict[int, list[datetime]] = {}
        self._domains: dict[tuple[int, str], list[datetime]] = {}
        self.loaded_at: datetime | None = None

    # -- writing ------------------------------------------------------------------------------

    def load(self, rows: Iterable[CountedSend], now: datetime) -> None:
        """Replace everything with ``rows``: the store's counted sends since ``now - HORIZON``."""
        self._tracks.clear()
        self._by_id.clear()
        campaigns: dict[int, list[datetime]] = {}
        domains: dict[tuple[int, str], list[datetime]] = {}
        tracks = self._tracks
        by_id = self._by_id
        cold_kind, warm_kind = str(SendKind.COLD.value), str(SendKind.WARMUP.value)
        sent = str(SendStatus.SENT.value)
        ordered = list(rows)
        if any(a.claimed_at > b.claimed_at for a, b in pairwise(ordered)):
            ordered.sort(key=lambda r: r.claimed_at)
        make = LedgerSend
        for (
            sid,
            mailbox_id,
            at,
            kind,
            recipients,
            campaign_id,
            workspace_id,
            domain,
            status,
        ) in ordered:
            # Oldest first, so every list is built by appending (see record() for one send).
            accepted = status == sent
            send = make(
                mailbox_id,
                at,
                kind,
                recipients,
                sid,
                campaign_id,
                workspace_id,
                domain or "",
                accepted,
            )
            by_id[sid] = send
            track = tracks.get(mailbox_id)
            if track is None:
                track = tracks[mailbox_id] = _Track()
            track.sends.append(send)
            track.times.append(at)
            track.ids.append(sid)
            cumulative = track.cumulative
            cumulative.append(cumulative[-1] + recipients)
            if kind == cold_kind:
                track.cold_times.append(at)
                if workspace_id is not None and domain:
                    key = (workspace_id, domain)
                    times = domains.get(key)
                    if times is None:
                        domains[key] = [at]
                    else:
                        times.append(at)
            elif accepted and kind == warm_kind:
                track.warm_times.append(at)
            if campaign_id is not None:
                times = campaigns.get(campaign_id)
                if times is None:
                    campaigns[campaign_id] = [at]
                else:
                    times.append(at)
        self._campaigns = campaigns
        self._domains = domains
        self.loaded_at = now

    def stale(self, keys: Iterable[SendKey], now: datetime) -> list[int]:
        """Bring the ledger in line with the store's counted sends, read as ``keys``.

        ``keys`` are the store's counted sends since ``now - HORIZON`` (id, mailbox,
        claimed instant, status). Sends the ledger counts that are not among them are
        forgotten, sends noted without an id are dropped (as :meth:`load` drops them),
        and what is older than the horizon is pruned. Returns the ids that are new or
        changed (another mailbox, instant or acceptance): :meth:`record` their full rows
        and the ledger counts what :meth:`load` of every row would.
        """
        self.prune(now)
        for track in self._tracks.values():
            if 0 in track.ids:
                for send in [s for s in track.sends if s.send_id is None]:
                    track.remove(send)
                    if send.campaign_id is not None:
                        _remove_time(self._campaigns.get(send.campaign_id, []), send.at)
                    if send.cold and send.workspace_id is not None and send.recipient_domain:
                        key = (send.workspace_id, send.recipient_domain)
                        _remove_time(self._domains.get(key, []), send.at)
        sent = str(SendStatus.SENT.value)
        by_id = self._by_id
        seen: set[int] = set()
        changed: list[int] = []
        for sid, mailbox_id, at, status in keys:
            seen.add(sid)
            held = by_id.get(sid)
            if (
                held is None
                or held.mailbox_id != mailbox_id
                or held.at != at
                or held.accepted != (status == sent)
            ):
                changed.append(sid)
        for sid in [sid for sid in by_id if sid not in seen]:
            self.forget(sid)
        self.loaded_at = now
        return changed

    def record(self, send: LedgerSend) -> None:
        """Count ``send``; a send with an id already counted replaces the earlier entry."""
        if send.send_id is not None:
            self.forget(send.send_id)
            self._by_id[send.send_id] = send
        self._tracks.setdefault(send.mailbox_id, _Track()).add(send)
        if send.campaign_id is not None:
            insort(self._campaigns.setdefault(send.campaign_id, []), send.at)
        if send.cold and send.workspace_id is not None and send.recipient_domain:
            key = (send.workspace_id, send.recipient_domain)
            insort(self._domains.setdefault(key, []), send.at)

    def forget(self, send_id: int) -> None:
        """Stop counting the send ``send_id`` (it ended refused, deferred or unsent)."""
        send = self._by_id.pop(send_id, None)
        if send is None:
            return
        track = self._tracks.get(send.mailbox_id)
        if track is not None and send in track.sends:
            track.remove(send)
        if send.campaign_id is not None:
            _remove_time(self._campaigns.get(send.campaign_id, []), send.at)
        if send.cold and send.workspace_id is not None and send.recipient_domain:
            _remove_time(self._domains.get((send.workspace_id, send.recipient_domain), []), send.at)

    def accept(self, send_id: int) -> None:
        """Mark the counted send ``send_id`` accepted by the server."""
        send = self._by_id.get(send_id)
        if send is None or send.accepted:
            return
        self.forget(send_id)
        self.record(
            LedgerSend(
                send.mailbox_id,
                send.at,
                send.kind,
                send.recipients,
                send.send_id,
                send.campaign_id,
                send.workspace_id,
                send.recipient_domain,
                accepted=True,
            )
        )

    def prune(self, now: datetime) -> None:
        """Drop what is older than ``now - HORIZON`` (counts never look that far back)."""
        before = now - HORIZON
        for track in self._tracks.values():
            for send in track.prune(before):
                if send.send_id is not None:
                    self._by_id.pop(send.send_id, None)
        for times in (*self._campaigns.values(), *self._domains.values()):
            del times[: bisect_left(times, before)]

    # -- reading ------------------------------------------------------------------------------

    def usage(self, mailbox_id: int, now: datetime, day_start: datetime) -> UsageCounts:
        """:func:`~mailfleet.store.repository.usage_by_mailbox`'s counts for one mailbox."""
        track = self._tracks.get(mailbox_id)
        if track is None or not track.times:
            return EMPTY
        times = track.times
        since_day = now - DAY
        start = bisect_left(times, min(since_day, day_start))
        if start == len(times):
            return EMPTY
        day = bisect_left(times, since_day)
        minute = bisect_left(times, now - MINUTE)
        colds = track.cold_times
        cold_from = bisect_left(colds, min(since_day, day_start))
        return UsageCounts(
            cold_today=_count_since(track.cold_times, day_start),
            messages_last_minute=len(times) - minute,
            oldest_in_last_minute=times[minute] if minute < len(times) else None,
            messages_24h=len(times) - day,
            recipients_24h=track.recipients_since(day),
            oldest_in_24h=times[day] if day < len(times) else None,
            last_send_at=times[-1],
            last_send_id=max(track.ids[start:]),
            warmup_today=_count_since(track.warm_times, day_start),
            last_cold_at=colds[-1] if cold_from < len(colds) else None,
            cold_24h=_count_since(track.cold_times, since_day),
            oldest_cold_24h=_first_since(track.cold_times, since_day),
        )

    def cold_by_recipient_domain(self, mailbox_id: int, day_start: datetime) -> dict[str, int]:
        """The mailbox's cold sends since ``day_start`` per recipient domain."""
        track = self._tracks.get(mailbox_id)
        out: dict[str, int] = {}
        if track is None:
            return out
        for send in track.sends[bisect_left(track.times, day_start) :]:
            if send.cold and send.recipient_domain:
                out[send.recipient_domain] = out.get(send.recipient_domain, 0) + 1
        return out

    def campaign_since(self, campaign_id: int, since: datetime) -> int:
        """The campaign's counted sends since ``since``."""
        return _count_since(self._campaigns.get(campaign_id, []), since)

    def recipient_domains_24h(
        self, workspace_ids: Iterable[int], domains: Iterable[str], now: datetime
    ) -> dict[tuple[int, str], int]:
        """Cold sends per (workspace, recipient domain) in the last 24 hours, for ``domains``."""
        since = now - DAY
        out: dict[tuple[int, str], int] = {}
        wanted = set(domains)
        for workspace_id in workspace_ids:
            for domain in wanted:
                times = self._domains.get((workspace_id, domain))
                if times:
                    count = _count_since(times, since)
                    if count:
                        out[(workspace_id, domain)] = count
        return out

    def group_cold_24h(
        self, mailbox_ids: Iterable[int], now: datetime
    ) -> tuple[int, datetime | None]:
        """Cold sends of several mailboxes in 24 hours, and the oldest of them."""
        since = now - DAY
        total, oldest = 0, None
        for mailbox_id in mailbox_ids:
            track = self._tracks.get(mailbox_id)
            if track is None:
                continue
            total += _count_since(track.cold_times, since)
            first = _first_since(track.cold_times, since)
            if first is not None and (oldest is None or first < oldest):
                oldest = first
        return total, oldest

    def group_recipients_24h(
        self, mailbox_ids: Iterable[int], now: datetime
    ) -> tuple[int, datetime | None]:
        """Recipients of every send of several mailboxes in 24 hours, and the oldest send."""
        since = now - DAY
        total, oldest = 0, None
        tracks = self._tracks
        for mailbox_id in mailbox_ids:
            track = tracks.get(mailbox_id)
            if track is None:
                continue
            times = track.times
            index = bisect_left(times, since)
            if index < len(times):
                cumulative = track.cumulative
                total += cumulative[-1] - cumulative[index]
                first = times[index]
                if oldest is None or first < oldest:
                    oldest = first
        return total, oldest

    def counts(self) -> Mapping[int, int]:
        """Sends held per mailbox (for tests and diagnostics)."""
        return {m: len(t.sends) for m, t in self._tracks.items() if t.sends}
