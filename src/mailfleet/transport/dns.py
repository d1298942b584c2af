"""DNS lookups for deliverability checks: dnspython for records, checkdmarc for SPF and DMARC.

Every failure of the DNS itself (NXDOMAIN, no answer, SERVFAIL, a timeout, a
refused or garbled reply) comes back as data in an :class:`Answer`, never as an
exception, so a check can turn it into a finding. The resolver can be pointed at
one ``HOST[:PORT]`` nameserver (the sandbox's, in tests and the demo); without
one it uses the system's resolvers.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
from dataclasses import dataclass, field
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

DEFAULT_TIMEOUT = 3.0


class NameserverError(ValueError):
    """A ``--nameserver`` value that is not ``HOST[:PORT]`` with an IP address host."""


class LookupStatus(enum.StrEnum):
    """How a lookup ended."""

    OK = "ok"
    NXDOMAIN = "nxdomain"  # the name does not exist
    NODATA = "nodata"  # the name exists, no record of this type
    SERVFAIL = "servfail"  # the server failed or refused (every nameserver did)
    TIMEOUT = "timeout"
    ERROR = "error"  # anything else: bad name, garbled reply


@dataclass(frozen=True, slots=True)
class Answer:
    """The result of one lookup: records as text, or why there are none."""

    name: str
    rdtype: str
    status: LookupStatus
    records: tuple[str, ...] = ()
    canonical_name: str | None = None  # where a CNAME chain ended, when it differs
    detail: str = ""

    @property
    def failed(self) -> bool:
        """True when the DNS did not give a definite answer (timeout, SERVFAIL, error)."""
        return self.status in (LookupStatus.SERVFAIL, LookupStatus.TIMEOUT, LookupStatus.ERROR)

    def describe(self) -> str:
        """One line for a finding's ``found`` field."""
        if self.status is LookupStatus.OK:
            return "; ".join(self.records)
        if self.status is LookupStatus.NXDOMAIN:
            return f"{self.name} does not exist (NXDOMAIN)"
        if self.status is LookupStatus.NODATA:
            return f"no {self.rdtype} record at {self.name}"
        return f"{self.rdtype} lookup of {self.name} failed: {self.status}" + (
            f" ({self.detail})" if self.detail else ""
        )


@dataclass(frozen=True, slots=True)
class SpfResult:
    """What checkdmarc made of a domain's SPF record."""

    record: str | None
    valid: bool
    error: str | None
    dns_lookups: int | None
    includes: tuple[str, ...]  # every include: target, nested ones too
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DmarcResult:
    """What checkdmarc made of a domain's DMARC record."""

    record: str | None
    valid: bool
    error: str | None
    location: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DomainDns:
    """Everything the DNS said about one sending domain, gathered in one go."""

    domain: str
    mx: Answer
    spf: SpfResult
    dmarc: DmarcResult
    dkim_cname: dict[str, Answer]  # selector -> CNAME lookup
    dkim_txt: dict[str, Answer]  # selector -> TXT lookup (follows the CNAME)
    mta_sts: Answer
    tls_rpt: Answer


def parse_nameserver(value: str) -> tuple[str, int]:
    """Split ``HOST[:PORT]`` (``[v6]:PORT`` for IPv6); the host must be an IP address."""
    text = value.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise NameserverError(
            f"nameserver {value!r}: {host!r} is not an IP address (use HOST[:PORT], "
            "e.g. 127.0.0.1:5353)"
        ) from None
    if not port_text:
        return host, 53
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise NameserverError(f"nameserver {value!r}: port {port_text!r} is not 1-65535")
    return host, int(port_text)


