"""The token service over HTTP on loopback: Azure AD's token endpoint and RFC 7662 introspection.

``POST /{tenant}/oauth2/v2.0/token`` takes the client-credentials grant form-encoded
and answers as Azure AD does; ``POST /introspect`` answers whether a token is active
(Dovecot's oauth2 passdb reads it).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mailfleet.clock import Clock
from mailfleet.sandbox.tokens import AccessToken, TokenError, TokenService

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def _form(request: Request) -> dict[str, str]:
    # Parsed by hand: Starlette's form parser needs python-multipart, which is not a dependency.
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


def _aad_error(clock: Clock, error: TokenError) -> JSONResponse:
    return JSONResponse(
        {
            "error": error.error,
            "error_description": error.description,
            "error_codes": [error.code],
            "timestamp": clock.now().strftime("%Y-%m-%d %H:%M:%SZ"),
        },
        status_code=error.http_status,
        headers=_NO_STORE,
    )


def _missing(name: str) -> TokenError:
    return TokenError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def build_token_app(service: TokenService, clock: Clock) -> Starlette:
    """The Starlette application serving ``service``."""

    async def token(request: Request) -> JSONResponse:
        tenant = request.path_params["tenant"]
        form = await _form(request)
        try:
            grant_type = form.get("grant_type")
            if not grant_type:
                raise _missing("grant_type")
            if grant_type != "client_credentials":
                raise TokenError(
                    400,
                    "unsupported_grant_type",
                    70003,
                    f"The app requested an unsupported grant type '{grant_type}'.",
                )
            for name in ("client_id", "client_secret", "scope"):
                if not form.get(name):
                    raise _missing(name)
            issued = service.issue(tenant, form["client_id"], form["client_secret"], form["scope"])
        except TokenError as error:
            return _aad_error(clock, error)
        expires_in = issued.expires_in(clock.now())
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": expires_in,
                "ext_expires_in": expires_in,
                "access_token": issued.value,
            },
            headers=_NO_STORE,
        )

    async def introspect(request: Request) -> JSONResponse:
        form = await _form(request)
        value = form.get("token", "")
        authorization = request.headers.get("authorization", "")
        if not value and authorization.lower().startswith("bearer "):
            value = authorization[7:].strip()
        # ``user`` is an extension: an app-only token is valid for many mailboxes, so the
        # caller names the one it is asking about.
        user = form.get("user") or request.query_params.get("user")
        verdict = service.introspect(value, user)
        if not verdict.active or verdict.token is None:
            return JSONResponse({"active": False})
        return JSONResponse(_introspection(verdict.token, verdict.subject))

    return Starlette(
        routes=[
            Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
            Route("/introspect", introspect, methods=["POST", "GET"]),
        ]
    )


def _introspection(token: AccessToken, subject: str | None) -> dict[str, object]:
    body: dict[str, object] = {
        "active": True,
        "client_id": token.client_id,
        "token_type": "Bearer",
        "aud": token.audience,
        "tid": token.tenant,
        "iat": int(token.issued_at.timestamp()),
        "exp": int(token.expires_at.timestamp()),
        "scope": " ".join(sorted(token.scopes or token.roles)),
        "sub": subject or token.client_id,
    }
    if subject is not None:
        body["username"] = subject
        body["email"] = subject
    return body


class _LoopbackServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit_requested = asyncio.Event()

    def request_exit(self) -> None:
        self.should_exit = True
        self._exit_requested.set()

    async def main_loop(self) -> None:
        # uvicorn polls should_exit every 0.1 s; waiting on an event makes stop() prompt.
        # The one tick sets the default response headers; nothing else here needs ticks.
        await self.on_tick(0)
        await self._exit_requested.wait()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The sandbox shares its process and loop with the engine, which owns Ctrl-C;
        # uvicorn must not take SIGINT/SIGTERM over while it runs.
        yield


class TokenServer:
    """Runs the token application with uvicorn on 127.0.0.1 as a task of the running loop."""

    def __init__(self, service: TokenService, clock: Clock) -> None:
        self._app = build_token_app(service, clock)
        self._server: _LoopbackServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.host = "127.0.0.1"
        self.port = 0

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Bind ``port`` (set beforehand; 0: a free loopback port) and serve until :meth:`stop`."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = _LoopbackServer(config)
        self._task = asyncio.create_task(
            self._server.serve(sockets=[sock]), name="sandbox-token-server"
        )
        while not self._server.started:
            if self._task.done():
                sock.close()
                await self._task  # re-raises the start-up failure
                raise RuntimeError("the sandbox token server stopped during start-up")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        """Stop serving and wait for uvicorn to finish."""
        if self._server is None or self._task is None:
            return
        self._server.request_exit()
        await self._task
        self._server = None
        self._task = None
