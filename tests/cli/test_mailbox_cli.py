"""``mailfleet mailbox …`` and ``mailfleet keys …`` as an operator runs them."""

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import Result
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from fakes.msal_authority import FakeAuthority
from mailfleet.cli import mailbox as mailbox_cli
from mailfleet.cli.main import app
from mailfleet.transport.msal_tokens import MsalEnvironment
from mailfleet.transport.secrets import SecretBox, read_key_file

runner = CliRunner()
TENANT_ID = "8f2b4c1e-3a5d-4e6f-9a0b-1c2d3e4f5a6b"
APP_SECRET = "app-secret-Zq8~value"
PASSWORDS = ("Pw-Alpha-7731!", "Pw-Beta-9902?")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("MAILFLEET_HOME", str(folder))
    monkeypatch.delenv("MAILFLEET_DATABASE_URL", raising=False)
    monkeypatch.delenv("MAILFLEET_SECRET_KEY", raising=False)
    monkeypatch.delenv("MAILFLEET_M365_CLIENT_ID", raising=False)
    monkeypatch.setenv("APP_SECRET", APP_SECRET)
    return folder


@pytest.fixture
def authority(monkeypatch: pytest.MonkeyPatch) -> FakeAuthority:
    fake = FakeAuthority(tenants={TENANT_ID, "contoso.com", "organizations"})
    fake.add_app("app-1", secret=APP_SECRET)
    monkeypatch.setattr(
        mailbox_cli,
        "MSAL_ENVIRONMENT",
        MsalEnvironment("https://login.test", fake, instance_discovery=False),
    )
    return fake


def secrets_in_db(home: Path) -> dict[str, tuple[str, bytes]]:
    with sqlite3.connect(home / "mailfleet.db") as conn:
        rows = conn.execute("SELECT address, auth_kind, secret FROM mailbox").fetchall()
    return {address: (kind, blob) for address, kind, blob in rows}


def flat(result: Result) -> str:
    """The output with Rich's line wrapping undone."""
    return " ".join(result.output.split())


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


GOOD = f"""
Email,From Name,Provider,Password,SMTP Host,SMTP Port,IMAP Host,Tags,Daily Limit
alex@brand-mail.example,Alex Morgan,microsoft365,,,,,"east, m365",20
sam@brand-mail.example,Sam Rivera,Office 365,,,,,east,
kim@try-brand.example,Kim Lee,generic,{PASSWORDS[0]},mail.try-brand.example,587,\
imap.try-brand.example,smtp,15
lou@try-brand.example,Lou Park,google,{PASSWORDS[1]},,,,,
"""


