"""Faults of the running process: logged with their traceback, counted, never hidden.

A part of ``mailfleet run`` that fails (an engine tick, the health pass, one mailbox's
inbox watcher) records the fault here and carries on after a backoff: the fault is in
the log with its context and in ``/metrics`` as ``mailfleet_process_faults`` by
component, and the rest of the fleet keeps working.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime


class FaultLog:
    """Counts of the faults each component of this process survived."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.last: dict[str, tuple[datetime, str]] = {}

    def record(
        self, component: str, exc: BaseException, at: datetime, logger: logging.Logger
    ) -> None:
        """Log ``exc`` with its traceback under ``component`` and count it."""
        logger.error("%s failed: %s", component, exc, exc_info=exc)
        self.counts[component] += 1
        self.last[component] = (at, f"{type(exc).__name__}: {exc}"[:300])

    def snapshot(self) -> dict[str, int]:
        """Faults by component so far."""
        return dict(self.counts)
