"""``mailfleet mailbox …``: add, import, connect, list, show, pause, resume, remove.

Secrets come from environment variables or files, are verified against the
identity provider before anything is stored (``--no-verify`` skips that), sealed
with the installation's key, and never printed. A refused sign-in names the
mailbox and the cause (with its AADSTS code) and leaves stored credentials as
they were.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from mailfleet.cli.mailbox_auth import (
    CredentialInputError,
    certificate_secret,
    from_env,
    service_account_secret,
)
from mailfleet.clock import SystemClock
from mailfleet.config import DataFolderError, Settings
from mailfleet.mailboxes import (
    AuthKind,
    ImportDefaults,
    MailboxFileError,
    MailboxRow,
    RowError,
    parse_mailboxes,
)
from mailfleet.mailboxes.status import token_status
from mailfleet.planner import local_day
from mailfleet.providers import get_preset
from mailfleet.providers.identity import normalize_tenant, reconnect_command
from mailfleet.providers.validation import ProviderConfigError, validate_endpoint
from mailfleet.store import Database, Event, Mailbox, MailboxStatus, Workspace
from mailfleet.store import commands as store_commands
from mailfleet.store import credentials as store_credentials
from mailfleet.store import repository as repo
from mailfleet.transport.google_tokens import (
    GOOGLE_TOKEN_URI,
    GoogleServiceAccountTokens,
    GoogleUserTokens,
)
from mailfleet.transport.msal_tokens import (
    LOGIN_HOST,
    BrowserSignIn,
    ClientCertificate,
    DeviceCodeSignIn,
    MsalAppTokens,
    MsalEnvironment,
    SignedIn,
)
from mailfleet.transport.oauth import (
    ClientCredentialsProvider,
    TokenError,
    TokenProvider,
    check_audience,
)
from mailfleet.transport.secrets import SecretBox, SecretError

mailbox_app = typer.Typer(help="Mailboxes of the fleet.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

#: Where MSAL signs in; tests point it at an in-process authority.
MSAL_ENVIRONMENT: MsalEnvironment | None = None
#: google-auth's HTTP transport; tests point it at an in-process token endpoint.
GOOGLE_REQUEST: Any = None

T = TypeVar("T")


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]mailfleet:[/] {message}", highlight=False)
    return typer.Exit(code)


def _warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {message}", highlight=False)


def _setup() -> tuple[Settings, SecretBox]:
    try:
        settings = Settings()
        settings.ensure_home()
        key = settings.secret_key.get_secret_value() if settings.secret_key else None
        return settings, SecretBox.from_key_file(settings.resolved_key_file, key)
    except (DataFolderError, SecretError) as exc:
        raise _fail(str(exc)) from None


def _with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(run())


def _env(variable: str, what: str) -> str:
    try:
        return from_env(variable, what)
    except CredentialInputError as exc:
        raise _fail(str(exc)) from None


def _tenant(value: str, *, delegated: bool = False) -> str:
    try:
        return normalize_tenant(value, allow_aliases=delegated)
    except ValueError as exc:
        raise _fail(f"--tenant: {exc}") from None


def _msal_env(authority_host: str | None) -> MsalEnvironment:
    if MSAL_ENVIRONMENT is not None:
        return MSAL_ENVIRONMENT
    return MsalEnvironment(authority_host=authority_host or LOGIN_HOST)


async def _verify(address: str, tokens: TokenProvider) -> datetime:
    """Get one token now, so a refused secret is reported before anything is stored."""
    token = await tokens.access_token(force_refresh=True)
    check_audience(token)
    return token.expires_at


def _refused(address: str, exc: TokenError, what: str) -> typer.Exit:
    refusal = exc.refusal
    remedy = f"; {refusal.remedy}" if refusal is not None and refusal.remedy else ""
    return _fail(f"{address}: {what} failed: {exc}{remedy}. Stored credentials are unchanged.")


# -- add -------------------------------------------------------------------------------------


@mailbox_app.command("add")
def mailbox_add(
    address: str,
    provider: Annotated[str, typer.Option(help="microsoft365, google or generic")] = "microsoft365",
    smtp_host: Annotated[str | None, typer.Option(help="Default: the provider's.")] = None,
    smtp_port: Annotated[int | None, typer.Option()] = None,
    smtp_security: Annotated[str | None, typer.Option(help="starttls, tls or plain")] = None,
    imap_host: Annotated[str | None, typer.Option()] = None,
    imap_port: Annotated[int | None, typer.Option()] = None,
    imap_security: Annotated[str, typer.Option(help="tls, starttls or plain")] = "tls",
    username: Annotated[str | None, typer.Option(help="Login name if not the address.")] = None,
    password_env: Annotated[
        str | None, typer.Option(help="Name of the environment variable holding the password.")
    ] = None,
    token_url: Annotated[str | None, typer.Option(help="OAuth token endpoint (app-only).")] = None,
    client_id: Annotated[str | None, typer.Option(help="OAuth client (application) id.")] = None,
    client_secret_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the OAuth client secret.")
    ] = None,
    tenant: Annotated[str | None, typer.Option()] = None,
    ca_file: Annotated[
        Path | None, typer.Option(help="Extra CA certificate (PEM) to trust for this mailbox.")
    ] = None,
    display_name: Annotated[str, typer.Option()] = "",
    timezone: Annotated[str, typer.Option(help="IANA zone its sending day is counted in.")] = "UTC",
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
    daily_limit: Annotated[int | None, typer.Option(min=1, max=10_000)] = None,
    workspace: Annotated[str, typer.Option()] = "default",
) -> None:
    """Register a mailbox with a password or an app's client credentials (see also connect)."""
    if "@" not in address:
        raise _fail(f"{address!r} is not an email address")
    try:
        preset = get_preset(provider)
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None
    host = smtp_host or preset.smtp_host
    if host is None:
        raise _fail(f"--smtp-host is required for provider {provider}")
    port = smtp_port or preset.smtp_port
    security = smtp_security or preset.smtp_security
    if tenant is not None:
        tenant = _tenant(tenant)
    if client_id or token_url or client_secret_env:
        if not (client_id and client_secret_env and (token_url or tenant)):
            raise _fail(
                "OAuth app-only needs --client-id, --client-secret-env and --token-url "
                "(or --tenant for Microsoft 365)"
            )
        auth_kind = AuthKind.OAUTH2_CLIENT if token_url else AuthKind.M365_APP
        secret: dict[str, Any] = {"client_secret": _env(client_secret_env, "OAuth client secret")}
    elif password_env:
        auth_kind = AuthKind.PASSWORD
        secret = {"password": _env(password_env, "mailbox password")}
        if username:
            secret["username"] = username
    else:
        raise _fail(
            "give --password-env VAR, or --client-id/--client-secret-env with --token-url or "
            "--tenant; to sign in as the user: `mailfleet mailbox connect ADDRESS --device-code`"
        )
    try:
        warnings = validate_endpoint(
            provider, smtp_host=host, smtp_port=port, smtp_security=security, auth_kind=auth_kind
        )
    except ProviderConfigError as exc:
        raise _fail(str(exc)) from None
    if ca_file is not None and not ca_file.is_file():
        raise _fail(f"--ca-file {ca_file}: no such file")
    for warning in warnings:
        _warn(str(warning))
    settings, box = _setup()

    async def run(db: Database) -> Mailbox:
        async with db.session() as session:
            mailbox = await store_commands.add_mailbox(
                session,
                workspace,
                store_commands.MailboxSettings(
                    address=address,
                    provider=provider,
                    smtp_host=host,
                    smtp_port=port,
                    smtp_security=security,
                    imap_host=imap_host or preset.imap_host,
                    imap_port=imap_port or preset.imap_port,
                    imap_security=imap_security,
                    auth_kind=auth_kind,
                    secret=box.seal(secret),
                    token_endpoint=token_url,
                    client_id=client_id,
                    tenant=tenant,
                    ca_file=str(ca_file.resolve()) if ca_file else None,
                    display_name=display_name,
                    timezone=timezone,
                    tags=tuple(tag or ()),
                ),
                datetime.now(UTC),
            )
            mailbox.daily_cap = daily_limit
            return mailbox

    try:
        mailbox = _with_db(settings, run)
    except store_commands.MailboxExistsError as exc:
        raise _fail(str(exc)) from None
    console.print(
        f"added {mailbox.address} ({provider}, {auth_kind}) to workspace {workspace!r}; "
        f"check it with `mailfleet doctor {mailbox.address}`",
        highlight=False,
    )


