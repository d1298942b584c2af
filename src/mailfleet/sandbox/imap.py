"""IMAP that behaves like ``outlook.office365.com:993``, built on pymap, serving the MailStore.

Implicit TLS (TLS 1.2 or newer) from the first byte, Exchange's capabilities
(``AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID CHILDREN IDLE LITERAL+``, no
CONDSTORE), XOAUTH2 checked by the sandbox :class:`TokenService` for the ``IMAP``
protocol, and Exchange's one-line refusals: ``NO AUTHENTICATE failed.`` and
``NO LOGIN failed.`` whatever went wrong (bad or expired token, wrong audience,
missing permission, IMAP disabled for the mailbox), exactly as Microsoft hides
the reason. LIST marks ``Junk`` with ``\\Junk`` and ``Sent Items`` with ``\\Sent``.

pymap supplies the protocol (parsing, SELECT, SEARCH, FETCH, STORE, MOVE,
EXPUNGE, IDLE); this module supplies what pymap leaves to its host: the
listener and TLS, the login checker, Exchange's greeting and capability line,
and the SASL initial response (RFC 4959), which pymap 0.36 does not parse. The
messages themselves come from :mod:`mailfleet.sandbox.imap_backend`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import logging
import re
import ssl
from argparse import Namespace
from collections.abc import Sequence
from contextlib import AsyncExitStack, closing
from typing import Literal

from proxyprotocol.sock import SocketInfo
from pymap.concurrent import Subsystem
from pymap.config import BackendCapability, IMAPConfig
from pymap.context import connection_exit, current_command
from pymap.exceptions import AuthorizationFailure, InvalidAuth
from pymap.imap import IMAPConnection
from pymap.imap.state import ConnectionState
from pymap.interfaces.login import IdentityInterface, LoginInterface
from pymap.parsing import EndLine, Params, Space
from pymap.parsing.command.nonauth import AuthenticateCommand, LoginCommand
from pymap.parsing.commands import Commands
from pymap.parsing.exceptions import NotParseable
from pymap.parsing.primitives import Atom
from pymap.parsing.response import (
    CommandResponse,
    ResponseContinuation,
    ResponseNo,
    ResponseOk,
)
from pymap.parsing.response.code import Capability
from pymap.token import AllTokens
from pysasl import SASLAuth
from pysasl.creds.plain import PlainCredentials
from pysasl.creds.server import ServerCredentials
from pysasl.exception import AuthenticationError
from pysasl.hashing import BuiltinHash
from pysasl.identity import ClearIdentity, Identity
from pysasl.mechanism import ChallengeResponse, ServerChallenge, ServerMechanism
from pysasl.mechanism.plain import PlainMechanism

from mailfleet.clock import Clock
from mailfleet.sandbox.directory import Directory, normalize_address
from mailfleet.sandbox.imap_backend import StoreFolders, StoreIdentity
from mailfleet.sandbox.mailstore import MailStore
from mailfleet.sandbox.tokens import TokenService

log = logging.getLogger(__name__)


class _RedactCredentials(logging.Filter):
    """Keeps pymap's DEBUG wire log (every line received) free of passwords and tokens."""

    _COMMAND = re.compile(r"^(\S+ (?:AUTHENTICATE \S+|LOGIN \S+)) \S.*$", re.IGNORECASE)
    _SASL = re.compile(r"^[A-Za-z0-9+/=]{16,}$")  # a SASL response sent on its own line

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.args, tuple) or len(record.args) != 2:
            return True
        line = str(record.args[1]).rstrip("\r\n")
        redacted = self._COMMAND.sub(r"\1 [redacted]", line)
        if self._SASL.match(redacted):
            redacted = "[redacted]"
        if redacted != line:
            record.args = (record.args[0], redacted)
        return True


_WIRE_LOG = logging.getLogger("pymap.imap")
if not any(isinstance(f, _RedactCredentials) for f in _WIRE_LOG.filters):
    _WIRE_LOG.addFilter(_RedactCredentials())

GREETING = b"The Microsoft Exchange IMAP4 service is ready."
"""Exchange's greeting text; the real one appends a bracketed base64 server id."""

