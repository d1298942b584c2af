"""The people and mailboxes of a scenario, generated deterministically from its seed.

Senders: ``domains`` sending domains spread round-robin over ``tenants``
Microsoft 365 tenants, mailboxes dealt round-robin over the domains (40 on 15
gives ten domains of three and five of two), each with an age that places it
on its ramp. Prospects: ``count`` leads at ``companies`` company domains.
Which addresses the sandbox refuses at RCPT TO is a pure function of the seed
and the address (:func:`refused_at_rcpt`); how the others answer is the sandbox
prospect simulator's business.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

from mailfleet.simulation.scenario import ProspectSpec, Scenario

FIRST = (
    "alex", "sam", "jordan", "casey", "robin", "morgan", "jamie", "taylor",
    "riley", "avery", "quinn", "charlie", "drew", "emery", "finley", "harper",
)  # fmt: skip
BRANDS = (
    "brightpath", "northwind", "bluefjord", "copperleaf", "tidewater", "highmark",
    "silverline", "greenhollow", "redcliff", "ironbridge", "oakridge", "sunpeak",
)  # fmt: skip
SUFFIXES = ("mail", "hq", "team", "go", "get", "try", "join", "meet")
LEAD_FIRST = (
    "Ana", "Ben", "Chloé", "Dan", "Eva", "Finn", "Grace", "Hugo", "Iris", "Jonas",
    "Kira", "Liam", "Mara", "Nils", "Olga", "Paul", "Rosa", "Tom", "Uma", "Zoë",
)  # fmt: skip
LEAD_LAST = (
    "Berg", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Jansen",
    "Keller", "Lind", "Moreau", "Novak", "Okafor", "Peters", "Rossi", "Silva",
)  # fmt: skip
COMPANY_WORDS = ("acme", "globex", "initech", "umbrella", "stark", "wayne", "hooli", "vandelay")
TEAMS = ("sales", "growth", "revenue", "partnerships", "marketing")


def stable_fraction(*parts: object) -> float:
    """A number in [0, 1) fixed by ``parts``: the simulation's only source of chance."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True, slots=True)
class SenderSpec:
    """One mailbox of the fleet as the world builder creates it."""

    index: int
    address: str
    display_name: str
    domain: str
    tenant: str
    ramp_start: date  # its ramp's day 1


@dataclass(frozen=True, slots=True)
class LeadSpec:
    """One generated prospect."""

    email: str
    first_name: str
    last_name: str
    company: str
    timezone: str | None
    team: str


def sending_domains(scenario: Scenario) -> list[tuple[str, str]]:
    """``(domain, tenant)`` of every sending domain."""
    fleet = scenario.fleet
    out = []
    for i in range(fleet.domains):
        brand = BRANDS[i % len(BRANDS)]
        suffix = SUFFIXES[(i // len(BRANDS)) % len(SUFFIXES)]
        number = i // (len(BRANDS) * len(SUFFIXES))
        name = f"{brand}-{suffix}{number or ''}.example"
        out.append((name, f"fleet{i % fleet.tenants + 1}.onmicrosoft.com"))
    return out


def senders(scenario: Scenario) -> list[SenderSpec]:
    """Every mailbox of the fleet, in index order (the index faults refer to)."""
    fleet = scenario.fleet
    domains = sending_domains(scenario)
    used: dict[str, int] = {}
    out = []
    for i in range(fleet.total_mailboxes):
        domain, tenant = domains[i % len(domains)]
        n = used.get(domain, 0)
        used[domain] = n + 1
        first = FIRST[n % len(FIRST)]
        local = first if n < len(FIRST) else f"{first}{n // len(FIRST)}"
        age = fleet.ages_days[i % len(fleet.ages_days)]
        out.append(
            SenderSpec(
                index=i,
                address=f"{local}@{domain}",
                display_name=f"{first.capitalize()} {BRANDS[i % len(BRANDS)].capitalize()}",
                domain=domain,
                tenant=tenant,
                ramp_start=scenario.start - timedelta(days=age - 1),
            )
        )
    return out


def company_domain(index: int) -> str:
    """The domain of prospect company ``index``."""
    return f"{COMPANY_WORDS[index % len(COMPANY_WORDS)]}{index}.example"


def prospect_domains(scenario: Scenario) -> list[str]:
    """Every prospect company's domain."""
    return [company_domain(i) for i in range(min(scenario.leads.companies, scenario.leads.count))]


def leads(scenario: Scenario) -> list[LeadSpec]:
    """Every generated lead, in import order."""
    spec = scenario.leads
    zones = spec.timezones
    out = []
    for i in range(spec.count):
        first = LEAD_FIRST[i % len(LEAD_FIRST)]
        last = LEAD_LAST[(i // len(LEAD_FIRST)) % len(LEAD_LAST)]
        company = i % spec.companies
        local = f"{first}.{last}.{i}".lower().encode("ascii", "ignore").decode()
        out.append(
            LeadSpec(
                email=f"{local}@{company_domain(company)}",
                first_name=first,
                last_name=last,
                company=f"{COMPANY_WORDS[company % len(COMPANY_WORDS)].capitalize()} {company}",
                timezone=zones[i % len(zones)] if zones else None,
                team=TEAMS[i % len(TEAMS)],
            )
        )
    return out


def refused_at_rcpt(spec: ProspectSpec, seed: int, address: str) -> bool:
    """Whether ``address`` is one the scenario has refused at RCPT TO (fixed by the seed)."""
    share = spec.refused_at_rcpt
    return share > 0 and stable_fraction(seed, "rcpt", address) < share
