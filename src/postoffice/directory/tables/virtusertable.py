"""``virtusertable``: per-domain aliasing for virtual domains.

Owns the parse of the virtusertable and its lookup order. Syntax and
semantics are sendmail's FEATURE(`virtusertable') (cf/README "FEATURES"):

    info@example.com     alice                  # a local name (routed again)
    sales@example.com    bob@other.test         # an address (routed again)
    @example.net         %1@example.org         # catch-all, %1 = the local part
    old+*@example.com    new+%2@example.com     # %2 = detail, %3 = "+detail"
    joe@example.com      error:nouser User unknown
    jax@example.com      error:5.7.0:550 Address invalid

Lookup order for ``user+detail@domain`` (sendmail's virtuser rules in
cf/m4/proto.m4): ``user+detail@domain``, ``user++@domain`` (non-empty detail
only), ``user+*@domain``, ``user@domain``, ``++@domain`` (non-empty detail),
``+*@domain``, ``@domain``. Without a detail: ``user@domain``, ``@domain``
(``%1`` = the local part). With a detail, ``%1`` = user, ``%2`` = detail,
``%3`` = separator + detail; for the exact match ``%1`` is the whole local part.

Invariants: a target is only ever a local name, an address or an error reply;
``|program``, ``/file`` and ``:include:`` targets are refused here (they are an
aliases-file privilege). Keys are compared in lower case. A placeholder value
is only ever inserted into the target's local part (``template``): a quoted
local part holding ``@`` cannot move the mail to another domain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from postoffice.core.address import Address, canonical_domain, fold_local, parse_local
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
from postoffice.directory.tables.template import AddressTemplate, parse_template

_FORBIDDEN_TARGET_PREFIXES = ("|", "/", "\\", ":include:")


class VirtualTargetKind(Enum):
    LOCAL = "local name"
    ADDRESS = "address"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class VirtualEntry:
    key: str  # canonical: local@domain, user+*@domain, @domain ...
    target: str  # the template as written (for ERROR: the whole error: text)
    kind: VirtualTargetKind
    reply: Reply | None
    origin: Origin
    template: AddressTemplate | None = None  # None for error targets


@dataclass(frozen=True, slots=True)
class VirtualMatch:
    """The result of one virtusertable lookup."""

    entry: VirtualEntry
    target: str | None  # the template with %1..%3 filled in (for traces); None for errors
    reply: Reply | None
    stripped_detail: str | None  # the detail, when the key matched without it
    target_uses_detail: bool  # the template placed the detail itself (%2/%3)
    values: tuple[str, str, str] = ("", "", "")  # %1, %2, %3

    def address(self, *, default_domain: str) -> Address:
        """The new address; values fill the local part only (AddressError if invalid)."""
        if self.entry.template is None:
            raise AddressError(f"{self.entry.key} has an error target, not an address")
        return self.entry.template.fill(self.values, default_domain=default_domain)


@dataclass(frozen=True, slots=True, eq=False)
class VirtualUserTable:
    entries: Mapping[str, VirtualEntry] = field(default_factory=empty_mapping)

    def __len__(self) -> int:
        return len(self.entries)

    def summary(self) -> str:
        catch_all = sum(1 for key in self.entries if key.startswith("@"))
        return f"{len(self.entries)} entries ({catch_all} catch-all)"

    def lookup(self, address: Address, detail_separator: str = "+") -> VirtualMatch | None:
        """The entry for ``address`` in sendmail's order (module doc), filled in."""
        domain = address.domain
        exact = self.entries.get(address.key)
        if exact is not None:
            return _match(exact, (address.local, "", ""), None)
        user, detail = address.split_detail(detail_separator)
        if detail is None:
            catch_all = self.entries.get(f"@{domain}")
            if catch_all is not None:
                return _match(catch_all, (address.local, "", ""), None)
            return None
        lowered = fold_local(user)
        keys = []
        if detail:
            keys.append(f"{lowered}++@{domain}")
        keys += [f"{lowered}+*@{domain}", f"{lowered}@{domain}"]
        if detail:
            keys.append(f"++@{domain}")
        keys += [f"+*@{domain}", f"@{domain}"]
        values = (user, detail, f"{detail_separator}{detail}")
        for key in keys:
            entry = self.entries.get(key)
            if entry is not None:
                return _match(entry, values, detail)
        return None


def _match(entry: VirtualEntry, values: tuple[str, str, str], detail: str | None) -> VirtualMatch:
    if entry.kind is VirtualTargetKind.ERROR or entry.template is None:
        return VirtualMatch(entry, None, entry.reply, detail, False, values)
    uses_detail = bool(entry.template.uses & {"2", "3"})
    shown = entry.template.render(values)
    return VirtualMatch(entry, shown, None, detail, uses_detail, values)


def parse_virtual_key(written: str) -> str:
    """Canonical key for ``user@domain``, ``@domain``, ``user+*@domain``...; ValueError if bad."""
    at = written.rfind("@")
    if at < 0:
        raise ValueError(f"key {written!r} has no '@domain' (expected user@domain or @domain)")
    try:
        domain = canonical_domain(written[at + 1 :])
        local = written[:at]
        if not local:
            return f"@{domain}"
        for wildcard in ("+*", "++"):
            # cf/README: "+" matches only a non-empty detail, "*" also an empty one.
            if local.endswith(wildcard):
                user = local[: -len(wildcard)]
                return f"{fold_local(parse_local(user)) if user else ''}{wildcard}@{domain}"
        return f"{fold_local(parse_local(local))}@{domain}"
    except AddressError as exc:
        raise ValueError(f"invalid key {written!r}: {exc}") from exc


def _parse_target(
    line: TableLine, target: str
) -> tuple[VirtualTargetKind, Reply | None, AddressTemplate | None]:
    if target[:6].lower() == "error:":
        try:
            reply = parse_error_reply(target[6:], default_text="Address rejected")
        except ErrorReplySyntaxError as exc:
            raise line.error(str(exc)) from exc
        return VirtualTargetKind.ERROR, reply, None
    if target.lower().startswith(_FORBIDDEN_TARGET_PREFIXES):
        raise line.error(
            f"target {target!r}: virtusertable targets are addresses or local names "
            "(programs, files and includes belong in the aliases file)"
        )
    try:
        template = parse_template(target, allowed="123")
    except AddressError as exc:
        raise line.error(f"invalid target {target!r}: {exc}") from exc
    kind = VirtualTargetKind.LOCAL if template.domain is None else VirtualTargetKind.ADDRESS
    return kind, None, template


def parse_virtusertable(text: str, *, source: str) -> VirtualUserTable:
    """Parse the text of a ``virtusertable``; raise ``TableError`` naming file:line."""
    entries: dict[str, VirtualEntry] = {}
    errors: list[TableError] = []
    for line in logical_lines(text, source=source):
        try:
            written, target = split_key_value(line)
            try:
                key = parse_virtual_key(written)
            except ValueError as exc:
                raise line.error(str(exc)) from exc
            kind, reply, template = _parse_target(line, target)
        except TableError as exc:
            errors.append(exc)
            continue
        previous = entries.get(key)
        if previous is not None:
            errors.append(line.error(f"duplicate key {written!r} (first at {previous.origin})"))
            continue
        entries[key] = VirtualEntry(key, target, kind, reply, line.origin, template)
    raise_collected(errors)
    return VirtualUserTable(MappingProxyType(entries))