CAPABILITIES: tuple[bytes, ...] = (
    b"SASL-IR",
    b"UIDPLUS",
    b"MOVE",
    b"ID",
    b"CHILDREN",
    b"IDLE",
    b"LITERAL+",
)
"""What Exchange Online lists after ``IMAP4rev1`` and the ``AUTH=`` entries.

Its UNSELECT and NAMESPACE are left out because pymap does not implement them;
CONDSTORE is absent at Microsoft too, so clients sync by UID and UIDVALIDITY.
"""

MAX_LINE = 65_536
"""Longest command line read; real XOAUTH2 initial responses run to several kilobytes."""

ImapSecurity = Literal["tls", "starttls"]


class _BearerCredentials(ServerCredentials):
    """What an XOAUTH2 response carries: the mailbox and its bearer token."""

    __slots__ = ("_token", "_user")

    def __init__(self, user: str, token: str) -> None:
        self._user = user
        self._token = token

    @property
    def authcid(self) -> str:
        return self._user

    @property
    def authzid(self) -> str:
        return self._user

    @property
    def token(self) -> str:
        return self._token

    def verify(self, identity: Identity | None) -> bool:
        return False  # only the TokenService can tell; see SandboxLogin

    def __repr__(self) -> str:
        return f"_BearerCredentials({self._user!r}, <hidden>)"


class _XOAuth2(ServerMechanism):
    """XOAUTH2 whose malformed responses fail like bad tokens (NO), not as syntax (BAD).

    pysasl's own mechanism answers those with a BAD; Exchange says ``NO AUTHENTICATE
    failed.`` for anything it cannot use.
    """

    def __init__(self) -> None:
        super().__init__(b"XOAUTH2")

    def server_attempt(
        self, responses: Sequence[ChallengeResponse]
    ) -> tuple[_BearerCredentials, None]:
        if not responses:
            raise ServerChallenge(b"")
        fields = dict(
            part.split("=", 1)
            for part in responses[0].response.decode("utf-8", "replace").split("\x01")
            if "=" in part
        )
        user = fields.get("user", "")
        scheme, _, token = fields.get("auth", "").partition(" ")
        if scheme.lower() != "bearer":
            token = ""
        return _BearerCredentials(user, token), None


class _AuthenticateCommand(AuthenticateCommand):
    """AUTHENTICATE with an optional SASL initial response (RFC 4959, ``SASL-IR``)."""

    def __init__(self, tag: bytes, mech_name: bytes, initial: bytes | None = None) -> None:
        super().__init__(tag, mech_name)
        self.initial = initial

    @classmethod
    def parse(cls, buf: memoryview, params: Params) -> tuple[_AuthenticateCommand, memoryview]:
        _, buf = Space.parse(buf, params)
        mechanism, buf = Atom.parse(buf, params)
        initial: bytes | None = None
        try:
            _, rest = Space.parse(buf, params)
            argument, rest = Atom.parse(rest, params)
        except NotParseable:
            pass
        else:
            initial, buf = argument.value, rest
        _, buf = EndLine.parse(buf, params)
        return cls(params.tag, mechanism.value.upper(), initial), buf


class _AuthFailed(InvalidAuth):
    """Exchange's refusal: ``NO AUTHENTICATE failed.`` (or ``LOGIN``), no reason given."""

    def __init__(self, verb: bytes) -> None:
        super().__init__(f"{verb.decode()} failed.")

    def get_response(self, tag: bytes) -> ResponseNo:
        return ResponseNo(tag, self._raw)


