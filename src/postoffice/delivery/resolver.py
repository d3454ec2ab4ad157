"""DNS for outgoing mail: the ``Resolver`` protocol and its dnspython boundary.

Owns the three questions delivery and (later) mail authentication ask of DNS,
MX, A/AAAA and TXT, their answers as plain value types, and the translation of
every dnspython outcome into the ``DnsError`` tree (DESIGN.md §6: foreign
exceptions are translated at one boundary). Nothing outside this module
imports ``dns``.

Invariants:
- No dnspython exception leaves this module: every failure is one of
  ``DnsTemporaryError`` (SERVFAIL, REFUSED, timeout, no nameserver answered:
  the message waits and is tried again), ``DnsNoSuchDomain`` (NXDOMAIN:
  permanent) or ``DnsPermanentError`` (a name that cannot be asked, such as
  one with an empty or over-long label).
- NODATA (the name exists, the type has no records; RFC 2308 §2.2) is not an
  error: an empty answer.
- Names are asked as absolute names: no resolv.conf ``search`` suffix is ever
  appended to a mail domain.
- Host names in answers are canonical: lower case, no trailing dot; the null
  MX target "." (RFC 7505 §3) is the empty string.
- Addresses are IPv4 first, then IPv6, each family in the order the server
  gave them (a deliberate, documented order: every mail host is reachable
  over IPv4 today, so a cap on the number of addresses tried never leaves only
  IPv6 ones when IPv4 ones exist).
- Truncated UDP answers (TC bit, RFC 1035 §4.2.1) are asked again over TCP
  (RFC 7766 §5): dnspython's resolver does this by itself when a query is
  made with ``tcp=False``.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset

from postoffice.core.errors import PostofficeError

# dnspython's default per-server try (``Resolver.timeout``): within one query's
# lifetime a server that lost a UDP datagram is asked again.
_PER_TRY_TIMEOUT: Final = 2.0


class DnsError(PostofficeError):
    """A DNS question had no usable answer (base of the DNS errors)."""


class DnsTemporaryError(DnsError):
    """SERVFAIL, REFUSED, a timeout, or no nameserver answered: try again later."""


class DnsNoSuchDomain(DnsError):
    """NXDOMAIN: the name does not exist (RFC 1035 §4.1.1 RCODE 3). Permanent."""


class DnsPermanentError(DnsError):
    """The question cannot be asked or answered, ever (e.g. a malformed name)."""


@dataclass(frozen=True, slots=True)
class MxRecord:
    """One MX record (RFC 1035 §3.3.9); ``exchange`` is "" for the null MX "."."""

    preference: int
    exchange: str


@dataclass(frozen=True, slots=True)
class MxAnswer:
    """The MX records of a domain that exists; empty for NODATA (the implicit MX).

    A domain that does not exist is not an answer: ``mx()`` raises
    ``DnsNoSuchDomain``.
    """

    records: tuple[MxRecord, ...]


@dataclass(frozen=True, slots=True)
class AddressAnswer:
    """The addresses of a host: IPv4 then IPv6; empty for NODATA."""

    addresses: tuple[str, ...]


class Resolver(Protocol):
    """What delivery asks of DNS (DESIGN.md §3). Implementations raise only ``DnsError``."""

    async def mx(self, domain: str) -> MxAnswer:
        """The MX records of ``domain``; raise ``DnsNoSuchDomain`` for NXDOMAIN."""
        ...

    async def addresses(self, host: str) -> AddressAnswer:
        """The A and AAAA records of ``host``; raise ``DnsNoSuchDomain`` for NXDOMAIN."""
        ...

    async def txt(self, name: str) -> list[str]:
        """The TXT records of ``name``, each one's strings joined (RFC 7208 §3.3)."""
        ...


def canonical_host(name: dns.name.Name) -> str:
    """A DNS name as postoffice writes host names: lower case, no trailing dot."""
    if name == dns.name.root:
        return ""
    return name.to_text(omit_final_dot=True).lower()


def _absolute(text: str) -> dns.name.Name:
    if not text or text == ".":
        raise DnsPermanentError(f"invalid DNS name {text!r}: empty")
    try:
        # from_text() relative to the root: an absolute name, so the resolver
        # never appends a search domain to it.
        return dns.name.from_text(text)
    except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
        raise DnsPermanentError(f"invalid DNS name {text!r}: {exc}") from exc