# -- import ----------------------------------------------------------------------------------


def _import_defaults(
    provider: str | None,
    tenant: str | None,
    client_id: str | None,
    client_secret_env: str | None,
    certificate: Path | None,
    token_url: str | None,
    service_account: Path | None,
    tags: list[str] | None,
) -> ImportDefaults:
    app_secret: dict[str, Any] | None = None
    try:
        if client_secret_env or certificate:
            if not client_id:
                raise _fail("--client-secret-env and --certificate need --client-id")
            app_secret = (
                certificate_secret(certificate)
                if certificate is not None
                else {"client_secret": from_env(client_secret_env or "", "OAuth client secret")}
            )
        elif client_id:
            raise _fail("--client-id needs --client-secret-env VAR or --certificate FILE")
        sa = service_account_secret(service_account) if service_account else None
    except CredentialInputError as exc:
        raise _fail(str(exc)) from None
    return ImportDefaults(
        provider=provider,
        tenant=_tenant(tenant) if tenant else None,
        client_id=client_id,
        app_secret=app_secret,
        token_url=token_url,
        service_account=sa,
        tags=tuple(tags or ()),
    )


def _app_provider(row: MailboxRow, env: MsalEnvironment) -> TokenProvider | None:
    """The token provider that proves a row's shared app credentials, if it has one."""
    clock = SystemClock()
    secret = dict(row.secret)
    if row.auth_kind == AuthKind.M365_APP and row.tenant and row.client_id:
        credential: str | ClientCertificate = (
            ClientCertificate(
                secret["private_key"], secret["thumbprint"], secret.get("public_certificate")
            )
            if "private_key" in secret
            else str(secret["client_secret"])
        )
        return MsalAppTokens(
            client_id=row.client_id,
            tenant=row.tenant,
            credential=credential,
            clock=clock,
            environment=env,
        )
    if row.auth_kind == AuthKind.OAUTH2_CLIENT and row.token_endpoint and row.client_id:
        return ClientCredentialsProvider(
            token_url=row.token_endpoint,
            client_id=row.client_id,
            client_secret=str(secret.get("client_secret", "")),
            scope="https://outlook.office365.com/.default",
            clock=clock,
        )
    if row.auth_kind == AuthKind.GOOGLE_SERVICE_ACCOUNT:
        return GoogleServiceAccountTokens(
            address=row.address,
            service_account_info=secret["service_account"],
            clock=clock,
            request=GOOGLE_REQUEST,
        )
    return None


