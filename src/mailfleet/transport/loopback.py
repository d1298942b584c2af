"""A one-shot HTTP listener on 127.0.0.1 that catches an OAuth redirect (RFC 8252 §7.3).

The browser is sent to the identity provider with ``redirect_uri`` set to
``http://127.0.0.1:<port>/``; the provider sends it back with ``code`` and
``state`` (or ``error``) in a posted form (``response_mode=form_post``) or the
query, which :meth:`LoopbackRedirect.wait` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

_PAGE = (
    "<!doctype html><meta charset=utf-8><title>mailfleet</title>"
    "<p>{text}</p><p>You can close this window.</p>"
)


class RedirectError(Exception):
    """No usable redirect arrived: time ran out, or the provider sent an error."""


class LoopbackRedirect:
    """Listens on 127.0.0.1 until one request with a query string arrives."""

    def __init__(self, *, port: int = 0, path: str = "/") -> None:
        self._port = port
        self._path = path
        self._server: asyncio.Server | None = None
        self._result: asyncio.Future[dict[str, str]] | None = None

    @property
    def uri(self) -> str:
        """The ``redirect_uri`` to register and send."""
        return f"http://127.0.0.1:{self._port}{self._path}"

    async def __aenter__(self) -> LoopbackRedirect:
        self._result = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self._port)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def wait(self, wait_seconds: float) -> dict[str, str]:
        """The redirect's query parameters; :class:`RedirectError` on error or timeout."""
        assert self._result is not None, "use LoopbackRedirect as an async context manager"
        try:
            params = await asyncio.wait_for(asyncio.shield(self._result), wait_seconds)
        except TimeoutError:
            raise RedirectError(
                f"no sign-in redirect arrived within {wait_seconds:.0f} s"
            ) from None
        if "error" in params:
            detail = params.get("error_description") or params["error"]
            raise RedirectError(f"the sign-in was refused: {detail}")
        return params

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 10)
            length = 0
            while True:
                line = await asyncio.wait_for(reader.readline(), 10)
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length" and value.strip().isdigit():
                    length = min(int(value.strip()), 65536)
            parts = request_line.decode("latin-1").split()
            target = urlsplit(parts[1]) if len(parts) >= 2 else urlsplit("/")
            params = dict(parse_qsl(target.query))
            if parts and parts[0] == "POST" and length:
                # response_mode=form_post: the answer is a form in the body (RFC 9700 §4.3.1).
                body = await asyncio.wait_for(reader.readexactly(length), 10)
                params.update(parse_qsl(body.decode("utf-8")))
            done = bool(params) and self._result is not None and not self._result.done()
            if done:
                assert self._result is not None
                self._result.set_result(params)
            text = "Signed in: mailfleet has the answer." if done else "Waiting for sign-in."
            body = _PAGE.format(text=text).encode()
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, OSError, UnicodeDecodeError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