def _failure_summary(exc: dns.resolver.NoNameservers) -> str:
    """What each nameserver said, briefly: ``Do53:127.0.0.1@53 answered SERVFAIL``."""
    parts: list[str] = []
    for server, _tcp, _port, problem, response in exc.kwargs.get("errors", []):
        if response is not None:
            parts.append(f"{server} answered {dns.rcode.to_text(response.rcode())}")
        else:
            parts.append(f"{server}: {problem}")
    return "; ".join(parts) or "no nameserver answered"


def translate(exc: Exception, question: str) -> DnsError:
    """The ``DnsError`` for a dnspython exception raised while asking ``question``."""
    if isinstance(exc, DnsError):
        return exc
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return DnsNoSuchDomain(f"{question}: no such domain (NXDOMAIN)")
    if isinstance(exc, dns.exception.Timeout):  # LifetimeTimeout is one
        return DnsTemporaryError(f"{question}: timed out")
    if isinstance(exc, dns.resolver.NoNameservers):
        return DnsTemporaryError(f"{question}: {_failure_summary(exc)}")
    if isinstance(exc, dns.resolver.YXDOMAIN):
        # RFC 6672 §2.2: a DNAME substitution made the name too long.
        return DnsPermanentError(f"{question}: name too long after DNAME (YXDOMAIN)")
    if isinstance(exc, dns.exception.SyntaxError | dns.name.NameTooLong):
        return DnsPermanentError(f"{question}: invalid name: {exc}")
    # Anything else (a malformed answer, an I/O problem dnspython did not
    # absorb): keep the mail and try again rather than bounce it.
    return DnsTemporaryError(f"{question}: {type(exc).__name__}: {exc}")


