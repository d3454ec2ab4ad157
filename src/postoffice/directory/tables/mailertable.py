"""``mailertable``: per-domain overrides of how mail leaves this host.

Owns the parse of the mailertable and its most-specific-match lookup
(sendmail cf/README "USING MAILERTABLES"):

    example.net        esmtp:mx.example.net        # MX lookup for mx.example.net
    .example.net       smtp:[gateway.example.net]  # subdomains; [] = no MX lookup
    partner.test       relay:[10.1.1.1]:2525       # optional port (our extension)
    backup.test        esmtp:mx1.test:mx2.test     # fallback hosts, in order
    old.test           error:5.1.2:550 Host moved
    legacy.test        local:archive               # deliver to a local name
    .                  relay:[smarthost.test]      # everything else (a smart host)

Matching: a key without a leading dot matches that domain only; ``.domain``
matches any subdomain (not the domain itself); the most qualified key wins; in
a dot-key's host, ``%1`` is the part of the domain the dot stood for.

Invariants: the mailer is one this project delivers with (``MAILERS``); a
smtp-family route names at least one host; lookups are dict lookups over the
parent domains of the name, never scans.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final

from postoffice.core.address import canonical_domain, parse_local
from postoffice.core.errors import AddressError, TableError
from postoffice.core.reply import Reply
from postoffice.directory.tables.error_reply import ErrorReplySyntaxError, parse_error_reply
from postoffice.directory.tables.lines import (
    Origin,
    TableLine,
    empty_mapping,
    logical_lines,
    raise_collected,
    split_key_value,
)

SMTP_MAILERS: Final = frozenset({"smtp", "esmtp", "smtp8", "dsmtp", "relay", "lmtp"})
MAILERS: Final = SMTP_MAILERS | {"local", "error"}
_PORT = re.compile(r"\d{1,5}")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


@dataclass(frozen=True, slots=True)
class RelayHost:
    """One next hop: ``mx.example.net`` (MX lookup) or ``[10.1.1.1]`` (no MX lookup)."""

    name: str
    mx_lookup: bool
    port: int | None = None

    def __str__(self) -> str:
        text = self.name if self.mx_lookup else f"[{self.name}]"
        return f"{text}:{self.port}" if self.port is not None else text


@dataclass(frozen=True, slots=True)
class MailertableRoute:
    """The right-hand side of a mailertable line, as it applies to one domain."""

    key: str
    mailer: str
    hosts: tuple[RelayHost, ...]
    origin: Origin
    local_user: str | None = None  # for ``local:user``
    reply: Reply | None = None  # for ``error:``
    written: str = ""

    def __str__(self) -> str:
        return self.written or self.mailer


@dataclass(frozen=True, slots=True, eq=False)
class Mailertable:
    routes: Mapping[str, MailertableRoute] = field(default_factory=empty_mapping)

    def __len__(self) -> int:
        return len(self.routes)

    def summary(self) -> str:
        return f"{len(self.routes)} routes"

    def lookup(self, domain: str) -> MailertableRoute | None:
        """The most specific route for ``domain`` (canonical), ``%1`` filled in."""
        exact = self.routes.get(domain)
        if exact is not None:
            return exact
        if domain.startswith("["):  # an address literal has no parent domains
            return self.routes.get(".")
        labels = domain.split(".")
        for i in range(1, len(labels)):
            route = self.routes.get("." + ".".join(labels[i:]))
            if route is not None:
                return _fill_wildcard(route, ".".join(labels[:i]))
        return self.routes.get(".")


def _fill_wildcard(route: MailertableRoute, wildcard: str) -> MailertableRoute:
    if not any("%1" in host.name for host in route.hosts):
        return route
    hosts = tuple(replace(host, name=host.name.replace("%1", wildcard)) for host in route.hosts)
    return replace(route, hosts=hosts)


def _parse_key(line: TableLine, written: str) -> str:
    if written == ".":
        return "."
    try:
        if written.startswith("."):
            return "." + canonical_domain(written[1:])
        return canonical_domain(written)
    except AddressError as exc:
        raise line.error(f"invalid domain {written!r}: {exc}") from exc


def _split_hosts(text: str) -> list[str]:
    """Split ``a:[b]:25:c`` on colons that are outside brackets."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == ":" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _parse_hosts(line: TableLine, text: str, wildcard_ok: bool) -> tuple[RelayHost, ...]:
    hosts: list[RelayHost] = []
    for part in _split_hosts(text):
        if _PORT.fullmatch(part) and hosts:
            port = int(part)
            if not 0 < port < 65536 or hosts[-1].port is not None:
                raise line.error(f"invalid port {part!r}")
            hosts[-1] = replace(hosts[-1], port=port)
            continue
        hosts.append(_parse_host(line, part, wildcard_ok))
    return tuple(hosts)


