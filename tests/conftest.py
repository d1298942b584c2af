"""Shared test set-up: this folder is on ``sys.path`` so helpers under ``tests/fakes`` import."""

from hypothesis import HealthCheck, settings

# Property tests check behaviour, not speed: on a loaded 2-core CI machine a
# per-example deadline only produces flaky failures.
settings.register_profile("mailfleet", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("mailfleet")