class DnsPythonResolver:
    """``Resolver`` over dnspython's asyncio stub resolver.

    ``nameservers``: None reads the system's /etc/resolv.conf; given, exactly
    these (IP address, port) pairs are asked, in order, and nothing else is
    read. ``timeout``: the lifetime of one question, retries and the TCP
    retry included. ``cache``: keep answers for their TTL (dnspython's cache;
    off by default).
    """

    def __init__(
        self,
        nameservers: Sequence[tuple[str, int]] | None = None,
        *,
        timeout: float = 5.0,
        cache: bool = False,
    ):
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        if nameservers is None:
            try:
                resolver = dns.asyncresolver.Resolver(configure=True)
            except dns.exception.DNSException as exc:  # NoResolverConfiguration
                raise DnsError(f"cannot read the system's DNS configuration: {exc}") from exc
        else:
            if not nameservers:
                raise DnsError("no nameservers given")
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [_nameserver(host, port) for host, port in nameservers]
        resolver.lifetime = timeout
        resolver.timeout = min(resolver.timeout, _PER_TRY_TIMEOUT, timeout)
        resolver.retry_servfail = False  # SERVFAIL: the next server, then temporary
        resolver.cache = dns.resolver.Cache() if cache else None
        self._resolver = resolver
        self._lifetime = timeout

    @property
    def nameservers(self) -> list[str]:
        """The servers asked, as ``address@port`` (for logs and ``postoffice check``)."""
        resolver = self._resolver
        return [
            f"{ns}@{resolver.nameserver_ports.get(ns, resolver.port)}"
            if isinstance(ns, str)
            else f"{ns.answer_nameserver()}@{ns.answer_port()}"
            for ns in resolver.nameservers
        ]

    async def _rrset(self, text: str, rdtype: Literal["MX", "A", "AAAA", "TXT"]) -> dns.rrset.RRset:
        """The answer's RRset for ``text``/``rdtype``, empty for NODATA."""
        name = _absolute(text)
        question = f"{text} {rdtype}"
        try:
            # dnspython checks its lifetime only between tries, after a backoff
            # sleep that can overshoot it: the bound here is exact.
            async with asyncio.timeout(self._lifetime):
                answer = await self._resolver.resolve(
                    name, rdtype, tcp=False, raise_on_no_answer=False, search=False
                )
        except TimeoutError as exc:
            raise DnsTemporaryError(f"{question}: timed out") from exc
        except Exception as exc:  # the boundary: every dnspython failure is translated
            raise translate(exc, question) from exc
        if answer.rrset is None:  # NOERROR, no records of the type: NODATA
            return dns.rrset.RRset(name, dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
        return answer.rrset

    async def mx(self, domain: str) -> MxAnswer:
        rrset = await self._rrset(domain, "MX")
        records = tuple(MxRecord(rd.preference, canonical_host(rd.exchange)) for rd in rrset)
        return MxAnswer(records)

    async def addresses(self, host: str) -> AddressAnswer:
        # Both families at once; one family's failure costs only its addresses.
        results = await asyncio.gather(
            self._rrset(host, "A"), self._rrset(host, "AAAA"), return_exceptions=True
        )
        found: list[str] = []
        errors: list[DnsError] = []
        for result in results:
            if isinstance(result, DnsError):
                errors.append(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                found.extend(rd.address for rd in result)
        if found:
            return AddressAnswer(tuple(found))
        # NXDOMAIN is the server's word that the name does not exist: it
        # outweighs the other family's failure to answer at all.
        for kind in (DnsNoSuchDomain, DnsTemporaryError, DnsPermanentError, DnsError):
            for error in errors:
                if type(error) is kind:
                    raise error
        return AddressAnswer(())

    async def txt(self, name: str) -> list[str]:
        rrset = await self._rrset(name, "TXT")
        # RFC 7208 §3.3: the strings of one record are joined without spaces.
        # TXT data are octets; the records mail reads (SPF, DKIM, DMARC) are
        # ASCII, and anything else must not stop the reading of the rest.
        return [b"".join(rd.strings).decode("utf-8", errors="replace") for rd in rrset]


def _nameserver(host: str, port: int) -> dns.nameserver.Do53Nameserver:
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise DnsError(f"a nameserver must be an IP address, got {host!r}") from exc
    if not 0 < port < 65536:
        raise DnsError(f"invalid nameserver port {port!r}")
    return dns.nameserver.Do53Nameserver(str(address), port)


class UnavailableResolver:
    """A ``Resolver`` for a host whose DNS cannot be set up (no /etc/resolv.conf):
    every question fails temporarily with the reason, so remote mail waits in
    the queue, deferred with that reason, and local mail is not held up."""

    def __init__(self, reason: str):
        self.reason = reason

    async def mx(self, domain: str) -> MxAnswer:
        raise DnsTemporaryError(self.reason)

    async def addresses(self, host: str) -> AddressAnswer:
        raise DnsTemporaryError(self.reason)

    async def txt(self, name: str) -> list[str]:
        raise DnsTemporaryError(self.reason)


Kind = Literal["mx", "addresses", "txt"]


class StaticResolver:
    """A ``Resolver`` answering from memory: tests, labs, and static routes.

    A name exists when it has any record here (or is named by ``fail``);
    another name is NXDOMAIN. ``fail(name, error)`` makes questions about
    ``name`` (of one kind, or all) raise ``error``. Every question is
    recorded in ``questions`` as ``(kind, name)``.
    """

    def __init__(self) -> None:
        self._mx: dict[str, list[MxRecord]] = {}
        self._addresses: dict[str, list[str]] = {}
        self._txt: dict[str, list[str]] = {}
        self._failures: dict[tuple[str, Kind | None], DnsError] = {}
        self.questions: list[tuple[Kind, str]] = []

    def add_mx(self, domain: str, preference: int, exchange: str) -> StaticResolver:
        key = _key(domain)
        self._mx.setdefault(key, []).append(MxRecord(preference, _key(exchange)))
        return self

    def add_address(self, host: str, *addresses: str) -> StaticResolver:
        known = self._addresses.setdefault(_key(host), [])
        known.extend(str(ipaddress.ip_address(a)) for a in addresses)
        return self

    def add_txt(self, name: str, text: str) -> StaticResolver:
        self._txt.setdefault(_key(name), []).append(text)
        return self

    def fail(self, name: str, error: DnsError, kind: Kind | None = None) -> StaticResolver:
        self._failures[(_key(name), kind)] = error
        return self

    def _ask(self, kind: Kind, name: str) -> str:
        key = _key(name)
        self.questions.append((kind, key))
        failure = self._failures.get((key, kind)) or self._failures.get((key, None))
        if failure is not None:
            raise failure
        if not key or not any(key in table for table in (self._mx, self._addresses, self._txt)):
            raise DnsNoSuchDomain(f"{name}: no such domain (NXDOMAIN)")
        return key

    async def mx(self, domain: str) -> MxAnswer:
        key = self._ask("mx", domain)
        return MxAnswer(tuple(self._mx.get(key, ())))

    async def addresses(self, host: str) -> AddressAnswer:
        key = self._ask("addresses", host)
        found = self._addresses.get(key, [])
        v4 = [a for a in found if ipaddress.ip_address(a).version == 4]
        return AddressAnswer(tuple(v4 + [a for a in found if a not in v4]))

    async def txt(self, name: str) -> list[str]:
        return list(self._txt.get(self._ask("txt", name), ()))


def _key(name: str) -> str:
    return name.rstrip(".").lower()
