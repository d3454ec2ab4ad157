"""``local-host-names``: the domains this host takes mail for (sendmail class {w}).

Owns the parse of the file (sendmail cf/README "ACCEPTING MAIL FOR MULTIPLE
NAMES": one name a line, ``#`` comments) into an immutable set of canonical
domains (``canonical_domain``: lower case, A-labels), each remembering the
line it came from. A repeated name is harmless and keeps its first line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from postoffice.core.address import canonical_domain
from postoffice.core.errors import AddressError, TableError
from postoffice.directory.tables.lines import Origin, empty_mapping, logical_lines, raise_collected


@dataclass(frozen=True, slots=True, eq=False)
class LocalHostNames:
    """The parsed ``local-host-names`` file: canonical domain -> where it was written."""

    origins: Mapping[str, Origin] = field(default_factory=empty_mapping)

    def __contains__(self, domain: object) -> bool:
        return domain in self.origins

    def __iter__(self) -> Iterator[str]:
        return iter(self.origins)

    def __len__(self) -> int:
        return len(self.origins)

    @property
    def domains(self) -> frozenset[str]:
        return frozenset(self.origins)

    def summary(self) -> str:
        return f"{len(self)} domains"


def parse_local_host_names(text: str, *, source: str) -> LocalHostNames:
    """Parse the text of a ``local-host-names`` file; raise ``TableError`` naming file:line."""
    origins: dict[str, Origin] = {}
    errors: list[TableError] = []
    for line in logical_lines(text, source=source):
        if len(line.text.split()) != 1:
            errors.append(line.error("expected one domain name on the line"))
            continue
        try:
            domain = canonical_domain(line.text)
        except AddressError as exc:
            errors.append(line.error(str(exc)))
            continue
        origins.setdefault(domain, line.origin)
    raise_collected(errors)
    return LocalHostNames(MappingProxyType(origins))
