"""An installation's warmup configuration, in one value the sender and the receiver share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from mailfleet.warmup.health import CapPolicy
from mailfleet.warmup.marker import WarmupMarker
from mailfleet.warmup.plan import RampSettings
from mailfleet.warmup.receiver import ReceiverPolicy


@dataclass(frozen=True, slots=True)
class WarmupConfig:
    """An installation's warmup: marker, seed, default ramp, peer behaviour, cap automation."""

    marker: WarmupMarker = field(default_factory=WarmupMarker)
    seed: int = 0
    ramp: RampSettings = field(default_factory=RampSettings)
    receiver: ReceiverPolicy = field(default_factory=ReceiverPolicy)
    caps: CapPolicy = field(default_factory=CapPolicy)
    thread_quiet: timedelta = timedelta(hours=18)  # a thread continues after this pause
    max_per_tick: int = 1000