async def _verify_apps(rows: list[MailboxRow], env: MsalEnvironment) -> list[RowError]:
    """One token per distinct app (tenant, client id): a refused secret fails its rows."""
    verdicts: dict[tuple[str, str | None, str | None], str | None] = {}
    errors: list[RowError] = []
    for row in rows:
        key = (row.auth_kind, row.tenant, row.client_id)
        if row.auth_kind == AuthKind.GOOGLE_SERVICE_ACCOUNT:
            key = (row.auth_kind, row.address, None)  # delegation is granted per user
        if key not in verdicts:
            provider = _app_provider(row, env)
            verdict: str | None = None
            if provider is not None:
                try:
                    await _verify(row.address, provider)
                except TokenError as exc:
                    refusal = exc.refusal
                    remedy = f"; {refusal.remedy}" if refusal and refusal.remedy else ""
                    verdict = f"{exc}{remedy}"
            verdicts[key] = verdict
        if verdicts[key] is not None:
            errors.append(RowError("", row.row, row.address, f"sign-in refused: {verdicts[key]}"))
    return errors


@mailbox_app.command("import")
def mailbox_import(
    path: Path,
    provider: Annotated[
        str | None, typer.Option(help="Provider of rows that name none (else: from SMTP host).")
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Microsoft 365 tenant (GUID or domain).")
    ] = None,
    client_id: Annotated[str | None, typer.Option(help="App (client) id for app-only.")] = None,
    client_secret_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the app's client secret.")
    ] = None,
    certificate: Annotated[
        Path | None, typer.Option(help="PEM file with the app's private key and certificate.")
    ] = None,
    token_url: Annotated[
        str | None, typer.Option(help="Plain OAuth token endpoint (sandbox, generic servers).")
    ] = None,
    service_account: Annotated[
        Path | None, typer.Option(help="Google service-account key (domain-wide delegation).")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Tag every row (repeatable).")
    ] = None,
    partial: Annotated[
        bool, typer.Option("--partial", help="Import the valid rows even if others fail.")
    ] = False,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Get a token per app before storing.")
    ] = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check only; store nothing.")] = False,
    ca_file: Annotated[Path | None, typer.Option(help="Extra CA (PEM) for every row.")] = None,
    workspace: Annotated[str, typer.Option()] = "default",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Import mailboxes from a CSV, all or nothing unless --partial; every row is reported."""
    defaults = _import_defaults(
        provider, tenant, client_id, client_secret_env, certificate, token_url, service_account, tag
    )
    if ca_file is not None and not ca_file.is_file():
        raise _fail(f"--ca-file {ca_file}: no such file")
    ca_path = str(ca_file.resolve()) if ca_file else None
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            parsed = parse_mailboxes(handle, source=str(path), defaults=defaults)
    except MailboxFileError as exc:
        raise _fail(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"{path}: cannot read: {exc}") from None
    errors = list(parsed.errors)
    rows = list(parsed.rows)
    if verify and rows:
        refused = asyncio.run(_verify_apps(rows, _msal_env(None)))
        refused = [RowError(str(path), e.row, e.address, e.message) for e in refused]
        errors.extend(refused)
        failed_rows = {e.row for e in refused}
        rows = [r for r in rows if r.row not in failed_rows]
    stored: list[MailboxRow] = []
    if rows and not dry_run and (partial or not errors):
        settings, box = _setup()
        stored, store_errors = _with_db(
            settings, lambda db: _store_rows(db, box, rows, workspace, ca_path, partial)
        )
        errors.extend(RowError(str(path), e.row, e.address, e.message) for e in store_errors)
        if store_errors and not partial:
            stored = []
    errors.sort(key=lambda e: e.row)
    _report_import(
        path, parsed.rows, stored, errors, parsed.ignored_columns, partial, dry_run, as_json
    )
    if errors:
        raise typer.Exit(1)


async def _store_rows(
    db: Database,
    box: SecretBox,
    rows: list[MailboxRow],
    workspace: str,
    ca_file: str | None,
    partial: bool,
) -> tuple[list[MailboxRow], list[RowError]]:
    """Store the rows in one transaction; per row (savepoints) with ``partial``."""
    now = datetime.now(UTC)
    stored: list[MailboxRow] = []
    errors: list[RowError] = []

    class _Abort(Exception):
        pass

    try:
        async with db.session() as session:
            for row in rows:
                settings = store_commands.MailboxSettings(
                    address=row.address,
                    provider=row.provider,
                    smtp_host=row.smtp_host,
                    smtp_port=row.smtp_port,
                    smtp_security=row.smtp_security,
                    imap_host=row.imap_host,
                    imap_port=row.imap_port,
                    imap_security=row.imap_security,
                    auth_kind=row.auth_kind,
                    secret=box.seal(dict(row.secret)),
                    token_endpoint=row.token_endpoint,
                    client_id=row.client_id,
                    tenant=row.tenant,
                    ca_file=ca_file,
                    display_name=row.display_name,
                    tags=row.tags,
                )
                try:
                    async with session.begin_nested():
                        mailbox = await store_commands.add_mailbox(
                            session, workspace, settings, now
                        )
                        mailbox.daily_cap = row.daily_limit
                except store_commands.MailboxExistsError as exc:
                    errors.append(RowError("", row.row, row.address, str(exc)))
                    continue
                stored.append(row)
            if errors and not partial:
                raise _Abort
    except _Abort:
        return [], errors
    return stored, errors


def _report_import(
    path: Path,
    valid: list[MailboxRow],
    stored: list[MailboxRow],
    errors: list[RowError],
    ignored: list[str],
    partial: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "file": str(path),
                    "imported": [
                        {"row": r.row, "address": r.address, "auth": r.auth_kind} for r in stored
                    ],
                    "errors": [
                        {"row": e.row, "address": e.address, "error": e.message} for e in errors
                    ],
                    "ignored_columns": ignored,
                },
                indent=2,
            )
        )
        return
    for column in ignored:
        _warn(f"{path}: column {column!r} is not used")
    imported = {r.row for r in stored}
    for row in valid:
        for warning in row.warnings:
            _warn(f"{path} row {row.row} ({row.address}): {warning}")
    for row in sorted(valid, key=lambda r: r.row):
        if row.row in imported:
            console.print(
                f"  [green]✓[/] row {row.row} {row.address} ({row.provider}, {row.auth_kind})",
                highlight=False,
            )
    for error in errors:
        who = f" ({error.address})" if error.address else ""
        console.print(f"  [red]✗[/] row {error.row}{who}: {error.message}", highlight=False)
    if dry_run:
        verdict = f"{len(valid) - len(errors)} row(s) valid; --dry-run stored nothing"
    elif errors and not partial:
        verdict = (
            "nothing imported: the file is imported all or nothing; fix the rows above or "
            "use --partial to import the valid ones"
        )
    else:
        verdict = f"{len(stored)} mailbox(es) imported, {len(errors)} row(s) rejected"
    console.print(f"{path}: {verdict}", highlight=False)


# -- connect ---------------------------------------------------------------------------------


@mailbox_app.command("connect")
def mailbox_connect(
    address: str,
    device_code: Annotated[
        bool, typer.Option("--device-code", help="Microsoft 365 sign-in with a device code.")
    ] = False,
    browser: Annotated[
        bool, typer.Option("--browser", help="Microsoft 365 sign-in in a browser (127.0.0.1).")
    ] = False,
    port: Annotated[int, typer.Option(help="Loopback port for --browser (0: any).")] = 0,
    tenant: Annotated[
        str | None, typer.Option(help="Tenant GUID or domain (delegated default: organizations).")
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(envvar="MAILFLEET_M365_CLIENT_ID", help="App (client) id of the sign-in."),
    ] = None,
    client_secret_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the app's client secret.")
    ] = None,
    certificate: Annotated[
        Path | None, typer.Option(help="PEM file with the app's private key and certificate.")
    ] = None,
    token_url: Annotated[str | None, typer.Option(help="Plain OAuth token endpoint.")] = None,
    google: Annotated[bool, typer.Option("--google", help="Google OAuth refresh token.")] = False,
    refresh_token_env: Annotated[
        str | None, typer.Option(help="Environment variable holding a Google refresh token.")
    ] = None,
    service_account: Annotated[
        Path | None, typer.Option(help="Google service-account key (domain-wide delegation).")
    ] = None,
    password_env: Annotated[
        str | None, typer.Option(help="Environment variable holding a password.")
    ] = None,
    username: Annotated[str | None, typer.Option(help="Login name if not the address.")] = None,
    authority_host: Annotated[
        str | None, typer.Option(help="Sign-in host (default https://login.microsoftonline.com).")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Get a token before storing.")
    ] = True,
    wait_seconds: Annotated[float, typer.Option(help="How long to wait for a sign-in.")] = 900,
    workspace: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Connect (or re-connect) a mailbox: sign in, verify, then store the sealed credentials."""
    settings, box = _setup()
    current = _with_db(settings, lambda db: _find(db, address, workspace))
    if current is None:
        raise _fail(
            f"no mailbox {address!r}; add it first with `mailfleet mailbox add` or "
            "`mailfleet mailbox import`"
        )
    stored_host = current.token_endpoint if current.auth_kind.startswith("m365") else None
    env = _msal_env(authority_host or stored_host)
    clock = SystemClock()
    chosen = sum(
        bool(x)
        for x in (
            device_code,
            browser,
            client_secret_env or certificate,
            google,
            service_account,
            password_env,
        )
    )
    if chosen != 1:
        raise _fail(
            "choose one way to connect: --device-code, --browser, --client-secret-env or "
            "--certificate (app-only), --google, --service-account or --password-env"
        )
    secret: dict[str, Any]
    login_tenant: str | None = None
    login_client: str | None = None
    endpoint: str | None = None
    expires: datetime | None = None
    try:
        if device_code or browser:
            login_client = client_id or current.client_id
            if not login_client:
                raise _fail("--client-id (or MAILFLEET_M365_CLIENT_ID) is required for sign-in")
            login_tenant = _tenant(tenant or current.tenant or "organizations", delegated=True)
            kind = AuthKind.M365_DELEGATED
            endpoint = authority_host
            signed = asyncio.run(
                _sign_in(address, login_client, login_tenant, env, device_code, port, wait_seconds)
            )
            secret, expires = (
                {"token_cache": signed.token_cache, "account": signed.account},
                signed.expires_at,
            )
        elif client_secret_env or certificate:
            if not client_id:
                raise _fail("app-only access needs --client-id")
            login_client = client_id
            if token_url:
                kind = AuthKind.OAUTH2_CLIENT
                endpoint = token_url
                secret = {"client_secret": from_env(client_secret_env or "", "OAuth client secret")}
                tokens: TokenProvider = ClientCredentialsProvider(
                    token_url=token_url,
                    client_id=client_id,
                    client_secret=secret["client_secret"],
                    scope="https://outlook.office365.com/.default",
                    clock=clock,
                )
            else:
                if not (tenant or current.tenant):
                    raise _fail("app-only access needs --tenant (GUID or domain)")
                login_tenant = _tenant(tenant or current.tenant or "")
                kind = AuthKind.M365_APP
                endpoint = authority_host
                secret = (
                    certificate_secret(certificate)
                    if certificate
                    else {"client_secret": from_env(client_secret_env or "", "client secret")}
                )
                credential: str | ClientCertificate = (
                    ClientCertificate(
                        secret["private_key"], secret["thumbprint"], secret["public_certificate"]
                    )
                    if certificate
                    else secret["client_secret"]
                )
                tokens = MsalAppTokens(
                    client_id=client_id,
                    tenant=login_tenant,
                    credential=credential,
                    clock=clock,
                    environment=env,
                )
            if verify:
                expires = asyncio.run(_verify(address, tokens))
        elif google:
            if not (client_id and refresh_token_env):
                raise _fail(
                    "--google needs --client-id, --client-secret-env and --refresh-token-env"
                )
            kind = AuthKind.GOOGLE_OAUTH
            login_client = client_id
            endpoint = token_url
            secret = {"refresh_token": from_env(refresh_token_env, "Google refresh token")}
            if client_secret_env:
                secret["client_secret"] = from_env(client_secret_env, "OAuth client secret")
            if verify:
                expires = asyncio.run(
                    _verify(
                        address,
                        GoogleUserTokens(
                            address=address,
                            client_id=client_id,
                            client_secret=str(secret.get("client_secret", "")),
                            refresh_token=secret["refresh_token"],
                            clock=clock,
                            token_uri=token_url or GOOGLE_TOKEN_URI,
                            request=GOOGLE_REQUEST,
                        ),
                    )
                )
        elif service_account:
            kind = AuthKind.GOOGLE_SERVICE_ACCOUNT
            secret = {"service_account": service_account_secret(service_account)}
            if verify:
                expires = asyncio.run(
                    _verify(
                        address,
                        GoogleServiceAccountTokens(
                            address=address,
                            service_account_info=secret["service_account"],
                            clock=clock,
                            request=GOOGLE_REQUEST,
                        ),
                    )
                )
        else:
            kind = AuthKind.PASSWORD
            secret = {"password": from_env(password_env or "", "mailbox password")}
            if username:
                secret["username"] = username
            if current.provider == "microsoft365":
                _warn(
                    "basic authentication for Microsoft 365 SMTP is being retired; "
                    f"prefer `{reconnect_command(address, AuthKind.M365_DELEGATED)}`"
                )
    except CredentialInputError as exc:
        raise _fail(f"{address}: {exc}") from None
    except TokenError as exc:
        raise _refused(address, exc, "sign-in") from None
    login = store_credentials.StoredLogin(
        kind, box.seal(secret), login_tenant, login_client, endpoint
    )

    async def store(db: Database) -> bool:
        async with db.session() as session:
            mailbox = await session.get(Mailbox, current.id)
            if mailbox is None:
                raise _fail(f"{address} was removed meanwhile; nothing stored")
            return store_credentials.set_login(session, mailbox, login, datetime.now(UTC))

    reactivated = _with_db(settings, store)
    until = f"; token valid until {expires.isoformat(timespec='minutes')}" if expires else ""
    console.print(
        f"connected {address} ({kind}){until}"
        + ("; it was disconnected and is active again" if reactivated else ""),
        highlight=False,
    )
    if current.status == MailboxStatus.PAUSED:
        _warn(f"{address} is paused; `mailfleet mailbox resume {address}` lets it send")


