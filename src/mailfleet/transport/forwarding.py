"""Follow a website's redirects hop by hop (httpx, no auto-follow), recording each one.

Every way the walk can end is data in a :class:`RedirectTrace`: a final answer,
a loop, too many hops, a timeout, a connection or protocol error. The verdict
(does it land on the main site?) is pure policy in
:mod:`mailfleet.deliverability.forwarding`.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

import httpx

from mailfleet.transport.dns import DnsResolver, LookupStatus

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


class TraceEnd(enum.StrEnum):
    """How following the redirects ended."""

    ANSWERED = "answered"  # a response that is not a redirect (or reached ``stop_at``)
    LOOP = "loop"
    TOO_MANY = "too_many"
    TIMEOUT = "timeout"
    ERROR = "error"  # refused connection, TLS, bad Location, ...


@dataclass(frozen=True, slots=True)
class Hop:
    """One request: the URL asked, the status answered, and where it pointed."""

    url: str
    status: int
    location: str | None = None


@dataclass(frozen=True, slots=True)
class RedirectTrace:
    """The whole walk from the first URL."""

    start: str
    hops: tuple[Hop, ...]
    end: TraceEnd
    final_url: str
    detail: str = ""


async def follow_redirects(
    start: str,
    *,
    max_hops: int = 5,
    timeout: float = 5.0,  # noqa: ASYNC109 - httpx's per-request timeout, not a deadline
    stop_at: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> RedirectTrace:
    """GET ``start`` and each ``Location`` in turn, at most ``max_hops`` redirects.

    When a redirect points at a URL starting with ``stop_at`` (the main site), the
    walk ends there without fetching it.
    """
    hops: list[Hop] = []
    seen = {start}
    url = start
    async with httpx.AsyncClient(
        follow_redirects=False, timeout=timeout, transport=transport, verify=True
    ) as client:
        while True:
            try:
                response = await client.get(url)
            except httpx.TimeoutException:
                return RedirectTrace(
                    start, tuple(hops), TraceEnd.TIMEOUT, url, f"after {timeout:g}s"
                )
            except (httpx.HTTPError, ValueError) as exc:
                detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                return RedirectTrace(start, tuple(hops), TraceEnd.ERROR, url, detail)
            location = response.headers.get("location")
            if response.status_code not in REDIRECT_CODES or not location:
                hops.append(Hop(url, response.status_code))
                return RedirectTrace(start, tuple(hops), TraceEnd.ANSWERED, url)
            try:
                target = str(httpx.URL(url).join(location))
            except (httpx.InvalidURL, ValueError) as exc:
                hops.append(Hop(url, response.status_code, location))
                return RedirectTrace(
                    start, tuple(hops), TraceEnd.ERROR, url, f"bad Location: {exc}"
                )
            hops.append(Hop(url, response.status_code, target))
            if stop_at is not None and same_site(target, stop_at):
                return RedirectTrace(start, tuple(hops), TraceEnd.ANSWERED, target)
            if target in seen:
                return RedirectTrace(start, tuple(hops), TraceEnd.LOOP, target)
            if len(hops) >= max_hops:
                return RedirectTrace(start, tuple(hops), TraceEnd.TOO_MANY, target)
            seen.add(target)
            url = target


class ResolvingTransport(httpx.AsyncBaseTransport):
    """An httpx transport that finds hosts through a :class:`DnsResolver` (e.g. the sandbox's).

    The request keeps its ``Host`` header and TLS server name; only the address
    connected to comes from the resolver.
    """

    def __init__(
        self, resolver: DnsResolver, inner: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.resolver = resolver
        self.inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Resolve the request's host, then send it to that address."""
        host = request.url.host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            answer = await self.resolver.lookup(host, "A")
            if answer.status is not LookupStatus.OK or not answer.records:
                raise httpx.ConnectError(answer.describe(), request=request) from None
            request.url = request.url.copy_with(host=answer.records[0])
            request.extensions = {**request.extensions, "sni_hostname": host}
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self.inner.aclose()


def same_site(url: str, main_site: str) -> bool:
    """True when ``url`` is on the main site's host (any scheme, ``www.`` aside) under its path."""
    try:
        a, b = httpx.URL(url), httpx.URL(main_site)
    except (httpx.InvalidURL, ValueError):
        return False
    host_a, host_b = a.host.removeprefix("www."), b.host.removeprefix("www.")
    port_ok = b.port is None or a.port == b.port
    return host_a == host_b and port_ok and a.path.startswith(b.path.rstrip("/") or "/")