class SandboxImapConfig(IMAPConfig):
    """pymap settings for the sandbox: loopback, no password hashing, no threads."""

    def __init__(self, tls_context: ssl.SSLContext, security: ImapSecurity) -> None:
        super().__init__(
            Namespace(passlib_cfg=None, proxy_protocol=None),
            host="127.0.0.1",
            port=0,
            ssl_context=tls_context,
            tls_enabled=security == "starttls",
            hash_context=BuiltinHash(),
            cpu_subsystem=Subsystem.for_asyncio(),
            subsystem=Subsystem.for_asyncio(),
            reject_dnsbl=False,
            invalid_user_sleep=0.0,
        )

    @property
    def backend_capability(self) -> BackendCapability:
        return BackendCapability(idle=True, object_id=False, multi_append=False)

    @property
    def commands(self) -> Commands:
        commands = Commands()
        commands.register(_AuthenticateCommand)
        return commands

    @property
    def tls_auth(self) -> SASLAuth:
        return SASLAuth([PlainMechanism(), _XOAuth2()])

    @property
    def greeting(self) -> bytes:
        return GREETING

    @property
    def initial_capability(self) -> Sequence[bytes]:
        return [b"STARTTLS", *CAPABILITIES] if self._tls_enabled else list(CAPABILITIES)

    @property
    def login_capability(self) -> Sequence[bytes]:
        return []  # Exchange lists the same capabilities before and after login


class SandboxLogin(LoginInterface):
    """Accepts XOAUTH2 tokens the TokenService grants IMAP, and passwords of password mailboxes."""

    def __init__(self, server: ImapServer, config: IMAPConfig) -> None:
        self._server = server
        self._config = config
        self._tokens = AllTokens(config)

    @property
    def tokens(self) -> AllTokens:
        return self._tokens

    async def authenticate(self, credentials: ServerCredentials) -> IdentityInterface:
        command = current_command.get(None)
        verb = b"LOGIN" if isinstance(command, LoginCommand) else b"AUTHENTICATE"
        address = self._server.accepts(credentials)
        if address is None:
            raise _AuthFailed(verb)
        return StoreIdentity(address, self._config, self._server.folders)

    async def authorize(self, authenticated: IdentityInterface, authzid: str) -> IdentityInterface:
        if authzid and normalize_address(authzid) != authenticated.name:
            raise AuthorizationFailure()
        return authenticated


class _State(ConnectionState):
    """pymap's connection state with Exchange's greeting, capability line and replies."""

    def __init__(self, login: LoginInterface, config: IMAPConfig, implicit_tls: bool) -> None:
        super().__init__(login, config)
        self._implicit_tls = implicit_tls

    @property
    def capability(self) -> Capability:
        mechanisms = [b"AUTH=" + m.name for m in self.auth.server_mechanisms]
        if not mechanisms:
            mechanisms = [b"LOGINDISABLED"]  # before STARTTLS nothing may authenticate
        starttls = [c for c in self._capability if c == b"STARTTLS"]
        rest = [c for c in self._capability if c != b"STARTTLS"]
        return Capability([*starttls, *mechanisms, *rest])

    async def do_greeting(self) -> CommandResponse:
        if self._implicit_tls:
            self.auth = self.config.tls_auth
        return ResponseOk(b"*", self.config.greeting)

    async def do_authenticate(
        self, cmd: AuthenticateCommand | LoginCommand, creds: ServerCredentials | None
    ) -> CommandResponse:
        response = await super().do_authenticate(cmd, creds)
        if isinstance(response, ResponseOk):
            return ResponseOk(cmd.tag, cmd.command + b" completed.")
        return response


class _Connection(IMAPConnection):
    """pymap's connection loop, taught the SASL initial response."""

    async def authenticate(
        self, state: ConnectionState, mech_name: bytes
    ) -> ServerCredentials | None:
        mechanism = state.auth.get_server(mech_name)
        if mechanism is None:
            return None
        responses: list[ChallengeResponse] = []
        command = current_command.get(None)
        initial = command.initial if isinstance(command, _AuthenticateCommand) else None
        if initial is not None:
            responses.append(ChallengeResponse(b"", _decode_sasl(initial, empty_marker=True)))
        while True:
            try:
                credentials, final = mechanism.server_attempt(responses)
            except ServerChallenge as challenge:
                await self.write_response(_continuation(challenge.data))
                answer = bytes(await self.read_continuation(0)).rstrip(b"\r\n")
                if answer == b"*":
                    raise AuthenticationError("AUTHENTICATE aborted.") from None
                responses.append(ChallengeResponse(challenge.data, _decode_sasl(answer)))
            else:
                if final is not None:
                    await self.write_response(_continuation(final))
                    await self.read_continuation(0)
                return credentials


