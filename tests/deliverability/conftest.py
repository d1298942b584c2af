"""The fixture zones served by the sandbox's authoritative DNS server on 127.0.0.1."""

from collections.abc import Iterator

import pytest

from deliverability.zones import fixture_zones
from mailfleet.sandbox.dns import SandboxDnsServer
from mailfleet.transport.dns import DnsResolver


@pytest.fixture(scope="module")
def dns_server() -> Iterator[SandboxDnsServer]:
    with SandboxDnsServer(fixture_zones()) as server:
        yield server


@pytest.fixture
def resolver(dns_server: SandboxDnsServer) -> DnsResolver:
    # Generous: a loaded CI machine must not turn a good answer into a timeout.
    return DnsResolver(dns_server.address, timeout=3.0)
