"""Reading the mailbox CSV a managed inbox provider hands over, row by row.

Headers are matched by alias, ignoring case, spaces, dashes and underscores, so
the usual exports import as they are: "Email" / "From Email", "From Name" or
"First Name" + "Last Name", "Password" / "SMTP Password" / "App Password",
"SMTP Host", "SMTP Port", "IMAP Host", "IMAP Port", "Tenant", "Tags",
"Daily Limit" / "Max Email Per Day". Every row is validated on its own and
becomes a :class:`MailboxRow` or a :class:`RowError` that names the row, the
address and the cause. Secret cells (passwords) are read into the row's
``secret`` and never appear in an error, a warning or a ``repr``.

Pure: text in, rows out; the caller seals the secrets and stores the rows.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from mailfleet.mailboxes.kinds import AuthKind
from mailfleet.providers.identity import normalize_tenant
from mailfleet.providers.presets import PRESETS, get_preset
from mailfleet.providers.validation import ProviderConfigError, validate_endpoint

MAX_DAILY_LIMIT = 10_000

_ALIASES: dict[str, tuple[str, ...]] = {
    "address": ("email", "emailaddress", "fromemail", "address", "mailbox", "senderemail"),
    "display_name": ("displayname", "fromname", "name", "sendername", "fullname"),
    "first_name": ("firstname", "first"),
    "last_name": ("lastname", "last"),
    "provider": ("provider", "esp", "mailboxprovider", "type", "platform"),
    "password": ("password", "smtppassword", "apppassword", "pass", "imappassword"),
    "username": ("username", "smtpusername", "smtpuser", "login", "imapusername"),
    "smtp_host": ("smtphost", "smtpserver"),
    "smtp_port": ("smtpport",),
    "smtp_security": ("smtpsecurity", "smtpencryption", "smtpssl", "security"),
    "imap_host": ("imaphost", "imapserver"),
    "imap_port": ("imapport",),
    "imap_security": ("imapsecurity", "imapencryption"),
    "tenant": ("tenant", "tenantid", "tenantdomain", "directoryid"),
    "tags": ("tags", "tag", "labels", "groups"),
    "daily_limit": (
        "dailylimit",
        "maxemailperday",
        "maxemailsperday",
        "dailycap",
        "sendinglimit",
        "dailysendinglimit",
    ),
}
SECRET_COLUMNS = frozenset({"password"})

_PROVIDER_NAMES = {
    "microsoft365": "microsoft365",
    "m365": "microsoft365",
    "office365": "microsoft365",
    "o365": "microsoft365",
    "microsoft": "microsoft365",
    "outlook": "microsoft365",
    "exchangeonline": "microsoft365",
    "google": "google",
    "gmail": "google",
    "gsuite": "google",
    "googleworkspace": "google",
    "workspace": "google",
    "generic": "generic",
    "smtp": "generic",
    "custom": "generic",
    "other": "generic",
    "sandbox": "sandbox",
}
_SECURITY_NAMES = {
    "starttls": "starttls",
    "tls": "tls",
    "ssl": "tls",
    "ssltls": "tls",
    "implicittls": "tls",
    "plain": "plain",
    "none": "plain",
}
_ADDRESS = re.compile(r"^[^@\s,;<>]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$")


def header_key(header: str) -> str:
    """``"SMTP Host"`` → ``"smtphost"``: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", header.strip().lower())


class MailboxFileError(ValueError):
    """The file as a whole cannot be read (no header, no address column)."""


@dataclass(frozen=True, slots=True)
class RowError:
    """One rejected row: where, which mailbox, and why."""

    source: str
    row: int
    address: str
    message: str

    def __str__(self) -> str:
        who = f" ({self.address})" if self.address else ""
        return f"{self.source} row {self.row}{who}: {self.message}"


@dataclass(frozen=True, slots=True)
class ImportDefaults:
    """What the command line says for every row: provider, app-only credentials, tags."""

    provider: str | None = None
    tenant: str | None = None
    client_id: str | None = None
    app_secret: Mapping[str, Any] | None = field(default=None, repr=False)  # m365 app-only
    token_url: str | None = None  # plain OAuth client credentials (sandbox, generic)
    service_account: Mapping[str, Any] | None = field(default=None, repr=False)
    tags: tuple[str, ...] = ()
    ca_file: str | None = None