async def _sign_in(
    address: str,
    client_id: str,
    tenant: str,
    env: MsalEnvironment,
    device_code: bool,
    port: int,
    wait_seconds: float,
) -> SignedIn:
    clock = SystemClock()
    if device_code:
        flow = DeviceCodeSignIn(
            address=address, client_id=client_id, tenant=tenant, clock=clock, environment=env
        )
        prompt = await flow.start()
        console.print(
            prompt.message or f"open {prompt.verification_uri} and enter {prompt.user_code}",
            highlight=False,
        )
        return await asyncio.wait_for(flow.finish(), wait_seconds)
    sign_in = BrowserSignIn(
        address=address, client_id=client_id, tenant=tenant, clock=clock, environment=env
    )

    def show(url: str) -> None:
        console.print(
            f"opening the sign-in page; if no browser opens, visit:\n{url}", highlight=False
        )
        import webbrowser

        webbrowser.open(url)

    return await sign_in.run(open_browser=show, wait_seconds=wait_seconds, port=port)


# -- list / show / pause / resume / remove -------------------------------------------------


async def _find(db: Database, address: str, workspace: str | None) -> Mailbox | None:
    async with db.session() as session:
        try:
            return await store_commands.find_mailbox(session, address, workspace)
        except LookupError as exc:
            if "several" in str(exc):
                raise _fail(str(exc)) from None
            return None


