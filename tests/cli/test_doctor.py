"""`mailfleet mailbox add` and `mailfleet doctor` against a healthy and a broken sandbox mailbox."""

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailfleet.cli.main import app
from mailfleet.clock import SystemClock
from mailfleet.sandbox import MailboxBehaviour, Reply, Sandbox, start_sandbox

runner = CliRunner()
TENANT = "contoso.onmicrosoft.com"


class SmtpAuthDisabled(MailboxBehaviour):
    async def on_auth(self, address: str, mechanism: str, now: datetime) -> Reply | None:
        return Reply(
            535,
            "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
            "Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.",
        )


class ThreadedSandbox:
    """The sandbox on its own event loop in a thread, so CLI commands can reach it."""

    def __init__(self, workdir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sandbox: Sandbox = self.call(start_sandbox(SystemClock(), workdir))

    def call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self) -> None:
        self.call(self.sandbox.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadedSandbox]:
    monkeypatch.setenv("MAILFLEET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SANDBOX_SECRET", "app-secret")
    monkeypatch.setenv("MAILBOX_PASSWORD", "pw-123")
    threaded = ThreadedSandbox(tmp_path / "sandbox")
    sb = threaded.sandbox
    sb.add_tenant(TENANT)
    sb.register_app(TENANT, "app", "app-secret")
    sb.add_mailbox("ok@sender.example", TENANT)
    sb.add_mailbox("off@sender.example", TENANT, behaviour=SmtpAuthDisabled())
    try:
        yield threaded
    finally:
        threaded.stop()


def add(sb: Sandbox, address: str, *extra: str) -> None:
    args = [
        "mailbox",
        "add",
        address,
        "--provider",
        "microsoft365",
        "--smtp-host",
        sb.smtp_host,
        "--smtp-port",
        str(sb.smtp_port),
        "--smtp-security",
        "starttls",
        "--ca-file",
        str(sb.ca_file),
        "--token-url",
        sb.token_url(TENANT),
        "--client-id",
        "app",
        "--client-secret-env",
        "SANDBOX_SECRET",
        "--tenant",
        TENANT,
    ]
    imap_port = getattr(sb, "imap_port", None)
    if imap_port:
        args += ["--imap-host", sb.smtp_host, "--imap-port", str(imap_port)]
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output


def test_doctor_walks_every_step_of_a_healthy_mailbox(world: ThreadedSandbox) -> None:
    add(world.sandbox, "ok@sender.example")
    result = runner.invoke(app, ["doctor", "ok@sender.example", "--json"])
    report = json.loads(result.output)
    steps = {s["step"]: s for s in report["steps"]}
    smtp_steps = [
        "dns",
        "connect",
        "banner",
        "ehlo",
        "starttls",
        "ehlo-after-tls",
        "tls",
        "auth-mechanisms",
        "token",
        "auth",
        "mail-from",
        "rset",
    ]
    for name in smtp_steps:
        assert steps[name]["ok"], steps[name]
    assert steps["banner"]["reply"].startswith("220 ")
    assert "TLSv1.2" in steps["tls"]["reply"] or "TLSv1.3" in steps["tls"]["reply"]
    assert "XOAUTH2" in steps["auth-mechanisms"]["reply"]
    assert steps["auth"]["reply"].startswith("235")
    assert steps["rset"]["reply"].startswith("250")
    assert set(report) == {"address", "ok", "steps"}
    assert all(set(s) == {"step", "ok", "reply", "remedy"} for s in report["steps"])
    assert world.sandbox.store.count("ok@sender.example", "Sent Items") == 0  # nothing was sent
    if getattr(world.sandbox, "imap_port", None):
        assert report["ok"] is True and result.exit_code == 0


def test_doctor_names_the_switch_when_smtp_auth_is_disabled(world: ThreadedSandbox) -> None:
    add(world.sandbox, "off@sender.example")
    result = runner.invoke(app, ["doctor", "off@sender.example", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False
    failed = [s for s in report["steps"] if not s["ok"]]
    assert failed[0]["step"] == "auth"
    assert failed[0]["reply"].startswith("535 5.7.139")
    assert "SmtpClientAuthenticationDisabled $false" in failed[0]["remedy"]
    assert "mail-from" not in {s["step"] for s in report["steps"]}
    text = runner.invoke(app, ["doctor", "off@sender.example"])
    assert "✗" in text.output and "Set-CASMailbox" in " ".join(text.output.split())


def test_doctor_reports_a_refused_token_with_the_aadsts_code(
    world: ThreadedSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDBOX_SECRET", "wrong")
    add(world.sandbox, "ok@sender.example")
    report = json.loads(runner.invoke(app, ["doctor", "ok@sender.example", "--json"]).output)
    token = next(s for s in report["steps"] if s["step"] == "token")
    assert not token["ok"] and "AADSTS" in token["reply"] and "consent" in token["remedy"]


def test_doctor_on_a_closed_port_stops_at_connect(world: ThreadedSandbox, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    result = runner.invoke(
        app,
        [
            "mailbox",
            "add",
            "x@sender.example",
            "--provider",
            "generic",
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            str(closed),
            "--smtp-security",
            "starttls",
            "--password-env",
            "MAILBOX_PASSWORD",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(runner.invoke(app, ["doctor", "x@sender.example", "--json"]).output)
    assert [s["step"] for s in report["steps"]][:3] == ["dns", "connect", "imap"]
    assert not report["steps"][1]["ok"]


def test_mailbox_add_refuses_bad_configurations(world: ThreadedSandbox) -> None:
    result = runner.invoke(
        app,
        [
            "mailbox",
            "add",
            "a@b.example",
            "--smtp-port",
            "465",
            "--smtp-security",
            "tls",
            "--password-env",
            "MAILBOX_PASSWORD",
        ],
    )
    assert result.exit_code == 2 and "587" in result.output and "STARTTLS" in result.output
    result = runner.invoke(app, ["mailbox", "add", "a@b.example", "--password-env", "NOPE_VAR"])
    assert result.exit_code == 2 and "NOPE_VAR" in result.output
    result = runner.invoke(
        app, ["mailbox", "add", "a@b.example", "--password-env", "MAILBOX_PASSWORD"]
    )
    assert result.exit_code == 0 and "5.7.30" in " ".join(result.output.split())
    again = runner.invoke(
        app, ["mailbox", "add", "a@b.example", "--password-env", "MAILBOX_PASSWORD"]
    )
    assert again.exit_code == 2 and "already" in again.output
    listing = runner.invoke(app, ["mailbox", "list", "--json"])
    assert "pw-123" not in listing.output and "a@b.example" in listing.output
    missing = runner.invoke(app, ["doctor", "nobody@b.example"])
    assert missing.exit_code == 2 and "mailbox add" in missing.output


def test_app_only_login_failure_explains_the_service_principal(
    world: ThreadedSandbox,
) -> None:
    # The mailbox lives in a tenant where the app was never registered: 535 5.7.3.
    world.sandbox.add_tenant("other-tenant.onmicrosoft.com")
    world.sandbox.add_mailbox("nogrant@sender.example", "other-tenant.onmicrosoft.com")
    add(world.sandbox, "nogrant@sender.example")
    report = json.loads(runner.invoke(app, ["doctor", "nogrant@sender.example", "--json"]).output)
    auth = next(s for s in report["steps"] if s["step"] == "auth")
    assert not auth["ok"] and auth["reply"].startswith("535 5.7.3")
    assert "New-ServicePrincipal" in auth["remedy"]
    assert "Add-MailboxPermission -Identity nogrant@sender.example" in auth["remedy"]
