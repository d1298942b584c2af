"""A small authoritative DNS server on loopback, serving zones given as data (dnslib).

The sandbox world publishes its sending domains here, and the tests point the
deliverability checks at it: A, MX, TXT, CNAME and NS records, NXDOMAIN for
names it does not know, and per-name faults (SERVFAIL, or no answer at all so
the client times out). UDP and TCP listen on the same free port of 127.0.0.1.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dnslib import CNAME, MX, NS, QTYPE, RCODE, RR, TXT, A, DNSError
from dnslib.server import DNSLogger, DNSServer

from mailfleet.providers import get_preset

RECORD_TYPES = ("A", "MX", "TXT", "CNAME", "NS")


@dataclass(frozen=True, slots=True)
class ZoneRecord:
    """One record: ``MX`` values are ``"PRIORITY HOST"``, ``TXT`` values the whole text."""

    name: str
    rtype: str
    value: str
    ttl: int = 300

    def __post_init__(self) -> None:
        if self.rtype not in RECORD_TYPES:
            raise ValueError(f"record {self.name}: type {self.rtype!r} not one of {RECORD_TYPES}")


@dataclass
class Zones:
    """Records served, and names that fail (``servfail``) or never answer (``timeout``)."""

    records: list[ZoneRecord] = field(default_factory=list)
    servfail: set[str] = field(default_factory=set)
    timeout: set[str] = field(default_factory=set)

    def add(self, records: Iterable[ZoneRecord]) -> None:
        """Serve these records too."""
        self.records.extend(records)


class _NoAnswer(DNSError):  # type: ignore[misc]
    """Raised to make the handler drop a query: the client sees a timeout."""


def _norm(name: str) -> str:
    return name.lower().rstrip(".")


def _rdata(record: ZoneRecord) -> Any:
    if record.rtype == "A":
        return A(record.value)
    if record.rtype == "MX":
        priority, _, host = record.value.partition(" ")
        return MX(host.strip(), int(priority))
    if record.rtype == "CNAME":
        return CNAME(record.value)
    if record.rtype == "NS":
        return NS(record.value)
    raw = record.value.encode("utf-8")
    # A TXT character-string holds at most 255 bytes; longer text is split as DNS does.
    return TXT([raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""])


class _ZoneResolver:
    def __init__(self, zones: Zones) -> None:
        self.zones = zones

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        qname = _norm(str(request.q.qname))
        qtype = QTYPE[request.q.qtype]
        zones = self.zones
        if qname in {_norm(n) for n in zones.timeout}:
            raise _NoAnswer(f"timeout injected for {qname}")
        if qname in {_norm(n) for n in zones.servfail}:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        name, seen = qname, set()
        while True:
            matching = [r for r in zones.records if _norm(r.name) == name]
            cname = [r for r in matching if r.rtype == "CNAME"]
            if cname and qtype != "CNAME" and name not in seen:
                seen.add(name)
                reply.add_answer(RR(name, QTYPE.CNAME, rdata=_rdata(cname[0]), ttl=cname[0].ttl))
                name = _norm(cname[0].value)
                if name in {_norm(n) for n in zones.servfail}:
                    reply.header.rcode = RCODE.SERVFAIL
                    return reply
                continue
            for r in matching:
                if r.rtype == qtype or qtype == "ANY":
                    reply.add_answer(RR(name, getattr(QTYPE, r.rtype), rdata=_rdata(r), ttl=r.ttl))
            exists = matching or any(_norm(r.name).endswith("." + name) for r in zones.records)
            if not exists and not reply.rr:
                reply.header.rcode = RCODE.NXDOMAIN
            return reply


class _QuietLogger(DNSLogger):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(log="-recv,-send,-request,-reply,-truncated,-error,-data", prefix=False)


class SandboxDnsServer:
    """Serves :class:`Zones` on 127.0.0.1, UDP and TCP, in background threads."""

    def __init__(self, zones: Zones | None = None, host: str = "127.0.0.1") -> None:
        self.zones = zones if zones is not None else Zones()
        self.host = host
        self.port = 0
        self._servers: list[DNSServer] = []

    @property
    def address(self) -> str:
        """``HOST:PORT``, as ``mailfleet dns check --nameserver`` takes it."""
        return f"{self.host}:{self.port}"

    def start(self) -> SandboxDnsServer:
        """Bind a free port (the same for UDP and TCP) and start answering."""
        resolver = _ZoneResolver(self.zones)
        for _ in range(20):
            udp = DNSServer(resolver, address=self.host, port=self.port, logger=_QuietLogger())
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(
                    resolver, address=self.host, port=port, tcp=True, logger=_QuietLogger()
                )
            except OSError:
                udp.server.server_close()
                continue
            self.port = port
            self._servers = [udp, tcp]
            for server in self._servers:
                # A short poll interval so stop() returns at once (dnslib's default is 0.5 s).
                thread = threading.Thread(
                    target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
                )
                thread.start()
            return self
        raise OSError(f"no free port on {self.host} for both UDP and TCP")

    def stop(self) -> None:
        """Stop answering and close the sockets."""
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers = []

    def __enter__(self) -> SandboxDnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


PROVIDER_INFRASTRUCTURE: dict[str, tuple[ZoneRecord, ...]] = {
    "microsoft365": (
        ZoneRecord(
            "spf.protection.outlook.com",
            "TXT",
            "v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 ip4:52.100.0.0/15 ip4:104.47.0.0/17 "
            "ip6:2a01:111:f400::/48 ip6:2a01:111:f403::/49 -all",
        ),
    ),
    "google": (
        ZoneRecord("_spf.google.com", "TXT", "v=spf1 ip4:74.125.0.0/16 ip4:209.85.128.0/17 ~all"),
        ZoneRecord("smtp.google.com", "A", "142.250.27.26"),
    ),
}

FAKE_DKIM_KEY = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAvSandboxKeyNotARealKeyAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIDAQAB"
)


def sandbox_domain_zone(
    domain: str,
    provider: str,
    *,
    tenant: str | None = None,
    omit: Iterable[str] = (),
    broken: Iterable[str] = (),
    web_address: str = "127.0.0.1",
) -> list[ZoneRecord]:
    """The records a sending domain publishes for ``provider``, with knobs.

    ``omit`` and ``broken`` name parts among ``mx``, ``spf``, ``dkim`` and ``dmarc``:
    an omitted part is not published, a broken one is published wrong (SPF with a
    syntax error, DKIM pointing nowhere, DMARC without a policy, MX to a name that
    does not exist). The provider's own records (its SPF include, DKIM targets)
    are included so an SPF include resolves inside the sandbox.
    """
    preset = get_preset(provider)
    omitted, broke = set(omit), set(broken)
    unknown = (omitted | broke) - {"mx", "spf", "dkim", "dmarc"}
    if unknown:
        raise ValueError(f"unknown zone parts {sorted(unknown)}; use mx, spf, dkim, dmarc")
    dashed = domain.replace(".", "-")
    tenant_name = tenant or dashed
    records = [ZoneRecord(domain, "A", web_address), *PROVIDER_INFRASTRUCTURE.get(provider, ())]
    if "mx" not in omitted:
        host = (preset.mx_host or f"mx.{domain}").format(domain_dashed=dashed)
        if "mx" in broke:
            host = f"missing-host.{domain}"
        else:
            records.append(ZoneRecord(host, "A", "127.0.0.1"))
        records.append(ZoneRecord(domain, "MX", f"10 {host}"))
    if "spf" not in omitted:
        include = preset.spf_include
        spf = f"v=spf1 include:{include} -all" if include else "v=spf1 mx -all"
        if "spf" in broke:
            spf = f"v=spf1 include:{include or domain} ipv4:300.1.1.1 -all"
        records.append(ZoneRecord(domain, "TXT", spf))
    if "dkim" not in omitted:
        for selector in preset.dkim_selectors or ("default",):
            name = f"{selector}._domainkey.{domain}"
            key = f"v=DKIM1; k=rsa; p={FAKE_DKIM_KEY}"
            if preset.dkim_publish == "cname":
                target = f"{selector}-{dashed}._domainkey.{tenant_name}.onmicrosoft.com"
                records.append(ZoneRecord(name, "CNAME", target))
                if "dkim" not in broke:
                    records.append(ZoneRecord(target, "TXT", key))
            else:
                records.append(
                    ZoneRecord(name, "TXT", "v=DKIM1; k=rsa; p=" if "dkim" in broke else key)
                )
    if "dmarc" not in omitted:
        dmarc = f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}; adkim=r; aspf=r"
        if "dmarc" in broke:
            dmarc = f"v=DMARC1; rua=mailto:dmarc@{domain}"
        records.append(ZoneRecord(f"_dmarc.{domain}", "TXT", dmarc))
    return records