class DnsResolver:
    """Looks names up on one nameserver (``HOST[:PORT]``) or the system's, within a timeout."""

    def __init__(self, nameserver: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self.nameserver = parse_nameserver(nameserver) if nameserver else None
        self._async = dns.asyncresolver.Resolver(configure=self.nameserver is None)
        self._configure(self._async)

    def _configure(self, resolver: dns.resolver.Resolver | dns.asyncresolver.Resolver) -> None:
        if self.nameserver is not None:
            resolver.nameservers = [self.nameserver[0]]
            resolver.port = self.nameserver[1]
        # Several tries inside the lifetime, so one lost UDP datagram is not a timeout.
        resolver.timeout = min(1.0, self.timeout)
        resolver.lifetime = self.timeout
        resolver.cache = None

    def sync_resolver(self) -> dns.resolver.Resolver:
        """A blocking resolver with the same nameserver and timeout (for checkdmarc)."""
        resolver = dns.resolver.Resolver(configure=self.nameserver is None)
        self._configure(resolver)
        return resolver

    async def lookup(self, name: str, rdtype: str) -> Answer:
        """Look ``name`` up; every DNS failure is a status in the answer."""
        try:
            result = await self._async.resolve(name, rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return Answer(name, rdtype, LookupStatus.NXDOMAIN)
        except dns.resolver.NoNameservers as exc:
            return Answer(name, rdtype, LookupStatus.SERVFAIL, detail=_first_line(exc))
        except dns.exception.Timeout:
            return Answer(name, rdtype, LookupStatus.TIMEOUT, detail=f"after {self.timeout:g}s")
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            return Answer(name, rdtype, LookupStatus.ERROR, detail=_first_line(exc))
        if result.rrset is None:
            return Answer(name, rdtype, LookupStatus.NODATA)
        records = tuple(_record_text(r) for r in result.rrset)
        canonical = result.canonical_name.to_text().rstrip(".")
        return Answer(
            name,
            rdtype,
            LookupStatus.OK,
            records,
            canonical_name=canonical if canonical.lower() != name.lower().rstrip(".") else None,
        )

    async def spf(self, domain: str) -> SpfResult:
        """Parse and validate ``domain``'s SPF record with checkdmarc (it does its own lookups)."""
        from checkdmarc.spf import check_spf

        raw = await asyncio.to_thread(
            check_spf, domain, resolver=self.sync_resolver(), timeout=self.timeout, retries=0
        )
        return SpfResult(
            record=raw.get("record"),
            valid=bool(raw.get("valid")) and "error" not in raw,
            error=raw.get("error"),
            dns_lookups=raw.get("dns_lookups"),
            includes=tuple(_includes(raw.get("parsed"))),
            warnings=tuple(str(w) for w in raw.get("warnings") or ()),
        )

    async def dmarc(self, domain: str) -> DmarcResult:
        """Parse and validate ``domain``'s DMARC record with checkdmarc."""
        from checkdmarc.dmarc import check_dmarc

        raw: dict[str, Any] = dict(
            await asyncio.to_thread(
                check_dmarc, domain, resolver=self.sync_resolver(), timeout=self.timeout, retries=0
            )
        )
        tags = {str(k): _tag_text(v) for k, v in (raw.get("tags") or {}).items()}
        return DmarcResult(
            record=raw.get("record"),
            valid=bool(raw.get("valid")),
            error=raw.get("error"),
            location=raw.get("location"),
            tags=tags,
            warnings=tuple(str(w) for w in raw.get("warnings") or ()),
        )


async def gather_domain(
    resolver: DnsResolver, domain: str, selectors: tuple[str, ...]
) -> DomainDns:
    """Look up everything a sending domain publishes, concurrently."""
    from checkdmarc.utils import DNS_CACHE

    # checkdmarc keeps a process-wide cache keyed by name only, not by nameserver:
    # a second check (another nameserver, or records fixed since) must not read it.
    DNS_CACHE.clear()
    names = [f"{s}._domainkey.{domain}" for s in selectors]
    spf_task = asyncio.ensure_future(resolver.spf(domain))
    dmarc_task = asyncio.ensure_future(resolver.dmarc(domain))
    answers = await asyncio.gather(
        resolver.lookup(domain, "MX"),
        resolver.lookup(f"_mta-sts.{domain}", "TXT"),
        resolver.lookup(f"_smtp._tls.{domain}", "TXT"),
        *(resolver.lookup(n, "CNAME") for n in names),
        *(resolver.lookup(n, "TXT") for n in names),
    )
    mx, mta_sts, tls_rpt, *dkim = answers
    count = len(selectors)
    return DomainDns(
        domain=domain,
        mx=mx,
        spf=await spf_task,
        dmarc=await dmarc_task,
        dkim_cname=dict(zip(selectors, dkim[:count], strict=True)),
        dkim_txt=dict(zip(selectors, dkim[count:], strict=True)),
        mta_sts=mta_sts,
        tls_rpt=tls_rpt,
    )


def _record_text(rdata: Any) -> str:
    if rdata.rdtype == dns.rdatatype.TXT:
        return b"".join(rdata.strings).decode("utf-8", "replace")
    return str(rdata.to_text()).rstrip(".")


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]


def _includes(parsed: Any) -> list[str]:
    """Every ``include:`` (and ``redirect=``) target in checkdmarc's parsed SPF tree."""
    found: list[str] = []
    if not isinstance(parsed, dict):
        return found
    nested = [m for m in parsed.get("mechanisms") or () if isinstance(m, dict)]
    nested = [m for m in nested if m.get("mechanism") == "include"]
    if isinstance(parsed.get("redirect"), dict):
        nested.append(parsed["redirect"])
    for item in nested:
        target = item.get("value") or item.get("domain")
        if isinstance(target, str):
            found.append(target.lower())
        found.extend(_includes(item.get("parsed")))
    return found


def _tag_text(value: Any) -> str:
    """A DMARC tag value as text; report URIs come back from checkdmarc as dicts."""
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    if isinstance(value, list):
        return ",".join(
            f"{v.get('scheme', 'mailto')}:{v.get('address')}" if isinstance(v, dict) else str(v)
            for v in value
        )
    return str(value)
