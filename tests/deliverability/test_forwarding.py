"""Forwarding checks against a local HTTP server: redirects, loops, wrong targets, timeouts."""

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mailfleet.deliverability import Severity, evaluate_forwarding
from mailfleet.sandbox.dns import SandboxDnsServer, ZoneRecord, Zones
from mailfleet.transport.dns import DnsResolver
from mailfleet.transport.forwarding import ResolvingTransport, TraceEnd, follow_redirects

ROUTES: dict[str, tuple[int, str | None]] = {
    "/good": (301, "/hop"),
    "/hop": (302, "MAIN/welcome"),
    "/permanent": (301, "MAIN/"),
    "/loop-a": (301, "/loop-b"),
    "/loop-b": (302, "/loop-a"),
    "/elsewhere": (301, "/landing"),
    "/landing": (200, None),
    "/plain": (200, None),
    "/bad-location": (301, "http://[::1"),
}


class _Handler(BaseHTTPRequestHandler):
    main = ""

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(1.5)
        if self.path.startswith("/chain/"):
            n = int(self.path.rsplit("/", 1)[1])
            status, location = 301, f"/chain/{n + 1}"
        else:
            status, location = ROUTES.get(self.path, (404, None))
        self.send_response(status)
        if location:
            self.send_header("Location", location.replace("MAIN", self.main))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    # The "main site" is the same server under /main, so every hop stays on loopback.
    _Handler.main = f"{base}/main"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    server.server_close()


async def test_a_redirect_chain_to_the_main_site_is_ok(site: str) -> None:
    main = f"{site}/main"
    trace = await follow_redirects(f"{site}/good", stop_at=main)
    assert trace.end is TraceEnd.ANSWERED
    assert [h.status for h in trace.hops] == [301, 302]
    finding = evaluate_forwarding("brand-mail.com", main, trace)
    assert finding.ok
    assert "temporary redirect" in finding.found  # a 302 in the chain is noted, not failed
    permanent = evaluate_forwarding(
        "brand-mail.com", main, await follow_redirects(f"{site}/permanent", stop_at=main)
    )
    assert permanent.ok and permanent.fix == ""


async def test_a_redirect_loop_is_a_finding(site: str) -> None:
    trace = await follow_redirects(f"{site}/loop-a", stop_at=f"{site}/main")
    assert trace.end is TraceEnd.LOOP
    finding = evaluate_forwarding("brand-mail.com", f"{site}/main", trace)
    assert not finding.ok and finding.severity is Severity.WARNING
    assert "redirect loop" in finding.found
    assert finding.fix.startswith("redirect http://brand-mail.com/ and https://brand-mail.com/")


async def test_a_redirect_to_the_wrong_site_is_a_finding(site: str) -> None:
    trace = await follow_redirects(f"{site}/elsewhere", stop_at=f"{site}/main")
    finding = evaluate_forwarding("brand-mail.com", f"{site}/main", trace)
    assert not finding.ok
    assert f"ends at {site}/landing, not {site}/main" in finding.found


async def test_no_redirect_is_a_finding(site: str) -> None:
    trace = await follow_redirects(f"{site}/plain", stop_at=f"{site}/main")
    finding = evaluate_forwarding("brand-mail.com", f"{site}/main", trace)
    assert not finding.ok
    assert "answers itself, no redirect" in finding.found


async def test_too_many_hops_is_a_finding(site: str) -> None:
    trace = await follow_redirects(f"{site}/chain/0", max_hops=3, stop_at=f"{site}/main")
    assert trace.end is TraceEnd.TOO_MANY
    assert len(trace.hops) == 3
    assert "more than 3 redirects" in evaluate_forwarding("b.com", f"{site}/main", trace).found


async def test_a_timeout_is_a_finding(site: str) -> None:
    started = time.monotonic()
    trace = await follow_redirects(f"{site}/slow", timeout=0.3)
    assert time.monotonic() - started < 1.4
    assert trace.end is TraceEnd.TIMEOUT
    assert "no answer" in evaluate_forwarding("b.com", f"{site}/main", trace).found


async def test_refused_connections_and_bad_locations_are_findings(site: str) -> None:
    refused = await follow_redirects("http://127.0.0.1:9/", timeout=1)
    assert refused.end is TraceEnd.ERROR
    assert "failed" in evaluate_forwarding("b.com", f"{site}/main", refused).found
    bad = await follow_redirects(f"{site}/bad-location", stop_at=f"{site}/main")
    assert bad.end is TraceEnd.ERROR
    assert "location" in bad.detail.lower()


async def test_hosts_are_found_through_the_given_nameserver(site: str) -> None:
    port = int(site.rsplit(":", 1)[1])
    zones = Zones([ZoneRecord("brand-mail.com", "A", "127.0.0.1")])
    with SandboxDnsServer(zones) as server:
        transport = ResolvingTransport(DnsResolver(server.address, timeout=1))
        trace = await follow_redirects(
            f"http://brand-mail.com:{port}/good", stop_at=f"{site}/main", transport=transport
        )
        assert trace.hops[0].url == f"http://brand-mail.com:{port}/good"
        assert evaluate_forwarding("brand-mail.com", f"{site}/main", trace).ok
        missing = await follow_redirects(
            f"http://absent.com:{port}/", transport=ResolvingTransport(DnsResolver(server.address))
        )
        assert missing.end is TraceEnd.ERROR
        assert "absent.com does not exist (NXDOMAIN)" in missing.detail
