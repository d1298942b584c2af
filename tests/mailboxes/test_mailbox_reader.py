"""The mailbox CSV reader and the identity-provider refusal table: pure, no I/O."""

import io

import pytest

from mailfleet.mailboxes import AuthKind, ImportDefaults, MailboxFileError, parse_mailboxes
from mailfleet.providers.identity import (
    RefusalAction,
    explain_refusal,
    normalize_tenant,
    reconnect_command,
)


def parse(text: str, **defaults: object) -> object:
    return parse_mailboxes(io.StringIO(text), source="f.csv", defaults=ImportDefaults(**defaults))  # type: ignore[arg-type]


def test_instantly_style_export_with_semicolons_and_aliases() -> None:
    text = (
        "Email;First Name;Last Name;SMTP Password;SMTP Host;SMTP Port;IMAP Host;IMAP Port;"
        "Max Email Per Day;Warmup Enabled\n"
        "a@b.example;Ann;Lee;pw-1;smtp.gmail.com;465;imap.gmail.com;993;30;TRUE\n"
    )
    result = parse(text)
    [row] = result.rows  # type: ignore[attr-defined]
    assert (row.provider, row.auth_kind, row.smtp_security) == ("google", AuthKind.PASSWORD, "tls")
    assert row.display_name == "Ann Lee" and row.daily_limit == 30 and row.imap_port == 993
    assert result.ignored_columns == ["Warmup Enabled"]  # type: ignore[attr-defined]
    assert "pw-1" not in repr(row)


def test_app_only_rows_take_the_command_line_tenant_and_app() -> None:
    text = "email,tenant\nx@contoso.com,\ny@fabrikam.com,FABRIKAM.onmicrosoft.com\n"
    result = parse(
        text,
        provider="microsoft365",
        tenant="contoso.com",
        client_id="app",
        app_secret={"client_secret": "s"},
    )
    tenants = [(r.address, r.tenant, r.auth_kind) for r in result.rows]  # type: ignore[attr-defined]
    assert tenants == [
        ("x@contoso.com", "contoso.com", AuthKind.M365_APP),
        ("y@fabrikam.com", "fabrikam.onmicrosoft.com", AuthKind.M365_APP),
    ]


def test_file_errors() -> None:
    with pytest.raises(MailboxFileError, match="no address column"):
        parse("name,password\na,b\n")
    with pytest.raises(MailboxFileError, match="empty"):
        parse("\n\n")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8F2B4C1E-3A5D-4E6F-9A0B-1C2D3E4F5A6B", "8f2b4c1e-3a5d-4e6f-9a0b-1c2d3e4f5a6b"),
        ("Contoso.OnMicrosoft.com", "contoso.onmicrosoft.com"),
        ("brand-mail.co.uk", "brand-mail.co.uk"),
    ],
)
def test_tenants_that_are_guids_or_domains(value: str, expected: str) -> None:
    assert normalize_tenant(value) == expected


@pytest.mark.parametrize(
    "value", ["contoso", "", "not a tenant", "1234", "-bad-.com", "organizations"]
)
def test_tenants_that_are_neither(value: str) -> None:
    with pytest.raises(ValueError):
        normalize_tenant(value)


def test_refusals_are_read_from_codes_and_errors() -> None:
    revoked = explain_refusal("invalid_grant", "AADSTS50173: The provided grant has expired")
    assert (
        revoked.code == 50173 and revoked.action is RefusalAction.RECONNECT and revoked.disconnects
    )
    secret = explain_refusal("invalid_client", "", codes=(7000215,))
    assert secret.action is RefusalAction.FIX_APP and secret.label == "AADSTS7000215"
    assert not explain_refusal("temporarily_unavailable", "").disconnects
    assert not explain_refusal("", "", status=503).disconnects
    assert explain_refusal("invalid_grant", "").disconnects  # Google words it this way
    assert normalize_tenant("common", allow_aliases=True) == "common"
    assert (
        reconnect_command("a@b.c", "m365_delegated")
        == "mailfleet mailbox connect a@b.c --device-code"
    )
