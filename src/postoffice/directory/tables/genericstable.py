"""``genericstable``: rewriting outgoing sender addresses into their public form.

Owns the parse of the genericstable and its lookup (sendmail cf/README
"FEATURES", genericstable):

    alice                 alice.smith@example.com    # unqualified user name
    bob@host.example.com  bob@example.com            # a full address
    @old.example.com      %1@example.com             # a domain, %1 = local part
    list+*@example.com    list-%1@example.com        # %1 = the +detail

Lookup order for ``user+detail@domain``: the full address, ``user+*@domain``,
``@domain``, then the bare user name (cf/README: "full address, the domain ...
or the unqualified username (tried in the order mentioned)"). A new address
without a domain is qualified with the caller's default domain, as sendmail
qualifies it with $j. Which addresses are looked up at all (sendmail's class
{G}) is the caller's decision.

Invariants: immutable; exact keys are dict lookups; ``%1`` is only ever
inserted into the local part of the value (``template``), so a quoted local
part holding ``@`` cannot change the domain of the rewritten address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from postoffice.core.address import Address, canonical_domain, fold_local, parse_local
from postoffice.core.errors import AddressError, TableError
from postoffice.directory.tables.lines import (
    Origin,
    TableLine,
    empty_mapping,
    logical_lines,
    raise_collected,
    split_key_value,
)
from postoffice.directory.tables.template import AddressTemplate, parse_template


@dataclass(frozen=True, slots=True)
class GenericsEntry:
    key: str  # canonical: user, user@domain, user+*@domain or @domain
    target: str  # as written, may hold %1
    origin: Origin
    template: AddressTemplate


@dataclass(frozen=True, slots=True)
class GenericsMatch:
    entry: GenericsEntry
    address: Address  # the rewritten address, qualified


@dataclass(frozen=True, slots=True, eq=False)
class GenericsTable:
    entries: Mapping[str, GenericsEntry] = field(default_factory=empty_mapping)

    def __len__(self) -> int:
        return len(self.entries)

    def summary(self) -> str:
        return f"{len(self.entries)} entries"

    def lookup(
        self, address: Address, *, default_domain: str, detail_separator: str = "+"
    ) -> GenericsMatch | None:
        """The public form of ``address``, or None when no entry applies."""
        user, detail = address.split_detail(detail_separator)
        candidates: list[tuple[str, str]] = [(address.key, address.local)]
        if detail is not None:
            candidates.append((f"{fold_local(user)}+*@{address.domain}", detail))
        candidates += [(f"@{address.domain}", address.local), (address.local_key, address.local)]
        for key, fill in candidates:
            entry = self.entries.get(key)
            if entry is None:
                continue
            try:
                rewritten = entry.template.fill((fill,), default_domain=default_domain)
                return GenericsMatch(entry, rewritten)
            except AddressError:
                continue  # %1 made it invalid (an odd local part): no rewrite
        return None


def _parse_key(line: TableLine, written: str) -> str:
    try:
        at = written.rfind("@")
        if at < 0:
            return fold_local(parse_local(written))
        domain = canonical_domain(written[at + 1 :])
        local = written[:at]
        if not local:
            return f"@{domain}"
        if local.endswith("+*") and len(local) > 2:
            return f"{fold_local(parse_local(local[:-2]))}+*@{domain}"
        return f"{fold_local(parse_local(local))}@{domain}"
    except AddressError as exc:
        raise line.error(f"invalid key {written!r}: {exc}") from exc


def _parse_target(line: TableLine, target: str) -> AddressTemplate:
    try:
        return parse_template(target, allowed="1")
    except AddressError as exc:
        raise line.error(f"invalid target {target!r}: {exc}") from exc


def parse_genericstable(text: str, *, source: str) -> GenericsTable:
    """Parse the text of a ``genericstable``; raise ``TableError`` naming file:line."""
    entries: dict[str, GenericsEntry] = {}
    errors: list[TableError] = []
    for line in logical_lines(text, source=source):
        try:
            written, target = split_key_value(line)
            key = _parse_key(line, written)
            template = _parse_target(line, target)
        except TableError as exc:
            errors.append(exc)
            continue
        previous = entries.get(key)
        if previous is not None:
            errors.append(line.error(f"duplicate key {written!r} (first at {previous.origin})"))
            continue
        entries[key] = GenericsEntry(key, target, line.origin, template)
    raise_collected(errors)
    return GenericsTable(MappingProxyType(entries))
