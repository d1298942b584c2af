"""Warmup: the peer pool, daily plans, content, the marker, receiver decisions and health.

Pure policy: time and data are passed in, nothing here does I/O. The engine
side is :mod:`mailfleet.engine.warmup` (sending) and
:mod:`mailfleet.engine.warmup_receiver` (the peers' IMAP actions).
"""

from mailfleet.warmup.config import WarmupConfig
from mailfleet.warmup.content import WarmupText, continuation, has_link, opening, topic_for
from mailfleet.warmup.health import (
    CapChange,
    CapPolicy,
    Observation,
    PlacementStats,
    capped_policy,
    health_score,
    next_cold_cap_factor,
    placement_stats,
)
from mailfleet.warmup.marker import WarmupMarker, stamp_body, warmup_message
from mailfleet.warmup.plan import (
    PlannedWarmup,
    RampSettings,
    daily_target,
    plan_day,
    ramp_day,
    ramp_target,
    spread,
)
from mailfleet.warmup.pool import Peer, eligible_peers, may_pair, peers_for_day
from mailfleet.warmup.receiver import (
    Cleanup,
    Placement,
    ReceiverAction,
    ReceiverPolicy,
    cleanup_folder,
    decide_receipt,
    is_stale,
)

__all__ = [
    "CapChange",
    "CapPolicy",
    "Cleanup",
    "Observation",
    "Peer",
    "Placement",
    "PlacementStats",
    "PlannedWarmup",
    "RampSettings",
    "ReceiverAction",
    "ReceiverPolicy",
    "WarmupConfig",
    "WarmupMarker",
    "WarmupText",
    "capped_policy",
    "cleanup_folder",
    "continuation",
    "daily_target",
    "decide_receipt",
    "eligible_peers",
    "has_link",
    "health_score",
    "is_stale",
    "may_pair",
    "next_cold_cap_factor",
    "opening",
    "peers_for_day",
    "placement_stats",
    "plan_day",
    "ramp_day",
    "ramp_target",
    "spread",
    "stamp_body",
    "topic_for",
    "warmup_message",
]