def test_import_attaches_app_only_and_password_mailboxes_and_lists_them(
    home: Path, tmp_path: Path, authority: FakeAuthority
) -> None:
    path = write_csv(tmp_path / "boxes.csv", GOOD)
    result = runner.invoke(
        app,
        [
            "mailbox", "import", str(path), "--tenant", TENANT_ID, "--client-id", "app-1",
            "--client-secret-env", "APP_SECRET", "--tag", "batch-1",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "4 mailbox(es) imported" in flat(result)
    assert "row 2 alex@brand-mail.example (microsoft365, m365_app)" in flat(result)
    assert "basic authentication" not in flat(result)  # no M365 password rows here
    assert authority.grants("client_credentials") == 1  # one token proves the tenant's app
    stored = secrets_in_db(home)
    assert {k: v[0] for k, v in stored.items()} == {
        "alex@brand-mail.example": "m365_app",
        "sam@brand-mail.example": "m365_app",
        "kim@try-brand.example": "password",
        "lou@try-brand.example": "password",
    }
    for _, blob in stored.values():
        for secret in (APP_SECRET, *PASSWORDS):
            assert secret.encode() not in blob
    listed = runner.invoke(app, ["mailbox", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {r["address"]: r for r in json.loads(listed.output)}
    alex = rows["alex@brand-mail.example"]
    assert alex["status"] == "active" and alex["auth"] == "m365_app"
    assert alex["tags"] == ["east", "m365", "batch-1"] and alex["daily_cap"] == 20
    assert alex["tenant"] == TENANT_ID and alex["token"] == "on demand (app)"
    assert alex["today"] == 0 and alex["age"] == "0h"
    assert rows["kim@try-brand.example"]["token"] == "password"
    table = runner.invoke(app, ["mailbox", "list"])
    assert table.exit_code == 0 and "m365_app" in flat(table)
    for output in (flat(result), listed.output, flat(table)):
        for secret in (APP_SECRET, *PASSWORDS):
            assert secret not in output


BAD = f"""
Email,Provider,Password,SMTP Port,Tenant,Daily Limit
not-an-address,microsoft365,{PASSWORDS[0]},,,
ok@brand-mail.example,google,{PASSWORDS[1]},587,,
smtp-host-missing@brand.example,generic,{PASSWORDS[0]},,,
odd@brand-mail.example,yahoo,{PASSWORDS[0]},,,
tenant@brand-mail.example,microsoft365,,,not a tenant!,
port@brand-mail.example,google,{PASSWORDS[0]},99999,,
ok@brand-mail.example,google,{PASSWORDS[0]},,,
cap@brand-mail.example,google,{PASSWORDS[0]},,,lots
nocred@brand-mail.example,microsoft365,,,,
m365pw@brand-mail.example,microsoft365,{PASSWORDS[0]},,,
"""


def test_malformed_rows_are_reported_one_by_one_and_nothing_is_stored(
    home: Path, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "bad.csv", BAD)
    result = runner.invoke(app, ["mailbox", "import", str(path), "--provider", "generic"])
    assert result.exit_code == 1
    out = flat(result)
    assert "row 2: 'not-an-address' is not an email address" in out
    assert "row 4 " in out and "needs an SMTP host" in out
    assert "row 5 (odd@brand-mail.example): unknown provider 'yahoo'" in out
    assert "row 6 (tenant@brand-mail.example): tenant 'not a tenant!' is neither a GUID" in out
    assert "row 7 (port@brand-mail.example): SMTP port '99999'" in out
    assert "row 8 (ok@brand-mail.example): the same address as row 3" in out
    assert "row 9 (cap@brand-mail.example): daily limit 'lots'" in out
    assert "row 10 (nocred@brand-mail.example): no password and no app credentials" in out
    assert "nothing imported" in out
    assert "basic authentication" in out  # row 11 is valid, with the deprecation warning
    for secret in PASSWORDS:
        assert secret not in out
    assert not (home / "mailfleet.db").exists() or secrets_in_db(home) == {}
    partial = runner.invoke(app, ["mailbox", "import", str(path), "--partial"])
    assert partial.exit_code == 1
    assert "2 mailbox(es) imported, 8 row(s) rejected" in flat(partial)
    assert set(secrets_in_db(home)) == {"ok@brand-mail.example", "m365pw@brand-mail.example"}
    again = runner.invoke(app, ["mailbox", "import", str(path), "--partial"])
    assert "already in workspace" in flat(again)


def test_a_refused_client_secret_stores_nothing(
    home: Path, tmp_path: Path, authority: FakeAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_SECRET", "not-the-secret")
    path = write_csv(tmp_path / "boxes.csv", GOOD)
    result = runner.invoke(
        app,
        [
            "mailbox", "import", str(path), "--tenant", TENANT_ID, "--client-id", "app-1",
            "--client-secret-env", "APP_SECRET",
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "row 2 (alex@brand-mail.example): sign-in refused" in flat(result)
    assert "AADSTS7000215" in flat(result) and "client secret" in flat(result)
    assert "nothing imported" in flat(result) and "not-the-secret" not in flat(result)
    assert not (home / "mailfleet.db").exists() or secrets_in_db(home) == {}


def test_file_level_errors_name_the_file(home: Path, tmp_path: Path) -> None:
    empty = write_csv(tmp_path / "empty.csv", " ")
    assert "the file is empty" in flat(runner.invoke(app, ["mailbox", "import", str(empty)]))
    headless = write_csv(tmp_path / "h.csv", "Name,Password\nA,b")
    result = runner.invoke(app, ["mailbox", "import", str(headless)])
    assert result.exit_code == 2 and "no address column" in flat(result)
    unset = runner.invoke(
        app, ["mailbox", "import", str(headless), "--client-id", "x", "--client-secret-env", "NOPE"]
    )
    assert "environment variable NOPE is not set" in flat(unset)


def add_password_box(address: str, password: str = PASSWORDS[0]) -> None:
    result = runner.invoke(
        app,
        [
            "mailbox", "add", address, "--provider", "generic", "--smtp-host",
            "mail.example.org", "--password-env", "APP_SECRET", "--tag", "t",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_device_code_connect_then_refusals_leave_stored_credentials_untouched(
    home: Path, authority: FakeAuthority
) -> None:
    add_password_box("alex@contoso.com")
    authority.approve_device_code("alex@contoso.com", after_polls=1)
    connect = [
        "mailbox", "connect", "alex@contoso.com", "--device-code", "--client-id", "public-1",
        "--tenant", "contoso.com",
    ]  # fmt: skip
    result = runner.invoke(app, connect)
    assert result.exit_code == 0, result.output
    assert "ABCD-EFGH" in flat(result) and "connected alex@contoso.com (m365_delegated)" in flat(
        result
    )
    kind, blob = secrets_in_db(home)["alex@contoso.com"]
    assert kind == "m365_delegated" and b"rt-" not in blob
    shown = json.loads(runner.invoke(app, ["mailbox", "show", "alex@contoso.com", "--json"]).output)
    assert shown["token"].startswith("valid until") and shown["client_id"] == "public-1"
    assert shown["events"][0]["kind"] == "mailbox.connected"
    # An expired device code: a clear error, and the stored sign-in is kept as it was.
    authority.expire_device_codes()
    expired = runner.invoke(app, connect)
    assert expired.exit_code == 2
    assert "alex@contoso.com" in flat(expired) and "AADSTS70020" in flat(expired)
    assert "Stored credentials are unchanged" in flat(expired)
    assert secrets_in_db(home)["alex@contoso.com"] == (kind, blob)
    # A tenant that is neither a GUID nor a domain never reaches the authority.
    before = len(authority.requests)
    bad = runner.invoke(app, [*connect[:-1], "contoso"])
    assert bad.exit_code == 2 and "neither a GUID" in flat(bad)
    assert len(authority.requests) == before
    # A refused app secret on re-connect: named, and nothing changes.
    refused = runner.invoke(
        app,
        [
            "mailbox", "connect", "alex@contoso.com", "--tenant", TENANT_ID, "--client-id",
            "unknown-app", "--client-secret-env", "APP_SECRET",
        ],
    )  # fmt: skip
    assert refused.exit_code == 2 and "AADSTS700016" in flat(refused)
    assert secrets_in_db(home)["alex@contoso.com"] == (kind, blob)
    assert APP_SECRET not in flat(refused)


def test_corrupt_cache_and_wrong_key_are_reported_per_mailbox(
    home: Path, authority: FakeAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_password_box("kim@example.org")
    box = SecretBox.from_key_file(home / "secret.key")
    with sqlite3.connect(home / "mailfleet.db") as conn:
        conn.execute(
            "UPDATE mailbox SET auth_kind='m365_delegated', tenant='contoso.com', "
            "client_id='c', secret=?",
            (box.seal({"token_cache": "{corrupt"}),),
        )
    listed = json.loads(runner.invoke(app, ["mailbox", "list", "--json"]).output)
    assert listed[0]["token"] == "token cache corrupt"
    monkeypatch.setenv("MAILFLEET_SECRET_KEY", Fernet.generate_key().decode())
    wrong = json.loads(runner.invoke(app, ["mailbox", "list", "--json"]).output)
    assert wrong[0]["token"] == "unreadable (wrong key?)"
    rotate = runner.invoke(app, ["keys", "rotate"])
    assert rotate.exit_code == 2 and "kim@example.org" in flat(rotate)
    assert "nothing was changed" in flat(rotate)


def test_pause_resume_remove(home: Path) -> None:
    add_password_box("kim@example.org")
    assert "paused kim@example.org" in flat(
        runner.invoke(app, ["mailbox", "pause", "kim@example.org"])
    )
    shown = json.loads(runner.invoke(app, ["mailbox", "show", "kim@example.org", "--json"]).output)
    assert shown["status"] == "paused" and shown["reason"] == "paused by a person"
    assert "resumed" in flat(runner.invoke(app, ["mailbox", "resume", "kim@example.org"]))
    with sqlite3.connect(home / "mailfleet.db") as conn:
        conn.execute("UPDATE mailbox SET status='disconnected', status_reason='AADSTS50173: x'")
    resume = runner.invoke(app, ["mailbox", "resume", "kim@example.org"])
    assert resume.exit_code == 2
    assert "mailfleet mailbox connect kim@example.org --password-env VAR" in flat(resume)
    removed = runner.invoke(app, ["mailbox", "remove", "kim@example.org", "--yes"])
    assert removed.exit_code == 0 and secrets_in_db(home) == {}
    missing = runner.invoke(app, ["mailbox", "show", "kim@example.org"])
    assert missing.exit_code == 2 and "no mailbox" in flat(missing)


def test_keys_rotate_reencrypts_a_populated_database_without_downtime(
    home: Path, tmp_path: Path
) -> None:
    lines = ["Email,Provider,Password,SMTP Host"]
    lines += [
        f"user{i}@fleet.example,generic,Pw-{i:03d}-secret,mail.fleet.example" for i in range(60)
    ]
    path = write_csv(tmp_path / "many.csv", "\n".join(lines))
    assert runner.invoke(app, ["mailbox", "import", str(path)]).exit_code == 0
    key_file = home / "secret.key"
    running = SecretBox.from_key_file(key_file)  # an engine started before the rotation
    before = secrets_in_db(home)
    old_keys = read_key_file(key_file)
    result = runner.invoke(app, ["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 60 of 60" in flat(result) and "older keys kept" in flat(result)
    keys = read_key_file(key_file)
    assert len(keys) == 2 and keys[1:] == old_keys and (key_file.stat().st_mode & 0o777) == 0o600
    after = secrets_in_db(home)
    newest = SecretBox([keys[0]])
    for address, (_, blob) in after.items():
        assert blob != before[address][1]
        assert newest.open(blob)["password"].startswith("Pw-")
        assert running.open(blob) == running.open(before[address][1])  # still readable
    status = runner.invoke(app, ["keys", "status"])
    assert "60 under the newest key, 0 under older keys, 0 unreadable" in flat(status)
    dropped = runner.invoke(app, ["keys", "rotate", "--drop-old"])
    assert dropped.exit_code == 0 and "older keys removed" in flat(dropped)
    final_keys = read_key_file(key_file)
    assert len(final_keys) == 1 and final_keys[0] not in keys
    final = secrets_in_db(home)
    assert all(SecretBox(final_keys).open(b)["password"] for _, b in final.values())
    assert running.open(final["user7@fleet.example"][1]) == {"password": "Pw-007-secret"}
    for output in (flat(result), flat(status), flat(dropped)):
        assert "Pw-0" not in output and keys[0].decode() not in output


def test_keys_rotate_with_environment_keys(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("MAILFLEET_SECRET_KEY", old)
    add_password_box("kim@example.org")
    monkeypatch.setenv("MAILFLEET_SECRET_KEY", f"{new},{old}")
    result = runner.invoke(app, ["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "older keys in it may now be removed" in flat(result)
    blob = secrets_in_db(home)["kim@example.org"][1]
    assert SecretBox([new.encode()]).open(blob) == {"password": APP_SECRET}
    assert not (home / "secret.key").exists()


def test_mailbox_set_changes_settings_keeps_history_and_refuses_bad_values(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOX_PW", "pw-not-checked")

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args))

    added = run(
        "mailbox", "add", "a@brand.example", "--provider", "generic",
        "--smtp-host", "smtp.brand.example", "--smtp-port", "587", "--password-env", "BOX_PW",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    changed = run(
        "mailbox", "set", "a@brand.example", "--timezone", "Europe/Berlin", "--min-gap", "12",
        "--imap-host", "", "--pop3-host", "pop.brand.example", "--pop3-port", "995",
        "--pop3-security", "tls", "--tag", "cold", "--daily-cap", "20",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.output
    assert "timezone 'UTC' → 'Europe/Berlin'" in flat(changed)
    with sqlite3.connect(home / "mailfleet.db") as db:
        row = db.execute(
            "select timezone, min_gap_seconds, imap_host, pop3_host, pop3_port, pop3_security, "
            "tags, daily_cap from mailbox"
        ).fetchone()
        kinds = [k for (k,) in db.execute("select kind from event order by id")]
    assert row == ("Europe/Berlin", 720, None, "pop.brand.example", 995, "tls", '["cold"]', 20)
    assert kinds.count("mailbox.changed") == 1
    for args, why in [
        (["--timezone", "Mars/Base"], "not an IANA zone"),
        (["--smtp-port", "0"], "not a TCP port"),
        (["--smtp-security", "plain"], "loopback"),
        (["--pop3-security", "ssl"], "not one of tls, starttls, plain"),
        (["--ca-file", "/no/such.pem"], "no such file"),
        ([], "nothing to change"),
    ]:
        refused = run("mailbox", "set", "a@brand.example", *args)
        assert refused.exit_code == 2 and why in flat(refused), (args, refused.output)
    with sqlite3.connect(home / "mailfleet.db") as db:
        assert db.execute("select timezone, smtp_port from mailbox").fetchone() == (
            "Europe/Berlin",
            587,
        )
    m365 = run("mailbox", "add", "b@brand.example", "--password-env", "BOX_PW")
    assert m365.exit_code == 0, m365.output
    refused = run("mailbox", "set", "b@brand.example", "--max-per-minute", "31")
    assert refused.exit_code == 2 and "30 messages a minute" in flat(refused)
    assert run("mailbox", "set", "b@brand.example", "--max-per-minute", "20").exit_code == 0
