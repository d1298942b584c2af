"""Forwarding: a sending domain's website should redirect to the business's main site."""

from __future__ import annotations

from mailfleet.deliverability.findings import Finding, Severity, passed, problem
from mailfleet.transport.forwarding import RedirectTrace, TraceEnd, same_site

PERMANENT = frozenset({301, 308})


def evaluate_forwarding(domain: str, main_site: str, trace: RedirectTrace) -> Finding:
    """The forwarding finding for ``domain``: ok when its redirects land on ``main_site``."""
    chain = " → ".join(f"{h.url} [{h.status}]" for h in trace.hops) or trace.start
    fix = (
        f"redirect http://{domain}/ and https://{domain}/ with a 301 to {main_site} "
        "(at your registrar or DNS host's URL forwarding)"
    )
    if trace.end is TraceEnd.TIMEOUT:
        found = f"{chain}: no answer from {trace.final_url} ({trace.detail})"
        return problem(domain, "forwarding", Severity.WARNING, found, fix)
    if trace.end is TraceEnd.ERROR:
        found = f"{chain}: {trace.final_url} failed: {trace.detail}"
        return problem(domain, "forwarding", Severity.WARNING, found, fix)
    if trace.end is TraceEnd.LOOP:
        found = f"{chain} → {trace.final_url}: redirect loop"
        return problem(domain, "forwarding", Severity.WARNING, found, fix)
    if trace.end is TraceEnd.TOO_MANY:
        found = f"{chain}: more than {len(trace.hops)} redirects without reaching {main_site}"
        return problem(domain, "forwarding", Severity.WARNING, found, fix)
    redirects = [h for h in trace.hops if h.location is not None]
    if not redirects:
        found = f"{chain}: answers itself, no redirect to {main_site}"
        return problem(domain, "forwarding", Severity.WARNING, found, fix)
    if not same_site(trace.final_url, main_site):
        found = f"{chain}: ends at {trace.final_url}, not {main_site}"
        return problem(domain, "forwarding", Severity.WARNING, found, fix)
    if any(h.status not in PERMANENT for h in redirects):
        found = f"{chain} → {trace.final_url}: temporary redirect(s); a 301 is the rule"
        return Finding(domain, "forwarding", True, Severity.INFO, found, fix)
    return passed(domain, "forwarding", f"{chain} → {trace.final_url}")