@dataclass(frozen=True, slots=True)
class MailboxRow:
    """One valid mailbox of the file, ready to seal and store."""

    row: int
    address: str
    display_name: str
    provider: str
    auth_kind: AuthKind
    smtp_host: str
    smtp_port: int
    smtp_security: str
    imap_host: str | None
    imap_port: int | None
    imap_security: str | None
    tenant: str | None
    client_id: str | None
    token_endpoint: str | None
    tags: tuple[str, ...]
    daily_limit: int | None
    secret: Mapping[str, Any] = field(repr=False)
    warnings: tuple[str, ...] = ()


@dataclass(slots=True)
class ParsedMailboxes:
    """Every row's verdict."""

    rows: list[MailboxRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


class _Reject(Exception):
    pass


def _columns(headers: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    mapping: dict[str, str] = {}
    ignored: list[str] = []
    for header in headers:
        key = header_key(header)
        target = next((f for f, aliases in _ALIASES.items() if key in aliases), None)
        if target is None or target in mapping:
            ignored.append(header)
        else:
            mapping[target] = header
    return mapping, ignored


def _int(value: str, name: str, low: int, high: int) -> int:
    text = value.strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise _Reject(f"{name} {value.strip()!r} is not a whole number from {low} to {high}")
    return int(text)


def _provider(value: str, smtp_host: str, defaults: ImportDefaults) -> str:
    if value.strip():
        name = _PROVIDER_NAMES.get(header_key(value))
        if name is None:
            known = ", ".join(sorted(set(PRESETS) | {"sandbox"}))
            raise _Reject(f"unknown provider {value.strip()!r}; known providers: {known}")
        return name
    host = smtp_host.strip().lower().rstrip(".")
    if host == "smtp.office365.com":
        return "microsoft365"
    if host == "smtp.gmail.com":
        return "google"
    if defaults.provider:
        return defaults.provider
    if host:
        return "generic"
    raise _Reject("no provider column and no SMTP host: give a provider or --provider")


def _auth(
    cells: Mapping[str, str], provider: str, tenant: str | None, defaults: ImportDefaults
) -> tuple[AuthKind, dict[str, Any], str | None, str | None]:
    """The row's credential kind, secret fields, client id and token endpoint."""
    password = cells.get("password", "")
    if password:
        secret: dict[str, Any] = {"password": password}
        if cells.get("username", "").strip():
            secret["username"] = cells["username"].strip()
        return AuthKind.PASSWORD, secret, None, None
    if defaults.token_url and defaults.client_id and defaults.app_secret:
        return (
            AuthKind.OAUTH2_CLIENT,
            dict(defaults.app_secret),
            defaults.client_id,
            defaults.token_url,
        )
    if provider == "microsoft365" and defaults.client_id and defaults.app_secret:
        if tenant is None:
            raise _Reject("app-only access needs a tenant: give --tenant or a tenant column")
        return AuthKind.M365_APP, dict(defaults.app_secret), defaults.client_id, None
    if provider == "google" and defaults.service_account:
        secret = {"service_account": dict(defaults.service_account)}
        return AuthKind.GOOGLE_SERVICE_ACCOUNT, secret, None, None
    if tenant is not None:
        raise _Reject(
            "the row names a tenant but no app credentials were given: add --client-id and "
            "--client-secret-env (or --certificate) for app-only access, or a password column"
        )
    raise _Reject(
        "no password and no app credentials: give a password (or app password) column, or "
        "--tenant/--client-id/--client-secret-env for Microsoft 365 app-only access"
    )


def _row(
    cells: Mapping[str, str], number: int, source: str, defaults: ImportDefaults
) -> MailboxRow:
    address = cells.get("address", "").strip()
    if not address:
        raise _Reject("the address is empty")
    if not _ADDRESS.match(address):
        raise _Reject(f"{address!r} is not an email address")
    provider = _provider(cells.get("provider", ""), cells.get("smtp_host", ""), defaults)
    preset = get_preset("generic" if provider == "sandbox" else provider)
    raw_tenant = cells.get("tenant", "").strip()
    if raw_tenant and provider != "microsoft365":
        raise _Reject(f"a tenant applies to Microsoft 365 mailboxes, not to provider {provider}")
    if not raw_tenant and provider == "microsoft365":
        raw_tenant = defaults.tenant or ""
    try:
        tenant = normalize_tenant(raw_tenant) if raw_tenant else None
    except ValueError as exc:
        raise _Reject(str(exc)) from None
    auth_kind, secret, client_id, token_endpoint = _auth(cells, provider, tenant, defaults)
    smtp_host = cells.get("smtp_host", "").strip() or preset.smtp_host or ""
    if not smtp_host:
        raise _Reject(f"provider {provider} needs an SMTP host column")
    smtp_port = (
        _int(cells["smtp_port"], "SMTP port", 1, 65535)
        if cells.get("smtp_port", "").strip()
        else preset.smtp_port
    )
    security = _security(cells.get("smtp_security", ""), "SMTP") or (
        "tls" if smtp_port == 465 else preset.smtp_security
    )
    try:
        warnings = validate_endpoint(
            provider,
            smtp_host=smtp_host,
            smtp_port=smtp_port,
            smtp_security=security,
            auth_kind=auth_kind,
        )
    except ProviderConfigError as exc:
        raise _Reject(str(exc)) from None
    imap_host = cells.get("imap_host", "").strip() or preset.imap_host
    imap_port = (
        _int(cells["imap_port"], "IMAP port", 1, 65535)
        if cells.get("imap_port", "").strip()
        else (preset.imap_port if imap_host else None)
    )
    imap_security = _security(cells.get("imap_security", ""), "IMAP") or (
        "tls" if imap_host else None
    )
    daily = (
        _int(cells["daily_limit"], "daily limit", 1, MAX_DAILY_LIMIT)
        if cells.get("daily_limit", "").strip()
        else None
    )
    tags = tuple(
        dict.fromkeys(
            [t.strip() for t in re.split(r"[,;|]", cells.get("tags", "")) if t.strip()]
            + list(defaults.tags)
        )
    )
    name = cells.get("display_name", "").strip() or " ".join(
        p for p in (cells.get("first_name", "").strip(), cells.get("last_name", "").strip()) if p
    )
    return MailboxRow(
        row=number,
        address=address,
        display_name=name,
        provider=provider,
        auth_kind=auth_kind,
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        smtp_security=security,
        imap_host=imap_host,
        imap_port=imap_port,
        imap_security=imap_security,
        tenant=tenant,
        client_id=client_id,
        token_endpoint=token_endpoint,
        tags=tags,
        daily_limit=daily,
        secret=secret,
        warnings=tuple(str(w) for w in warnings),
    )


def _security(value: str, what: str) -> str | None:
    if not value.strip():
        return None
    name = _SECURITY_NAMES.get(header_key(value))
    if name is None:
        raise _Reject(f"{what} security {value.strip()!r} is not starttls, tls (ssl) or plain")
    return name


def parse_mailboxes(
    handle: TextIO, *, source: str, defaults: ImportDefaults | None = None
) -> ParsedMailboxes:
    """Read every row of a mailbox CSV; raise :class:`MailboxFileError` for the file itself."""
    defaults = defaults or ImportDefaults()
    text = handle.read()
    if not text.strip():
        raise MailboxFileError(f"{source}: the file is empty")
    try:
        dialect: Any = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(text.splitlines(), dialect)
    try:
        headers = next(reader)
    except StopIteration:
        raise MailboxFileError(f"{source}: the file has no header row") from None
    mapping, ignored = _columns(headers)
    if "address" not in mapping:
        raise MailboxFileError(
            f"{source}: no address column (looked for Email, Email Address, From Email, "
            f"Address); the header is: {', '.join(h.strip() for h in headers)}"
        )
    index = {field_: headers.index(header) for field_, header in mapping.items()}
    result = ParsedMailboxes(ignored_columns=[h for h in ignored if h.strip()])
    seen: dict[str, int] = {}
    for number, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        cells = {f: values[i] if i < len(values) else "" for f, i in index.items()}
        address = cells.get("address", "").strip()
        shown = address if _ADDRESS.match(address) else ""
        if len(values) > len(headers):
            result.errors.append(
                RowError(
                    source,
                    number,
                    shown,
                    f"{len(values)} cells for {len(headers)} columns (an unquoted comma?)",
                )
            )
            continue
        try:
            row = _row(cells, number, source, defaults)
        except _Reject as exc:
            result.errors.append(RowError(source, number, shown, str(exc)))
            continue
        first = seen.get(row.address.lower())
        if first is not None:
            result.errors.append(
                RowError(source, number, row.address, f"the same address as row {first}")
            )
            continue
        seen[row.address.lower()] = number
        result.rows.append(row)
    return result