def _continuation(data: bytes) -> ResponseContinuation:
    return ResponseContinuation(base64.b64encode(data))


def _decode_sasl(data: bytes, *, empty_marker: bool = False) -> bytes:
    if empty_marker and data == b"=":
        return b""  # RFC 4959: "=" is an empty initial response
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise AuthenticationError("Invalid base64 in SASL response.") from exc


class ImapServer:
    """The sandbox's IMAP service on 127.0.0.1, over the same MailStore SMTP fills.

    ``security="tls"`` (the default) is implicit TLS like port 993; ``"starttls"``
    starts in plaintext and offers STARTTLS, for testing clients of other hosts.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        directory: Directory,
        tokens: TokenService,
        store: MailStore,
        tls_context: ssl.SSLContext,
        security: ImapSecurity = "tls",
    ) -> None:
        self.clock = clock
        self.directory = directory
        self.tokens = tokens
        self.store = store
        self.tls_context = tls_context
        self.security: ImapSecurity = security
        self.host = "127.0.0.1"
        self.port = 0
        self.imap_disabled: set[str] = set()
        """Addresses whose IMAP is off (``Set-CASMailbox -ImapEnabled $false``)."""
        self.tls_failures: collections.deque[str] = collections.deque(maxlen=100)
        """Why recent TLS handshakes failed (OpenSSL's words), newest last."""
        self.folders = StoreFolders(store, clock)
        self._config = SandboxImapConfig(tls_context, security)
        self._login = SandboxLogin(self, self._config)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    # -- policy ---------------------------------------------------------------------------

    def set_imap_enabled(self, address: str, enabled: bool) -> None:
        """Turn IMAP on or off for one mailbox; a disabled one fails login like a bad token."""
        if enabled:
            self.imap_disabled.discard(normalize_address(address))
        else:
            self.imap_disabled.add(normalize_address(address))

    def accepts(self, credentials: ServerCredentials) -> str | None:
        """The mailbox address these credentials log in as, or None when refused."""
        if isinstance(credentials, _BearerCredentials):
            address = normalize_address(credentials.authcid)
            check = self.tokens.check(credentials.token, address, "IMAP")
            if not check.valid:
                log.info("sandbox IMAP: XOAUTH2 for %s refused (%s)", address, check.status)
                return None
        elif isinstance(credentials, PlainCredentials):
            address = normalize_address(credentials.authcid)
            mailbox = self.directory.mailbox(address)
            if (
                mailbox is None
                or mailbox.password is None
                or not credentials.verify(ClearIdentity(credentials.authcid, mailbox.password))
            ):
                log.info("sandbox IMAP: password login for %s refused", address)
                return None
        else:
            return None
        if self.directory.mailbox(address) is None or address in self.imap_disabled:
            log.info("sandbox IMAP: %s has no IMAP access", address)
            return None
        self.store.ensure_mailbox(address)
        return address

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on ``port`` (set beforehand; 0: a free loopback port) of the running loop."""
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=MAX_LINE, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and end every session (they get ``* BYE``); idempotent."""
        if self._server is None:
            return
        self._server.close()
        connections = list(self._connections)
        for task in connections:
            task.cancel()
        if connections:
            await asyncio.gather(*connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            if self.security == "tls":
                try:
                    await writer.start_tls(self.tls_context)
                except (ssl.SSLError, OSError) as exc:
                    # A refused handshake (TLS 1.0/1.1, untrusted CA) is the client's problem.
                    log.info("sandbox IMAP: TLS handshake failed: %r", exc)
                    self.tls_failures.append(str(exc))
                    return
            connection = _Connection(
                self._config.commands,
                self._config,
                reader,
                writer,
                SocketInfo.get(writer, None),
            )
            state = _State(self._login, self._config, implicit_tls=self.security == "tls")
            async with AsyncExitStack() as stack:
                connection_exit.set(stack)
                stack.enter_context(closing(connection))
                await connection.run(state)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("sandbox IMAP: session ended with an error")
        finally:
            writer.close()
            self._connections.discard(task)
