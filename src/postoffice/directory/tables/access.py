"""``access``: accept, relay, reject or discard by client, sender and recipient.

Owns the parse of the access file and the three lookups sendmail makes with it
(cf/README "ANTI-SPAM CONFIGURATION CONTROL", FEATURE(`access_db')):

Keys (``TAG:KEY`` or a bare ``KEY``; bare keys are deprecated in sendmail but
still honoured for every tag, after the tagged key of the same specificity):
- ``Connect:`` an IPv4 address or dotted prefix (``192.168.1``), a CIDR network
  (``192.168.1.0/24``, our extension), an IPv6 address or prefix of 16-bit words
  written ``IPv6:2001:db8``, a host name or domain (covering its subdomains), or
  a bracketed ``[192.0.2.1]`` matched against a client without a host name.
- ``From:`` / ``To:`` a full address ``user@domain``, a local part at any domain
  ``user@``, a domain (covering its subdomains); ``From:<>`` is the null sender.

Actions: ``OK``, ``RELAY``, ``REJECT`` (550 5.7.1), ``DISCARD``, ``SKIP`` (host,
domain and network keys only), ``ERROR:[D.S.N:]NNN text`` (see ``error_reply``).

Lookup order (sendmail's LookUpDomain / LookUpAddress rulesets): most specific
first and, at each step, the tagged key before the bare one.
- client: the host name and then its parent domains, then the IP address and
  then ever shorter prefixes (longest prefix first);
- address: ``user+detail@domain``, ``user@domain`` (our addition, so that a
  detail cannot dodge a rule), the domain and its parents, ``user+detail@``,
  ``user@``.
``SKIP`` ends the search it is found in without a decision.

Invariants: the table is immutable; exact keys are found by dict lookups.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Final

from postoffice.core.address import (
    Address,
    canonical_domain,
    fold_local,
    parent_domains,
    parse_address,
)
from postoffice.core.address import parse_local as parse_local_part
from postoffice.core.errors import AddressError, TableError
from postoffice.core.reply import Replies, Reply
from postoffice.directory.tables.error_reply import ErrorReplySyntaxError, parse_error_reply
from postoffice.directory.tables.lines import (
    Origin,
    TableLine,
    empty_mapping,
    logical_lines,
    raise_collected,
    split_key_value,
)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AccessTag(Enum):
    CONNECT = "Connect"
    FROM = "From"
    TO = "To"


class AccessAction(Enum):
    OK = "OK"
    RELAY = "RELAY"
    REJECT = "REJECT"
    DISCARD = "DISCARD"
    SKIP = "SKIP"
    ERROR = "ERROR"


class AccessKeyKind(Enum):
    NETWORK = "network"
    HOST = "host"  # a host name, a domain (with its subdomains) or [address literal]
    ADDRESS = "address"  # user@domain
    LOCAL_PART = "local part"  # user@
    NULL_SENDER = "null sender"  # <>


MAX_REMEMBERED_ANSWERS = 4096
_TAG_PREFIX = re.compile(r"(connect|from|to):", re.IGNORECASE)
_IPV4_PREFIX = re.compile(r"\d{1,3}(?:\.\d{1,3}){0,3}(?:/\d{1,2})?")
_IPV6_WORDS = re.compile(r"[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6}")

_KINDS_FOR_TAG: Final[dict[AccessTag | None, frozenset[AccessKeyKind]]] = {
    AccessTag.CONNECT: frozenset({AccessKeyKind.NETWORK, AccessKeyKind.HOST}),
    AccessTag.FROM: frozenset(
        {
            AccessKeyKind.HOST,
            AccessKeyKind.ADDRESS,
            AccessKeyKind.LOCAL_PART,
            AccessKeyKind.NULL_SENDER,
        }
    ),
    AccessTag.TO: frozenset({AccessKeyKind.HOST, AccessKeyKind.ADDRESS, AccessKeyKind.LOCAL_PART}),
    None: frozenset(AccessKeyKind),
}


@dataclass(frozen=True, slots=True)
class AccessKey:
    """A parsed access key: the tag (None = bare), its kind and canonical text."""

    tag: AccessTag | None
    kind: AccessKeyKind
    key: str  # canonical: domain, local@domain, local@, <>, or the network
    network: IpNetwork | None = None


@dataclass(frozen=True, slots=True)
class AccessRule:
    """One line of the access table."""

    key: AccessKey
    written_key: str
    action: AccessAction
    reply: Reply | None  # the refusal for REJECT and ERROR
    origin: Origin

    @property
    def refuses(self) -> bool:
        return self.action in (AccessAction.REJECT, AccessAction.ERROR)

    def describe(self) -> str:
        value = self.action.value
        if self.action is AccessAction.ERROR and self.reply is not None:
            value = f"ERROR {self.reply}"
        return f"{self.written_key} {value}"


@dataclass(frozen=True, slots=True, eq=False)
class AccessTable:
    """The parsed access file with its lookup indexes."""

    rules: tuple[AccessRule, ...] = ()
    _by_key: Mapping[tuple[AccessTag | None, AccessKeyKind, str], AccessRule] = field(
        default_factory=empty_mapping
    )
    _by_network: Mapping[tuple[AccessTag | None, IpNetwork], AccessRule] = field(
        default_factory=empty_mapping
    )
    _prefix_lengths: Mapping[int, tuple[int, ...]] = field(
        default_factory=empty_mapping
    )  # ip version -> desc
    # Answers already found (the table never changes; a reload makes a new one):
    # the same client, sender and recipients come again and again.
    _answers: dict[tuple[object, ...], AccessRule | None] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rules)

    def summary(self) -> str:
        counts = dict.fromkeys([*AccessTag, None], 0)
        for rule in self.rules:
            counts[rule.key.tag] += 1
        parts = [f"{counts[tag]} {tag.value}:" for tag in AccessTag]
        return f"{len(self.rules)} rules ({', '.join(parts)}, {counts[None]} untagged)"

    # -- lookups ------------------------------------------------------------

    def _remembered(
        self, key: tuple[object, ...], find: Callable[[], AccessRule | None]
    ) -> AccessRule | None:
        answers = self._answers
        if key in answers:
            return answers[key]
        found = find()
        if len(answers) >= MAX_REMEMBERED_ANSWERS:
            answers.clear()  # bounded: a flood of new addresses costs lookups, not memory
        answers[key] = found
        return found

    def check_connect(self, ip: str, hostname: str | None = None) -> AccessRule | None:
        """The rule for an SMTP client (sendmail check_relay): host name, then address."""
        return self._remembered(("connect", ip, hostname), lambda: self._connect(ip, hostname))

    def _connect(self, ip: str, hostname: str | None) -> AccessRule | None:
        address = _parse_ip(ip)
        host = hostname
        if host is None and address is not None:
            host = f"[IPv6:{address.compressed}]" if address.version == 6 else f"[{address}]"
        skipped: AccessRule | None = None
        if host:
            found = self._lookup_host(AccessTag.CONNECT, host)
            if found is not None and found.action is not AccessAction.SKIP:
                return found
            skipped = found
        if address is not None:
            found = self._lookup_network(AccessTag.CONNECT, address)
            if found is not None and found.action is not AccessAction.SKIP:
                return found
            skipped = skipped or found
        return skipped

    def check_from(self, sender: Address | None, detail_separator: str = "+") -> AccessRule | None:
        """The rule for an envelope sender (sendmail check_mail); None is ``<>``."""
        if sender is None:
            return self._exact(AccessTag.FROM, AccessKeyKind.NULL_SENDER, "<>")
        return self._remembered(
            ("from", sender.local, sender.domain, detail_separator),
            lambda: self._lookup_address(AccessTag.FROM, sender, detail_separator),
        )

    def check_to(self, recipient: Address, detail_separator: str = "+") -> AccessRule | None:
        """The rule for an envelope recipient (sendmail check_rcpt)."""
        return self._remembered(
            ("to", recipient.local, recipient.domain, detail_separator),
            lambda: self._lookup_address(AccessTag.TO, recipient, detail_separator),
        )

    def _exact(self, tag: AccessTag, kind: AccessKeyKind, key: str) -> AccessRule | None:
        # cf/README: "tried first with the corresponding tag in front, then ...
        # without any tag".
        return self._by_key.get((tag, kind, key)) or self._by_key.get((None, kind, key))

    def _lookup_host(self, tag: AccessTag, host: str) -> AccessRule | None:
        try:
            domain = canonical_domain(host)
        except AddressError:
            return None
        candidates = [domain] if domain.startswith("[") else parent_domains(domain)
        for candidate in candidates:
            found = self._exact(tag, AccessKeyKind.HOST, candidate)
            if found is not None:
                return found
        return None

    def _lookup_network(
        self, tag: AccessTag, address: ipaddress.IPv4Address | ipaddress.IPv6Address
    ) -> AccessRule | None:
        for length in self._prefix_lengths.get(address.version, ()):
            network = ipaddress.ip_network((address, length), strict=False)
            found = self._by_network.get((tag, network)) or self._by_network.get((None, network))
            if found is not None:
                return found
        return None

    def _lookup_address(self, tag: AccessTag, address: Address, sep: str) -> AccessRule | None:
        user, detail = address.split_detail(sep)
        full = [address.key]
        locals_ = [f"{address.local_key}@"]
        if detail is not None:
            full.append(f"{fold_local(user)}@{address.domain}")
            locals_.append(f"{fold_local(user)}@")
        for key in full:
            found = self._exact(tag, AccessKeyKind.ADDRESS, key)
            if found is not None:
                return found
        skipped = self._lookup_host(tag, address.domain)
        if skipped is not None and skipped.action is not AccessAction.SKIP:
            return skipped
        for key in locals_:
            found = self._exact(tag, AccessKeyKind.LOCAL_PART, key)
            if found is not None:
                return found
        return skipped


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    bare = text.strip().strip("[]")
    if bare[:5].lower() == "ipv6:":
        bare = bare[5:]
    # A link-local peer comes with its zone ("fe80::1%eth0", RFC 4007 §11). The
    # zone is not part of the address: left on, the /128 key of that very host
    # would not match (ipaddress compares the scope too).
    bare = bare.partition("%")[0]
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# -- parsing ----------------------------------------------------------------


def parse_access_key(written: str) -> AccessKey:
    """Parse one access key (``Connect:192.168.1``, ``From:user@``...); ValueError if bad."""
    tag: AccessTag | None = None
    rest = written
    tagged = _TAG_PREFIX.match(written)
    if tagged:
        tag = AccessTag[tagged.group(1).upper()]
        rest = written[tagged.end() :]
    elif ":" in written and not written.lower().startswith("ipv6:") and not written.startswith("["):
        raise ValueError(f"unknown tag in {written!r} (known: Connect:, From:, To:)")
    if not rest:
        raise ValueError(f"empty key after the tag in {written!r}")
    key = _parse_key_body(tag, rest)
    if key.kind not in _KINDS_FOR_TAG[tag]:
        tag_name = tag.value if tag is not None else "an untagged key"  # bare keys take any kind
        raise ValueError(f"a {key.kind.value} key cannot be used with {tag_name}:")
    return key


def _parse_key_body(tag: AccessTag | None, rest: str) -> AccessKey:
    if rest == "<>":
        return AccessKey(tag, AccessKeyKind.NULL_SENDER, "<>")
    if rest[:5].lower() == "ipv6:":
        network6 = _parse_ipv6_key(rest[5:])
        return AccessKey(tag, AccessKeyKind.NETWORK, str(network6), network6)
    if _IPV4_PREFIX.fullmatch(rest):
        network4 = _parse_ipv4_key(rest)
        return AccessKey(tag, AccessKeyKind.NETWORK, str(network4), network4)
    if "@" in rest and not rest.startswith("["):
        try:
            if rest.endswith("@"):
                local = parse_local_part(rest[:-1])
                return AccessKey(tag, AccessKeyKind.LOCAL_PART, f"{fold_local(local)}@")
            return AccessKey(tag, AccessKeyKind.ADDRESS, parse_address(rest).key)
        except AddressError as exc:
            raise ValueError(str(exc)) from exc
    if rest.startswith("."):
        raise ValueError(f"{rest!r}: write the domain without a leading dot; it covers subdomains")
    try:
        return AccessKey(tag, AccessKeyKind.HOST, canonical_domain(rest))
    except AddressError as exc:
        raise ValueError(str(exc)) from exc


def _parse_ipv4_key(text: str) -> ipaddress.IPv4Network:
    # cf/README: "Connect:192.168.212 REJECT" covers 192.168.212.*; a dotted
    # prefix of n octets is a /8n network. CIDR is our extension.
    try:
        if "/" in text:
            return ipaddress.IPv4Network(text, strict=True)
        octets = text.split(".")
        padded = ".".join([*octets, *["0"] * (4 - len(octets))])
        return ipaddress.IPv4Network(f"{padded}/{8 * len(octets)}")
    except ValueError as exc:
        raise ValueError(f"invalid IPv4 address or prefix {text!r}: {exc}") from exc


def _parse_ipv6_key(text: str) -> ipaddress.IPv6Network:
    # cf/README: "IPv6:2002:c0a8:02c7 RELAY" covers 2002:c0a8:02c7::/48 (a
    # prefix of 16-bit words); a full address ("::" or 8 words) is one host.
    try:
        if "/" in text:
            return ipaddress.IPv6Network(text, strict=True)
        if "::" in text or text.count(":") == 7:
            return ipaddress.IPv6Network(f"{ipaddress.IPv6Address(text)}/128")
        if not _IPV6_WORDS.fullmatch(text):
            raise ValueError("expected 16-bit hexadecimal words separated by ':'")
        words = text.split(":")
        padded = ":".join([*words, *["0"] * (8 - len(words))])
        return ipaddress.IPv6Network(f"{ipaddress.IPv6Address(padded)}/{16 * len(words)}")
    except ValueError as exc:
        raise ValueError(f"invalid IPv6 address or prefix {text!r}: {exc}") from exc


def parse_access_action(value: str) -> tuple[AccessAction, Reply | None]:
    """Parse the right-hand side; ValueError if it is not an action we know."""
    head, _, spec = value.partition(":")
    if head.upper() == "ERROR" and spec:
        try:
            return AccessAction.ERROR, parse_error_reply(spec, default_text="Access denied")
        except ErrorReplySyntaxError as exc:
            raise ValueError(str(exc)) from exc
    word = value.strip().upper()
    if word in ("OK", "RELAY", "DISCARD", "SKIP"):
        return AccessAction[word], None
    if word == "REJECT":
        return AccessAction.REJECT, Replies.ACCESS_DENIED
    raise ValueError(
        f"unknown action {value!r} (expected OK, RELAY, REJECT, DISCARD, SKIP or ERROR:...)"
    )


def _parse_rule(line: TableLine) -> AccessRule:
    written, value = split_key_value(line)
    try:
        key = parse_access_key(written)
        action, reply = parse_access_action(value)
    except ValueError as exc:
        raise line.error(str(exc)) from exc
    if action is AccessAction.SKIP and key.kind not in (
        AccessKeyKind.HOST,
        AccessKeyKind.NETWORK,
    ):
        # cf/README: "SKIP ... can only be used for host/domain names and IP addresses/nets."
        raise line.error("SKIP can only be used for host, domain and network keys")
    return AccessRule(key, written, action, reply, line.origin)


def parse_access(text: str, *, source: str) -> AccessTable:
    """Parse the text of an ``access`` file; raise ``TableError`` naming file:line."""
    rules: list[AccessRule] = []
    by_key: dict[tuple[AccessTag | None, AccessKeyKind, str], AccessRule] = {}
    by_network: dict[tuple[AccessTag | None, IpNetwork], AccessRule] = {}
    lengths: dict[int, set[int]] = {4: set(), 6: set()}
    errors: list[TableError] = []
    for line in logical_lines(text, source=source):
        try:
            rule = _parse_rule(line)
        except TableError as exc:
            errors.append(exc)
            continue
        key = rule.key
        previous = (
            by_network.get((key.tag, key.network))
            if key.network is not None
            else by_key.get((key.tag, key.kind, key.key))
        )
        if previous is not None:
            errors.append(
                line.error(f"duplicate key {rule.written_key!r} (first at {previous.origin})")
            )
            continue
        if key.network is not None:
            by_network[(key.tag, key.network)] = rule
            lengths[key.network.version].add(key.network.prefixlen)
        else:
            by_key[(key.tag, key.kind, key.key)] = rule
        rules.append(rule)
    raise_collected(errors)
    return AccessTable(
        tuple(rules),
        MappingProxyType(by_key),
        MappingProxyType(by_network),
        MappingProxyType({v: tuple(sorted(ls, reverse=True)) for v, ls in lengths.items()}),
    )
