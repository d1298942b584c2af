"""A real Dovecot (IMAP and POP3 over TLS) on loopback, for the inbox tests.

Dovecot runs from its own configuration file in a temporary folder (``dovecot -F
-c FILE``), on free ports of 127.0.0.1, with Maildirs under the same folder. Mail
processes run as ``nobody`` (as the current user when the tests are not root).
Logins are XOAUTH2 through an ``oauth2`` passdb that introspects tokens at the
sandbox token service's ``/introspect`` (a delegated token names its user), or a
password from a passwd-file. ``auth_failure_delay = 0`` and an anvil whose
auth-penalty socket cannot be opened keep failed logins from taking seconds.

Tests deliver by writing files into ``Maildir/new`` as an MDA would, and change a
folder's UIDVALIDITY by rewriting its ``dovecot-uidlist`` and dropping its index.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mailfleet.clock import SystemClock
from mailfleet.sandbox import Directory, TokenServer, TokenService, create_tls_material

TENANT = "dovecot.onmicrosoft.com"
IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"
POP_SCOPE = "https://outlook.office.com/POP.AccessAsUser.All"
PASSWORD = "correct horse battery staple"


def dovecot_binary() -> str | None:
    """The dovecot executable, if installed."""
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(p, os.X_OK)),
        None,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _owner() -> tuple[str, int, int]:
    """The user mail processes run as: nobody when we are root, else ourselves."""
    entry = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    return entry.pw_name, entry.pw_uid, entry.pw_gid


class _TokenThread:
    """The sandbox token service on its own event loop in a thread (it outlives test loops)."""

    def __init__(self, tokens: TokenService) -> None:
        self.server = TokenServer(tokens, SystemClock())
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Dovecot:
    """A running Dovecot and what a test needs to reach it."""

    root: Path
    config: Path
    imaps_port: int
    pop3s_port: int
    ca_file: Path
    tokens: TokenService
    directory: Directory
    process: subprocess.Popen[bytes] | None = None

    @property
    def mail_root(self) -> Path:
        return self.root / "mail"

    def new_user(self, *, password: bool = False) -> str:
        """A fresh mailbox address (one per test keeps tests apart on the shared server)."""
        address = f"u{uuid.uuid4().hex[:10]}@dovecot.example"
        self.directory.add_mailbox(address, TENANT)
        if password:
            with (self.root / "passwd").open("a", encoding="utf-8") as handle:
                handle.write(f"{address}:{{PLAIN}}{PASSWORD}\n")
        return address

    def token(self, address: str, *scopes: str) -> str:
        """A delegated token for ``address`` (the introspection names the user)."""
        return self.tokens.issue_delegated(address, scopes or (IMAP_SCOPE,)).value

    def maildir(self, address: str, folder: str = "INBOX") -> Path:
        base = self.mail_root / address / "Maildir"
        return base if folder == "INBOX" else base / f".{folder}"

    def deliver(self, address: str, raw: bytes, folder: str = "INBOX") -> Path:
        """Write ``raw`` into the folder's ``new/`` the way an MDA does (tmp, then rename)."""
        _, uid, gid = _owner()
        target = self.maildir(address, folder)
        made = []
        for path in (self.mail_root / address, self.maildir(address), target):
            for sub in ("", "cur", "new", "tmp"):
                if path == self.mail_root / address and sub:
                    continue
                directory = path / sub if sub else path
                if not directory.exists():
                    directory.mkdir(parents=True)
                    made.append(directory)
        name = f"{time.time_ns()}.{uuid.uuid4().hex[:8]}.mailfleet-test"
        tmp = target / "tmp" / name
        tmp.write_bytes(raw)
        for path in [*made, tmp]:
            os.chown(path, uid, gid)
        final = target / "new" / name
        tmp.rename(final)
        return final

    def files(self, address: str, folder: str = "INBOX") -> list[Path]:
        """The message files of a folder (new and cur)."""
        base = self.maildir(address, folder)
        return sorted(
            p for sub in ("new", "cur") if (base / sub).exists() for p in (base / sub).iterdir()
        )

    def renumber(self, address: str, folder: str = "INBOX") -> None:
        """Give the folder a new UIDVALIDITY: a fresh ``dovecot-uidlist``, its index gone."""
        base = self.maildir(address, folder)
        uidlist = base / "dovecot-uidlist"
        old = uidlist.read_text().split()[1] if uidlist.exists() else "V1"
        validity = int(old[1:]) + 1000
        for index in base.glob("dovecot.index*"):
            index.unlink()
        uidlist.write_text(f"3 V{validity} N1 G{uuid.uuid4().hex}\n")
        _, uid, gid = _owner()
        os.chown(uidlist, uid, gid)

    # -- lifecycle ----------------------------------------------------------------------------

    def write_config(self, introspection_url: str, cert: Path, key: Path) -> None:
        user, _, _ = _owner()
        (self.root / "passwd").touch()
        (self.root / "dovecot-oauth2.conf.ext").write_text(
            "introspection_mode = post\n"
            f"introspection_url = {introspection_url}\n"
            "force_introspection = yes\n"
            "username_attribute = username\n"
            "active_attribute = active\n"
            "active_value = true\n"
        )
        self.config.write_text(
            f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
instance_name = mailfleet-test-{self.imaps_port}
log_path = {self.root}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
default_internal_user = {user}
default_internal_group = {"nogroup" if os.geteuid() == 0 else user}
default_login_user = {user}
first_valid_uid = 0
first_valid_gid = 0
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = xoauth2 oauthbearer plain login
auth_failure_delay = 0
auth_verbose = yes
mail_location = maildir:~/Maildir
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {self.root}/dovecot-oauth2.conf.ext
}}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {self.root}/passwd
}}
userdb {{
  driver = static
  args = uid={user} gid={"nogroup" if os.geteuid() == 0 else user} home={self.mail_root}/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0600
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol imap {{
  mail_max_userip_connections = 200
}}
pop3_uidl_format = %08Xu%08Xv
"""
        )

    def start(self, binary: str) -> None:
        run = self.root / "run"
        shutil.rmtree(run, ignore_errors=True)  # a stale base_dir slows start-up and logins
        run.mkdir()
        self.process = subprocess.Popen(
            [binary, "-F", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        for port in (self.imaps_port, self.pop3s_port):
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"dovecot exited: {self.log()}")
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", port), 0.2),
                ):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dovecot did not listen on {port}: {self.log()}")
                time.sleep(0.05)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stderr is not None:
            process.stderr.close()

    def log(self) -> str:
        path = self.root / "dovecot.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        if self.process is not None and self.process.stderr is not None and self.process.poll():
            text += self.process.stderr.read().decode(errors="replace")
        return text[-4000:]


@contextlib.contextmanager
def running_dovecot(binary: str) -> Iterator[Dovecot]:
    """Start Dovecot and the token service it introspects with; stop both afterwards."""
    root = Path(tempfile.mkdtemp(prefix="mailfleet-dovecot-"))
    root.chmod(0o755)  # mail processes (nobody) must reach the Maildirs
    _, uid, gid = _owner()
    mail = root / "mail"
    mail.mkdir()
    os.chown(mail, uid, gid)
    tls = create_tls_material(root / "tls", ("localhost", "127.0.0.1"))
    for path in (root / "tls", tls.cert_file, tls.key_file):
        path.chmod(0o755 if path.is_dir() else 0o644)
    directory = Directory()
    directory.add_tenant(TENANT)
    tokens = TokenService(SystemClock(), directory)
    token_thread = _TokenThread(tokens)
    token_thread.start()
    server = Dovecot(
        root=root,
        config=root / "dovecot.conf",
        imaps_port=_free_port(),
        pop3s_port=_free_port(),
        ca_file=tls.ca_file,
        tokens=tokens,
        directory=directory,
    )
    try:
        server.write_config(
            f"{token_thread.server.base_url}/introspect", tls.cert_file, tls.key_file
        )
        server.start(binary)
        yield server
    finally:
        server.stop()
        token_thread.stop()
        shutil.rmtree(root, ignore_errors=True)