def parse_relay_hosts(text: str, *, source: str) -> tuple[RelayHost, ...]:
    """The hosts of a smart-host setting (``[smart.test]:587``, ``relay.test``), in the
    syntax of a mailertable route's host part; ``TableError`` naming ``source`` if bad."""
    line = TableLine(Origin(source, 1), text)
    if not text.strip():
        raise line.error("no host given")
    return _parse_hosts(line, text.strip(), wildcard_ok=False)


def _parse_host(line: TableLine, part: str, wildcard_ok: bool) -> RelayHost:
    bracketed = len(part) >= 2 and part.startswith("[") and part.endswith("]")
    name = part[1:-1] if bracketed else part
    if "%1" in name and not wildcard_ok:
        raise line.error("%1 can only be used with a .domain key")
    try:
        if bracketed and ":" in name:
            literal = name if name.lower().startswith("ipv6:") else f"IPv6:{name}"
            canonical = canonical_domain(f"[{literal}]")[6:-1]  # "[IPv6:" ... "]"
        elif bracketed and _IPV4.fullmatch(name):
            canonical = canonical_domain(f"[{name}]")[1:-1]
        else:
            canonical = canonical_domain(name.replace("%1", "x"))
            if "%1" in name:
                canonical = name.lower()
    except AddressError as exc:
        raise line.error(f"invalid host {part!r}: {exc}") from exc
    return RelayHost(canonical, mx_lookup=not bracketed)


def _parse_route(line: TableLine, key: str, value: str) -> MailertableRoute:
    mailer, colon, rest = value.partition(":")
    mailer = mailer.lower()
    if not colon:
        raise line.error(f"expected mailer:host, got {value!r}")
    if mailer not in MAILERS:
        raise line.error(f"unknown mailer {mailer!r} (known: {', '.join(sorted(MAILERS))})")
    if mailer == "error":
        try:
            reply = parse_error_reply(rest, default_text="Mail for this domain is refused")
        except ErrorReplySyntaxError as exc:
            raise line.error(str(exc)) from exc
        return MailertableRoute(key, mailer, (), line.origin, reply=reply, written=value)
    if mailer == "local":
        user = rest.strip() or None
        if user is not None:
            try:
                parse_local(user)
            except AddressError as exc:
                raise line.error(f"invalid local user {user!r}: {exc}") from exc
        return MailertableRoute(key, mailer, (), line.origin, local_user=user, written=value)
    if not rest:
        raise line.error(f"mailer {mailer!r} needs a host (mailer:host)")
    hosts = _parse_hosts(line, rest, key.startswith("."))
    return MailertableRoute(key, mailer, hosts, line.origin, written=value)


def parse_mailertable(text: str, *, source: str) -> Mailertable:
    """Parse the text of a ``mailertable``; raise ``TableError`` naming file:line."""
    routes: dict[str, MailertableRoute] = {}
    errors: list[TableError] = []
    for line in logical_lines(text, source=source):
        try:
            written, value = split_key_value(line)
            key = _parse_key(line, written)
            route = _parse_route(line, key, value)
        except TableError as exc:
            errors.append(exc)
            continue
        previous = routes.get(key)
        if previous is not None:
            errors.append(line.error(f"duplicate key {written!r} (first at {previous.origin})"))
            continue
        routes[key] = route
    raise_collected(errors)
    return Mailertable(MappingProxyType(routes))
