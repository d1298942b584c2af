"""The engine tests' clock and sandbox fixtures: services run against the same world."""

from engine.conftest import clock, sandbox

__all__ = ["clock", "sandbox"]