def _opened(box: SecretBox, blob: bytes | None) -> dict[str, Any] | None:
    if blob is None:
        return {}
    try:
        return box.open(blob)
    except SecretError:
        return None


def _age(created: datetime, now: datetime) -> str:
    days = (now - created).days
    return f"{days}d" if days >= 1 else f"{int((now - created).total_seconds() // 3600)}h"


async def _describe(db: Database, box: SecretBox, mailboxes: list[Mailbox]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    out: list[dict[str, Any]] = []
    async with db.session() as session:
        slugs = dict((await session.execute(select(Workspace.id, Workspace.slug))).all())
        for m in mailboxes:
            day_start = local_day(now, m.timezone)[1] - timedelta(days=1)
            usage = await repo.usage_counts(session, m.id, now, day_start)
            out.append(
                {
                    "address": m.address,
                    "workspace": slugs.get(m.workspace_id, ""),
                    "provider": m.provider,
                    "auth": m.auth_kind,
                    "status": m.status,
                    "reason": m.status_reason,
                    "token": token_status(m.auth_kind, _opened(box, m.secret), now),
                    "age": _age(m.created_at, now),
                    "tags": list(m.tags or []),
                    "today": usage.cold_today,
                    "daily_cap": m.daily_cap,
                    "sent_24h": usage.messages_24h,
                    "smtp": f"{m.smtp_host}:{m.smtp_port} {m.smtp_security}",
                    "tenant": m.tenant,
                    "client_id": m.client_id,
                    "created_at": m.created_at.isoformat(timespec="seconds"),
                }
            )
    return out


@mailbox_app.command("list")
def mailbox_list(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    workspace: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Every mailbox: status, auth kind, token expiry, age, tags, today's usage (no secrets)."""
    settings, box = _setup()

    async def run(db: Database) -> list[dict[str, Any]]:
        async with db.session() as session:
            query = select(Mailbox).order_by(Mailbox.address)
            if workspace:
                query = query.join(Workspace, Workspace.id == Mailbox.workspace_id).where(
                    Workspace.slug == workspace
                )
            rows = list((await session.scalars(query)).all())
        return await _describe(db, box, rows)

    data = _with_db(settings, run)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    table = Table(title="Mailboxes")
    for column in ("address", "status", "auth", "token", "age", "tags", "today"):
        table.add_column(column, justify="right" if column == "today" else "left")
    for item in data:
        cap = f"/{item['daily_cap']}" if item["daily_cap"] else ""
        table.add_row(
            item["address"],
            item["status"],
            item["auth"],
            item["token"],
            item["age"],
            ", ".join(item["tags"]),
            f"{item['today']}{cap}",
        )
    console.print(table)


@mailbox_app.command("show")
def mailbox_show(
    address: str,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    workspace: Annotated[str | None, typer.Option()] = None,
) -> None:
    """One mailbox in detail, with its recent events (never its secrets)."""
    settings, box = _setup()

    async def run(db: Database) -> dict[str, Any]:
        mailbox = await _find(db, address, workspace)
        if mailbox is None:
            raise _fail(f"no mailbox {address!r}")
        item = (await _describe(db, box, [mailbox]))[0]
        async with db.session() as session:
            events = (
                await session.scalars(
                    select(Event)
                    .where(Event.mailbox_id == mailbox.id, Event.kind.like("mailbox.%"))
                    .order_by(Event.at.desc(), Event.id.desc())
                    .limit(5)
                )
            ).all()
        item["events"] = [
            {"at": e.at.isoformat(timespec="seconds"), "kind": e.kind, "message": e.message}
            for e in events
        ]
        if mailbox.status == MailboxStatus.DISCONNECTED:
            item["reconnect"] = reconnect_command(mailbox.address, mailbox.auth_kind)
        return item

    item = _with_db(settings, run)
    if as_json:
        print(json.dumps(item, indent=2))
        return
    for key in (
        "address",
        "workspace",
        "provider",
        "status",
        "reason",
        "auth",
        "tenant",
        "client_id",
        "token",
        "smtp",
        "age",
        "tags",
        "today",
        "daily_cap",
        "sent_24h",
        "reconnect",
    ):
        value = item.get(key)
        if value in (None, "", []):
            continue
        shown = ", ".join(value) if isinstance(value, list) else value
        console.print(f"[bold]{key}[/]: {shown}", highlight=False)
    for event in item["events"]:
        console.print(f"  {event['at']} {event['kind']}: {event['message']}", highlight=False)


def _change(
    address: str, workspace: str | None, change: Callable[[Any, Mailbox], Awaitable[str]]
) -> None:
    settings, _ = _setup()

    async def run(db: Database) -> str:
        async with db.session() as session:
            try:
                mailbox = await store_commands.find_mailbox(session, address, workspace)
            except LookupError as exc:
                raise _fail(str(exc)) from None
            return await change(session, mailbox)

    console.print(_with_db(settings, run), highlight=False)


@mailbox_app.command("pause")
def mailbox_pause(
    address: str,
    reason: Annotated[str, typer.Option(help="Why, for the timeline.")] = "paused by a person",
    workspace: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Stop a mailbox from sending until it is resumed; its queued first steps move on."""

    async def change(session: Any, mailbox: Mailbox) -> str:
        if mailbox.status == MailboxStatus.DISCONNECTED:
            raise _fail(f"{mailbox.address} is disconnected; it does not send anyway")
        store_credentials.pause(session, mailbox, reason, datetime.now(UTC))
        await store_credentials.release_first_steps(session, mailbox.id)
        return f"paused {mailbox.address}"

    _change(address, workspace, change)


@mailbox_app.command("resume")
def mailbox_resume(address: str, workspace: Annotated[str | None, typer.Option()] = None) -> None:
    """Let a paused mailbox send again (a disconnected one needs `mailbox connect`)."""

    async def change(session: Any, mailbox: Mailbox) -> str:
        if mailbox.status == MailboxStatus.DISCONNECTED:
            raise _fail(
                f"{mailbox.address} is disconnected ({mailbox.status_reason}); re-connect it "
                f"with `{reconnect_command(mailbox.address, mailbox.auth_kind)}`"
            )
        if mailbox.status == MailboxStatus.ACTIVE and mailbox.paused_until is None:
            return f"{mailbox.address} is already active"
        store_credentials.resume(session, mailbox, datetime.now(UTC))
        return f"resumed {mailbox.address}"

    _change(address, workspace, change)


@mailbox_app.command("remove")
def mailbox_remove(
    address: str,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete its send history (breaks threads).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
    workspace: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Delete a mailbox and its sealed credentials; refuses one with history unless --purge."""

    async def change(session: Any, mailbox: Mailbox) -> str:
        sent = await store_credentials.send_count(session, mailbox.id)
        if sent and not purge:
            raise _fail(
                f"{mailbox.address} has {sent} send(s) on record; pause it instead "
                f"(`mailfleet mailbox pause {mailbox.address}`), or --purge to delete its history"
            )
        if not yes and not typer.confirm(f"delete {mailbox.address}?"):
            raise _fail("nothing removed", 1)
        await store_credentials.release_first_steps(session, mailbox.id)
        await session.delete(mailbox)
        return f"removed {mailbox.address}"

    _change(address, workspace, change)
