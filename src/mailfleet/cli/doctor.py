"""``mailfleet doctor``: check a mailbox's submission and login step by step."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console

from mailfleet.clock import SystemClock
from mailfleet.config import Settings
from mailfleet.engine.credentials import CredentialCache, CredentialError
from mailfleet.store import Database, Mailbox
from mailfleet.store import commands as store_commands
from mailfleet.transport.doctor import DoctorReport, DoctorStep, SubmissionDoctor
from mailfleet.transport.secrets import SecretBox, SecretError

console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]mailfleet:[/] {message}", highlight=False)
    return typer.Exit(code)


def _secret_box(settings: Settings) -> SecretBox:
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    return SecretBox.from_key_file(settings.resolved_key_file, key)


async def diagnose(settings: Settings, address: str, workspace: str | None) -> DoctorReport:
    """Load a mailbox and check its submission (and mailbox login) step by step."""
    db = Database(settings.resolved_database_url)
    try:
        await db.migrate()
        async with db.session() as session:
            mailbox = await store_commands.find_mailbox(session, address, workspace)
    finally:
        await db.close()
    report = DoctorReport(mailbox.address)
    clock = SystemClock()
    cache = CredentialCache(_secret_box(settings), clock)
    try:
        credentials = cache.credentials(mailbox)
    except CredentialError as exc:
        report.steps.append(
            DoctorStep("credentials", False, str(exc), "reconnect the mailbox (mailbox add)")
        )
        return report
    doctor = SubmissionDoctor(
        mailbox.address, cache.endpoint(mailbox), credentials, provider=mailbox.provider
    )
    report.steps.extend(await doctor.run())
    report.steps.extend(await imap_steps(mailbox, credentials))
    if mailbox.provider == "microsoft365" and mailbox.auth_kind in APP_ONLY_KINDS:
        explain_app_only(report, mailbox.address)
    return report


APP_ONLY_KINDS = frozenset({"m365_app", "oauth2_client"})


def service_principal_steps(address: str) -> str:
    """What an Exchange admin runs so an app-only token may use a mailbox."""
    return (
        "app-only access needs the app registered in Exchange Online: "
        "Connect-ExchangeOnline; New-ServicePrincipal -AppId <application (client) id> "
        "-ObjectId <object id of the Enterprise Application, not of the App registration>; "
        f"Add-MailboxPermission -Identity {address} -User <service principal id> "
        "-AccessRights FullAccess; and grant admin consent for SMTP.SendAsApp and "
        "IMAP.AccessAsApp on https://outlook.office365.com"
    )


def explain_app_only(report: DoctorReport, address: str) -> None:
    """Add the Exchange service-principal steps to a failed app-only login."""
    for step in report.steps:
        if step.ok or step.step not in ("auth", "imap-auth"):
            continue
        if "5.7.139" in step.reply:
            continue  # SMTP AUTH is switched off: its own remedy is the right one
        extra = service_principal_steps(address)
        step.remedy = f"{step.remedy}; {extra}" if step.remedy else extra


async def imap_steps(mailbox: Mailbox, credentials: object) -> list[DoctorStep]:
    """The mailbox-login part of the check (IMAP)."""
    if not mailbox.imap_host or not mailbox.imap_port:
        return [
            DoctorStep(
                "imap",
                False,
                "no IMAP host configured",
                "add --imap-host/--imap-port so replies and bounces can be read",
            )
        ]
    from mailfleet.transport.imap import ImapEndpoint, check_imap_login
    from mailfleet.transport.smtp import SmtpCredentials

    assert isinstance(credentials, SmtpCredentials)
    endpoint = ImapEndpoint(
        host=mailbox.imap_host,
        port=mailbox.imap_port,
        security=mailbox.imap_security or "tls",
        ca_file=mailbox.ca_file,
    )
    check = await check_imap_login(
        endpoint,
        credentials.username,
        tokens=credentials.tokens,
        password=credentials.password,
    )
    return [DoctorStep(f"imap-{s.step}", s.ok, s.reply, s.remedy) for s in check.steps]


def doctor(
    address: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    workspace: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Walk every step of a mailbox's submission and login, with the server's exact replies."""
    settings = Settings()
    try:
        report = asyncio.run(diagnose(settings, address, workspace))
    except LookupError as exc:
        raise _fail(str(exc.args[0])) from None
    except SecretError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        for step in report.steps:
            mark = "[green]✓[/]" if step.ok else "[red]✗[/]"
            console.print(f"{mark} [bold]{step.step}[/]  {step.reply}", highlight=False)
            if not step.ok and step.remedy:
                console.print(f"    [yellow]→ {step.remedy}[/]", highlight=False)
        console.print("[green]all steps passed[/]" if report.ok else "[red]some steps failed[/]")
    if not report.ok:
        raise typer.Exit(1)
