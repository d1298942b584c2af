"""Shared test set-up: this folder is on ``sys.path`` so helpers under ``tests/fakes`` import."""

import os

from hypothesis import HealthCheck, settings

# Property tests check behaviour, not speed: on a loaded 2-core CI machine a
# per-example deadline only produces flaky failures.
settings.register_profile("mailfleet", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("mailfleet")

# Tests never reach the public DNS: a command that looks a domain up without a
# test's own nameserver asks a closed loopback port and gets a clear lookup failure.
os.environ.setdefault("MAILFLEET_DNS_NAMESERVER", "127.0.0.1:9")
os.environ.setdefault("MAILFLEET_DNS_TIMEOUT", "0.5")
