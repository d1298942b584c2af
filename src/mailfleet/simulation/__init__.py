"""``mailfleet simulate``: scenarios run on a virtual clock against the sandbox, then audited.

A scenario file (:mod:`~mailfleet.simulation.scenario`) describes the fleet, the
leads, the campaign, how prospects behave and which faults strike when;
:func:`run_scenario` builds that world, runs the real engine through it and
returns a report whose ``violations`` the auditor (:mod:`~mailfleet.simulation.audit`)
counted from what the sandbox received.
"""

from mailfleet.simulation.audit import (
    VIOLATION_KEYS,
    Audit,
    AuditRules,
    RampRule,
    SenderRule,
    WindowRule,
    audit,
)
from mailfleet.simulation.records import Bounced, Received, SubmissionLog
from mailfleet.simulation.runner import RunProgress, Simulation, run_scenario
from mailfleet.simulation.scenario import (
    Scenario,
    ScenarioError,
    load_scenario,
    parse_scenario,
    scenario_campaign,
)

__all__ = [
    "VIOLATION_KEYS",
    "Audit",
    "AuditRules",
    "Bounced",
    "RampRule",
    "Received",
    "RunProgress",
    "Scenario",
    "ScenarioError",
    "SenderRule",
    "Simulation",
    "SubmissionLog",
    "WindowRule",
    "audit",
    "load_scenario",
    "parse_scenario",
    "run_scenario",
    "scenario_campaign",
]
