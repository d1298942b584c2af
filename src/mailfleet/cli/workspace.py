"""``mailfleet workspace set|show``: primary domain and tenant to isolate from, and main site."""

from __future__ import annotations

import json
from typing import Annotated

import httpx
import typer

from mailfleet.cli.common import CommandError, console, with_db
from mailfleet.cli.common import workspace as find_workspace
from mailfleet.deliverability.dns_records import normalize_domain
from mailfleet.store import Database

workspace_app = typer.Typer(help="Workspace settings.", no_args_is_help=True)
WorkspaceOption = Annotated[str | None, typer.Option("--workspace", help="Workspace slug.")]


def _main_site(value: str) -> str:
    try:
        url = httpx.URL(value.strip())
    except (httpx.InvalidURL, ValueError) as exc:
        raise CommandError(f"--main-site {value!r}: not a URL ({exc})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise CommandError(f"--main-site {value!r}: give an http(s) URL like https://brand.com")
    return str(url)


def _settings_of(
    slug: str, name: str, domain: str | None, tenant: str | None, site: str | None
) -> dict[str, str | None]:
    return {
        "workspace": slug,
        "name": name,
        "primary_domain": domain,
        "primary_tenant": tenant,
        "main_site": site,
    }


@workspace_app.command("set")
def set_(
    primary_domain: Annotated[
        str | None, typer.Option(help='The business\'s own domain ("" clears).')
    ] = None,
    primary_tenant: Annotated[
        str | None, typer.Option(help='The business\'s own Microsoft 365 tenant ("" clears).')
    ] = None,
    main_site: Annotated[
        str | None, typer.Option(help='The real website sending domains redirect to ("" clears).')
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Set the workspace's primary domain, primary tenant and main site."""

    async def run(db: Database) -> dict[str, str | None]:
        if primary_domain and normalize_domain(primary_domain) is None:
            raise CommandError(f"--primary-domain {primary_domain!r} is not a domain name")
        site = _main_site(main_site) if main_site else None
        async with db.session() as session:
            ws = await find_workspace(session, workspace, create=True)
            if primary_domain is not None:
                ws.primary_domain = normalize_domain(primary_domain) if primary_domain else None
            if primary_tenant is not None:
                ws.primary_tenant = primary_tenant.strip() or None
            if main_site is not None:
                ws.main_site = site
            return _settings_of(
                ws.slug, ws.name, ws.primary_domain, ws.primary_tenant, ws.main_site
            )

    shown = with_db(run)
    for key, value in shown.items():
        console.print(f"{key}: {value or '-'}", highlight=False)


@workspace_app.command("show")
def show(
    workspace: WorkspaceOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show the workspace's isolation and forwarding settings."""

    async def run(db: Database) -> dict[str, str | None]:
        async with db.session() as session:
            ws = await find_workspace(session, workspace)
            return _settings_of(
                ws.slug, ws.name, ws.primary_domain, ws.primary_tenant, ws.main_site
            )

    shown = with_db(run)
    if as_json:
        print(json.dumps(shown, indent=2))
        return
    for key, value in shown.items():
        console.print(f"{key}: {value or '-'}", highlight=False)
