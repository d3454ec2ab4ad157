"""Mail host selection: where a message for a domain goes (RFC 5321 §5.1).

Owns the decision, for one destination, of the ordered list of (host, address,
port) targets the SMTP client tries, or the reply that ends the attempt
instead: the MX lookup, the implicit MX, the null MX (RFC 7505), MX loop
detection by name and by address, the cap on addresses tried, address
literals, and the expansion of mailertable/relayhost next hops.

The ordering and loop rules are pure functions (no I/O; randomness comes in
as a ``random.Random``); ``mail_hosts`` and ``relay_hosts`` add the DNS
questions, asked through the injected ``Resolver``.

Invariants:
- A ``MailHosts`` is never empty and holds at most ``max_addresses`` targets,
  in the order to try them (Postfix ``smtp_mx_address_limit``, default 5).
- No target is this host, nor any host less preferred than (or as preferred
  as) a record that is this host (RFC 5321 §5.1; equal preferences go too,
  as Postfix and sendmail do: a peer of equal preference would hand the mail
  back).
- A ``RouteFailure`` is temporary (4xx: the message waits for the retry
  schedule) only when a DNS question could not be answered; everything DNS
  answered definitely (NXDOMAIN, null MX, a loop) is permanent.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final, TypeAlias

from postoffice.core.address import canonical_domain
from postoffice.core.errors import AddressError
from postoffice.core.reply import Replies, Reply
from postoffice.delivery.resolver import (
    DnsError,
    DnsNoSuchDomain,
    DnsPermanentError,
    MxAnswer,
    MxRecord,
    Resolver,
)
from postoffice.directory.tables.mailertable import RelayHost

DEFAULT_PORT: Final = 25
DEFAULT_MAX_ADDRESSES: Final = 5

# RFC 7505 §4.2: mail to a domain with a null MX is refused with 556 5.1.10.
NULL_MX: Final = Reply(556, "5.1.10", "Recipient address has null MX")
# RFC 5321 §5.1 MX loop; RFC 3463 X.4.6 "routing loop detected".
MX_LOOP: Final = Reply(554, "5.4.6", "Mail loops back to myself")
# RFC 3463 X.1.2 "bad destination system address": NXDOMAIN.
NO_SUCH_DOMAIN: Final = Reply(550, "5.1.2", "Host or domain name not found")
# RFC 3463 X.4.4 "unable to route": the names exist, none has an address.
NO_MAIL_HOST: Final = Reply(550, "5.4.4", "Unable to route: no address for the mail hosts")
# RFC 3463 X.4.3 "directory server failure": DNS could not answer now.
LOOKUP_FAILED: Final = Reply(451, "4.4.3", "Host or domain name lookup failed")


@dataclass(frozen=True, slots=True)
class MailTarget:
    """One place to try: connect to ``address``:``port``; ``host`` names it (TLS, logs)."""

    host: str
    address: str
    preference: int
    port: int = DEFAULT_PORT


@dataclass(frozen=True, slots=True)
class MailHosts:
    """Where to deliver: the targets, in the order to try them (never empty)."""

    targets: tuple[MailTarget, ...]


@dataclass(frozen=True, slots=True)
class RouteFailure:
    """No target: ``reply`` says why (4xx: defer the message, 5xx: bounce it)."""

    reply: Reply

    @property
    def temporary(self) -> bool:
        return self.reply.is_temporary


MailHostsResult: TypeAlias = MailHosts | RouteFailure


# -- pure rules ----------------------------------------------------------------------


def order_mx(records: Iterable[MxRecord], rng: random.Random) -> list[MxRecord]:
    """``records`` most preferred (lowest preference) first, equal ones shuffled.

    RFC 5321 §5.1: "If there are multiple destinations with the same
    preference and there is no clear reason to favor one ..., the SMTP client
    SHOULD pick one at random to spread the load".
    """
    groups: dict[int, list[MxRecord]] = {}
    for record in records:
        groups.setdefault(record.preference, []).append(record)
    ordered: list[MxRecord] = []
    for preference in sorted(groups):
        group = groups[preference]
        rng.shuffle(group)
        ordered.extend(group)
    return ordered


def is_null_mx(answer: MxAnswer) -> bool:
    """RFC 7505 §3: a single MX record whose exchange is "." (any preference)."""
    return len(answer.records) == 1 and answer.records[0].exchange == ""


def discard_self_and_worse(
    records: Sequence[MxRecord], my_names: Collection[str]
) -> list[MxRecord]:
    """``records`` without this host (by name) and every record not more preferred.

    RFC 5321 §5.1: "if the SMTP client finds itself (by name or address) in
    the MX list, it MUST discard that and all less preferred records".
    """
    names = {_host_key(name) for name in my_names}
    own = [r.preference for r in records if r.exchange in names]
    if not own:
        return list(records)
    return [r for r in records if r.preference < min(own)]


def discard_self_and_worse_addresses(
    targets: Sequence[MailTarget], my_addresses: Collection[str]
) -> list[MailTarget]:
    """``targets`` without this host (by address) and every target not more preferred.

    The same rule as ``discard_self_and_worse`` (RFC 5321 §5.1), applied once
    the hosts' names are resolved: an MX host by another name may be us.
    """
    mine = _address_set(my_addresses)
    own = [t.preference for t in targets if _address_key(t.address) in mine]
    if not own:
        return list(targets)
    return [t for t in targets if t.preference < min(own)]


# -- the procedure --------------------------------------------------------------------


@dataclass
class _Collected:
    """What resolving the MX hosts of one destination found so far."""

    targets: list[MailTarget]
    temporary: list[str]  # lookups that failed now and may work later
    looped: bool = False


async def mail_hosts(
    domain: str,
    resolver: Resolver,
    *,
    my_names: Collection[str] = (),
    my_addresses: Collection[str] = (),
    max_addresses: int = DEFAULT_MAX_ADDRESSES,
    rng: random.Random,
    port: int = DEFAULT_PORT,
) -> MailHostsResult:
    """The targets for mail to ``domain``, by the whole of RFC 5321 §5.1.

    ``my_names``/``my_addresses``: this host's names and addresses (the MX
    loop check). An address literal (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``,
    RFC 5321 §4.1.3) is delivered to as written, without DNS.
    """
    if max_addresses < 1:
        raise ValueError(f"max_addresses must be at least 1, got {max_addresses!r}")
    if domain.startswith("["):
        return _literal(domain, my_addresses, port)
    try:
        name = canonical_domain(domain)
    except AddressError as exc:
        return _fail(NO_SUCH_DOMAIN, f"{domain}: {exc}")
    try:
        answer = await resolver.mx(name)
    except DnsNoSuchDomain:
        return _fail(NO_SUCH_DOMAIN, name)
    except DnsPermanentError as exc:
        return _fail(NO_SUCH_DOMAIN, str(exc))
    except DnsError as exc:
        return _fail(LOOKUP_FAILED, str(exc))
    if is_null_mx(answer):
        return RouteFailure(NULL_MX)
    if answer.records:
        # A "." among other records (against RFC 7505 §3) names no host.
        records = [r for r in order_mx(answer.records, rng) if r.exchange]
    else:
        # RFC 5321 §5.1: no MX records: the domain itself, as an implicit MX
        # of preference 0.
        records = [MxRecord(0, name)]
    kept = discard_self_and_worse(records, my_names)
    found = _Collected([], [], looped=len(kept) < len(records))
    await _resolve_hosts(kept, resolver, my_addresses, max_addresses, port, found)
    if found.targets:
        return MailHosts(tuple(found.targets))
    if found.temporary:
        return _fail(LOOKUP_FAILED, "; ".join(found.temporary))
    if found.looped:
        return RouteFailure(replace(MX_LOOP, text=f"mail for {name} loops back to myself"))
    if not answer.records:
        return _fail(NO_MAIL_HOST, f"{name} has no MX and no address record")
    return _fail(NO_MAIL_HOST, name)


async def _resolve_hosts(
    records: Sequence[MxRecord],
    resolver: Resolver,
    my_addresses: Collection[str],
    max_addresses: int,
    port: int,
    found: _Collected,
) -> None:
    """Resolve ``records`` (ordered) into ``found`` until the cap is reached or we appear."""
    mine = _address_set(my_addresses)
    for record in records:
        if len(found.targets) >= max_addresses:
            return
        try:
            answer = await resolver.addresses(record.exchange)
        except (DnsNoSuchDomain, DnsPermanentError):
            continue  # a host that does not exist: the next one
        except DnsError as exc:
            found.temporary.append(str(exc))  # remembered: may work later
            continue
        candidates = [
            MailTarget(record.exchange, a, record.preference, port) for a in answer.addresses
        ]
        if any(_address_key(t.address) in mine for t in candidates):
            # RFC 5321 §5.1: we are this host; it and every less preferred go.
            found.targets = discard_self_and_worse_addresses(found.targets + candidates, mine)
            found.looped = True
            return
        found.targets.extend(candidates[: max_addresses - len(found.targets)])


async def relay_hosts(
    hosts: Sequence[RelayHost],
    resolver: Resolver,
    *,
    my_names: Collection[str] = (),
    my_addresses: Collection[str] = (),
    max_addresses: int = DEFAULT_MAX_ADDRESSES,
    rng: random.Random,
    default_port: int = DEFAULT_PORT,
) -> MailHostsResult:
    """The targets for a mailertable/relayhost route: ``hosts`` in order, each expanded.

    ``name`` (``mx_lookup``): its MX hosts, as ``mail_hosts`` finds them;
    ``[name]``: its own addresses (sendmail: brackets suppress the MX
    lookup). Each target gets the host's port, else ``default_port``. The
    cap on addresses counts all hosts together; a host that fails is passed
    over for the next, and the route fails only when none gives a target
    (temporarily if any of them failed temporarily).
    """
    if max_addresses < 1:
        raise ValueError(f"max_addresses must be at least 1, got {max_addresses!r}")
    targets: list[MailTarget] = []
    failures: list[RouteFailure] = []
    for host in hosts:
        room = max_addresses - len(targets)
        if room <= 0:
            break
        port = host.port if host.port is not None else default_port
        if host.mx_lookup:
            result = await mail_hosts(
                host.name,
                resolver,
                my_names=my_names,
                my_addresses=my_addresses,
                max_addresses=room,
                rng=rng,
                port=port,
            )
        else:
            result = await _bracketed(host.name, resolver, my_addresses, room, port)
        if isinstance(result, RouteFailure):
            failures.append(result)
            continue
        seen = {(t.address, t.port) for t in targets}
        targets.extend(t for t in result.targets if (t.address, t.port) not in seen)
    if targets:
        return MailHosts(tuple(targets))
    for failure in failures:
        if failure.temporary:
            return failure
    if failures:
        return failures[0]
    # A route without hosts is a configuration fault (the mailertable parser
    # refuses one): keep the mail until the operator fixes it.
    return _fail(Replies.LOCAL_CONFIG_ERROR, "no relay host given")


async def _bracketed(
    name: str, resolver: Resolver, my_addresses: Collection[str], room: int, port: int
) -> MailHostsResult:
    """The targets for ``[name]``: its A/AAAA records, or the address it is."""
    loop = RouteFailure(replace(MX_LOOP, text=f"mail for [{name}] loops back to myself"))
    mine = _address_set(my_addresses)
    literal = _parse_address(name)
    if literal is not None:
        if literal in mine:
            return loop
        return MailHosts((MailTarget(f"[{name}]", literal, 0, port),))
    try:
        answer = await resolver.addresses(name)
    except DnsNoSuchDomain:
        return _fail(NO_SUCH_DOMAIN, name)
    except DnsPermanentError as exc:
        return _fail(NO_SUCH_DOMAIN, str(exc))
    except DnsError as exc:
        return _fail(LOOKUP_FAILED, str(exc))
    if any(_address_key(a) in mine for a in answer.addresses):
        return loop
    if not answer.addresses:
        return _fail(NO_MAIL_HOST, f"{name} has no address record")
    return MailHosts(tuple(MailTarget(name, a, 0, port) for a in answer.addresses[:room]))


def _literal(domain: str, my_addresses: Collection[str], port: int) -> MailHostsResult:
    """RFC 5321 §4.1.3 address literal: that address, no DNS."""
    try:
        canonical = canonical_domain(domain)
    except AddressError as exc:
        return _fail(NO_SUCH_DOMAIN, str(exc))
    inner = canonical[1:-1]
    address = _address_key(inner[5:] if inner.startswith("IPv6:") else inner)
    if address in _address_set(my_addresses):
        return RouteFailure(replace(MX_LOOP, text=f"mail for {canonical} loops back to myself"))
    return MailHosts((MailTarget(canonical, address, 0, port),))


def _fail(reply: Reply, detail: str) -> RouteFailure:
    return RouteFailure(replace(reply, text=f"{reply.text}: {detail}"))


def _host_key(name: str) -> str:
    return name.rstrip(".").lower()


def _parse_address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _address_key(text: str) -> str:
    """An address in one spelling (``2001:DB8:0::1`` and ``2001:db8::1`` compare equal)."""
    parsed = _parse_address(text)
    return text if parsed is None else parsed


def _address_set(addresses: Collection[str]) -> set[str]:
    return {_address_key(a) for a in addresses}
