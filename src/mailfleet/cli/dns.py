"""``mailfleet dns check``: MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, forwarding and blocklists."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from mailfleet.cli.common import console, fail, settings
from mailfleet.deliverability import (
    DEFAULT_BLOCKLISTS,
    DomainReport,
    Finding,
    Severity,
    evaluate_forwarding,
    listing_finding,
)
from mailfleet.deliverability.dns_records import normalize_domain
from mailfleet.engine.dns_checks import check_blocklists, check_domain
from mailfleet.providers import PRESETS
from mailfleet.store import Database, Domain, Workspace
from mailfleet.store.blocklist_cache import FileListingCache
from mailfleet.transport.dns import DnsResolver, NameserverError
from mailfleet.transport.forwarding import ResolvingTransport, follow_redirects

dns_app = typer.Typer(help="DNS and reputation checks of sending domains.", no_args_is_help=True)
SEVERITY_STYLE = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


@dataclass(frozen=True, slots=True)
class _Target:
    domain: str
    provider: str
    tenant: str | None
    main_site: str | None


async def _stored_targets(
    domains: list[str], workspace_slug: str | None
) -> tuple[dict[str, Domain], str | None]:
    """Domains and the main site known to the database, when there is one (never creates it)."""
    current = settings()
    if current.database_url is None and not (current.home / "mailfleet.db").exists():
        return {}, None
    db = Database(current.resolved_database_url)
    try:
        await db.migrate()
        async with db.session() as session:
            query = select(Domain, Workspace).join(Workspace, Workspace.id == Domain.workspace_id)
            if workspace_slug is not None:
                query = query.where(Workspace.slug == workspace_slug)
            if domains:
                query = query.where(Domain.name.in_(domains))
            rows = (await session.execute(query)).all()
            sites = {w.main_site for _, w in rows if w.main_site}
            if not rows:
                ws_query = select(Workspace)
                if workspace_slug is not None:
                    ws_query = ws_query.where(Workspace.slug == workspace_slug)
                spaces = list((await session.scalars(ws_query)).all())
                sites = {w.main_site for w in spaces if w.main_site} if len(spaces) == 1 else set()
            return {d.name.lower(): d for d, _ in rows}, (sites.pop() if len(sites) == 1 else None)
    finally:
        await db.close()


async def _run(
    targets: list[_Target],
    resolver: DnsResolver,
    selectors: list[str],
    blocklists: list[str] | None,
    cache: FileListingCache | None,
    max_hops: int,
) -> list[DomainReport]:
    async def one(target: _Target) -> DomainReport:
        report = await check_domain(
            target.domain,
            target.provider,
            resolver=resolver,
            selectors=selectors or None,
            tenant=target.tenant,
        )
        if normalize_domain(target.domain) is None:
            return report
        extra: list[Finding] = []
        if target.main_site:
            trace = await follow_redirects(
                f"http://{report.domain}/",
                max_hops=max_hops,
                timeout=resolver.timeout,
                stop_at=target.main_site,
                # With --nameserver the website is found through it too, not the system's DNS.
                transport=ResolvingTransport(resolver) if resolver.nameserver else None,
            )
            extra.append(evaluate_forwarding(report.domain, target.main_site, trace))
        if blocklists:
            listings = await check_blocklists(
                report.domain,
                resolver=resolver,
                now=datetime.now(UTC),
                zones=blocklists,
                cache=cache,
            )
            extra.extend(listing_finding(listing) for listing in listings)
        return report.with_findings(tuple(extra))

    return list(await asyncio.gather(*(one(t) for t in targets)))


@dns_app.command("check")
def check(
    domains: Annotated[
        list[str] | None,
        typer.Argument(help="Domains to check (default: every domain of the workspace)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
    nameserver: Annotated[
        str | None, typer.Option(help="Ask this nameserver (HOST[:PORT]) instead of the system's.")
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(
            help="microsoft365, google or generic (default: as stored, else microsoft365)."
        ),
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Microsoft 365 tenant, for the exact DKIM CNAMEs.")
    ] = None,
    selector: Annotated[
        list[str] | None, typer.Option(help="DKIM selector to check (repeatable).")
    ] = None,
    main_site: Annotated[
        str | None, typer.Option(help="URL every domain should redirect to (default: workspace's).")
    ] = None,
    blocklist: Annotated[
        list[str] | None,
        typer.Option(help="Blocklist zone (repeatable; default: the usual three)."),
    ] = None,
    blocklists: Annotated[
        bool, typer.Option("--blocklists/--no-blocklists", help="Look domains up on blocklists.")
    ] = True,
    workspace: Annotated[str | None, typer.Option("--workspace")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, max=60, help="Seconds per lookup.")] = 3.0,
    max_hops: Annotated[int, typer.Option(min=1, max=20, help="Redirects to follow.")] = 5,
) -> None:
    """Check sending domains' DNS; exits 1 when any finding is an error."""
    if provider is not None and provider not in PRESETS:
        raise fail(f"--provider {provider!r}: use one of {', '.join(sorted(PRESETS))}")
    try:
        resolver = DnsResolver(nameserver, timeout=timeout)
    except NameserverError as exc:
        raise fail(str(exc)) from None
    names = [d.strip().lower().rstrip(".") for d in domains or []]
    stored, stored_site = asyncio.run(_stored_targets(names, workspace))
    if not names:
        names = sorted(stored)
        if not names:
            raise fail("no domain given and none stored: mailfleet dns check DOMAIN...")
    targets = []
    for name in names:
        row = stored.get(name)
        chosen = provider or (row.provider if row is not None else "microsoft365")
        # --main-site, else the domain's own forward URL, else the workspace's main site.
        forward = main_site or (row.forward_url if row is not None else None) or stored_site
        targets.append(
            _Target(name, chosen, tenant or (row.tenant if row is not None else None), forward)
        )
    cache = FileListingCache(settings().home / "blocklists.json") if blocklists else None
    zones = list(blocklist or DEFAULT_BLOCKLISTS) if blocklists else None
    reports = asyncio.run(_run(targets, resolver, selector or [], zones, cache, max_hops))
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "domain": r.domain,
                        "provider": r.provider,
                        "failing": sorted(r.failing),
                        "findings": [f.as_json() for f in r.findings],
                    }
                    for r in reports
                ],
                indent=2,
            )
        )
    else:
        for report in reports:
            _print(report)
    if any(r.has_errors for r in reports):
        raise typer.Exit(1)


def _print(report: DomainReport) -> None:
    table = Table(title=f"{report.domain} ({report.provider})", show_lines=False)
    for column in ("check", "", "found", "fix"):
        table.add_column(column, overflow="fold")
    for f in report.findings:
        if f.ok:
            label = "[green]✓ ok[/]"
        else:
            mark = {Severity.ERROR: "✗", Severity.WARNING: "!"}.get(f.severity, "·")
            label = f"[{SEVERITY_STYLE[f.severity]}]{mark} {f.severity}[/]"
        table.add_row(f.check, label, f.found, f.fix)
    console.print(table)
