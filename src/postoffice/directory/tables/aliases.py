"""``aliases``: local names that expand to lists of recipients, programs and files.

Owns the parse of the aliases file and of the ``:include:`` files it names,
into an immutable table of ``AliasEntry`` keyed by the lower-cased local name.
The syntax is aliases(5) as sendmail reads it:

    name: target, target, ...        # lines starting with a blank continue it
    staff: alice, bob,
           carol@other.test
    list: :include:/etc/mail/list.txt
    prog: "|/usr/bin/vacation alice", /var/log/mail-copy, \\alice

Targets: a local name, an address, ``|command`` or ``"|command args"``, an
absolute ``/file``, ``\\name`` (deliver to the mailbox, no further aliasing) and
``:include:path`` (a file of targets, one or more a line, ``#`` comments; a
relative path is taken against the directory of the file that names it).

Invariants and decisions:
- Keys are local names only; a key with ``@`` is an error (that is the
  virtusertable's job). A duplicate key is an error naming both lines (sendmail
  only warns; we refuse so that the table is never ambiguous).
- Every target remembers its ``Origin`` and whether it came from an include
  file: the routing decision never runs a program or writes a file named in an
  include file (sendmail cf/README "SECURITY NOTES": include files are less
  trusted).
- Includes nest at most ``MAX_INCLUDE_DEPTH`` deep and never in a cycle; an
  include error names the include file and its line.
- Includes are expanded when the table is read, so their cost is bounded
  there (DESIGN.md §5): each include file is read once per parse (however
  often it is named), at most ``MAX_INCLUDE_FILES`` files and
  ``MAX_INCLUDE_BYTES`` in all, and the targets that includes add to the
  table number at most ``MAX_INCLUDED_TARGETS``. Without this, five files that
  each name the next one twenty times expand to 20**5 targets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType

from postoffice.core.address import Address, closing_quote, fold_local, parse_address, parse_local
from postoffice.core.errors import AddressError, TableError
from postoffice.directory.tables.lines import (
    Origin,
    TableLine,
    empty_mapping,
    logical_lines,
    raise_collected,
    source_name,
)

MAX_INCLUDE_DEPTH = 5
MAX_INCLUDE_FILES = 10_000
MAX_INCLUDE_BYTES = 64 * 1024 * 1024
MAX_INCLUDED_TARGETS = 1_000_000
INCLUDE_PREFIX = ":include:"

IncludeReader = Callable[[Path], str]
"""Reads an include file's text; raises ``OSError`` or ``TableError``."""


class AliasTargetKind(Enum):
    LOCAL = "local name"
    ADDRESS = "address"
    PROGRAM = "program"
    FILE = "file"


@dataclass(frozen=True, slots=True)
class AliasTarget:
    """One parsed right-hand-side item of an alias."""

    kind: AliasTargetKind
    text: str  # the local name, the address, the command or the path
    origin: Origin
    from_include: bool = False
    no_alias: bool = False  # ``\\name``: straight to the mailbox
    address: Address | None = None  # for ADDRESS

    def __str__(self) -> str:
        if self.kind is AliasTargetKind.PROGRAM:
            return f"|{self.text}"
        if self.no_alias:
            return f"\\{self.text}"
        return self.text


@dataclass(frozen=True, slots=True)
class AliasEntry:
    name: str
    targets: tuple[AliasTarget, ...]
    origin: Origin


@dataclass(frozen=True, slots=True, eq=False)
class Aliases:
    """The parsed aliases file (with its includes expanded)."""

    entries: Mapping[str, AliasEntry] = field(default_factory=empty_mapping)
    include_files: tuple[Path, ...] = ()

    def lookup(self, name: str) -> AliasEntry | None:
        return self.entries.get(fold_local(name))

    def __len__(self) -> int:
        return len(self.entries)

    def summary(self) -> str:
        longest = max((len(entry.targets) for entry in self.entries.values()), default=0)
        return f"{len(self.entries)} aliases, longest {longest} targets"


def parse_aliases(
    text: str,
    *,
    source: str,
    base_dir: Path | None = None,
    read_include: IncludeReader | None = None,
) -> Aliases:
    """Parse an aliases file; ``read_include`` reads ``:include:`` files (None: refuse them)."""
    parser = _AliasParser(base_dir or Path(source).parent, read_include)
    entries: dict[str, AliasEntry] = {}
    errors: list[TableError] = []
    for line in logical_lines(text, source=source, continuation=True):
        try:
            entry = parser.parse_entry(line)
        except TableError as exc:
            errors.append(exc)
            continue
        previous = entries.get(entry.name)
        if previous is not None:
            errors.append(
                line.error(f"duplicate alias {entry.name!r} (first at {previous.origin})")
            )
            continue
        entries[entry.name] = entry
    raise_collected(errors)
    return Aliases(MappingProxyType(entries), tuple(parser.include_files))


class _AliasParser:
    def __init__(self, base_dir: Path, read_include: IncludeReader | None):
        self.base_dir = base_dir
        self.read_include = read_include
        self.include_files: list[Path] = []
        self._texts: dict[Path, str] = {}  # each include file read once per parse
        # (path, nesting depth) -> its expansion: the same at any depth it was
        # checked at, and a cached expansion is known to be free of cycles.
        self._expanded: dict[tuple[Path, int], tuple[AliasTarget, ...]] = {}
        self._bytes_read = 0
        self._included_targets = 0

    def parse_entry(self, line: TableLine) -> AliasEntry:
        colon = _find_unquoted(line.text, ":")
        if colon <= 0:
            raise line.error("expected 'name: target, target, ...'")
        name = self._parse_name(line, line.text[:colon].strip())
        targets = self._parse_targets(line, line.text[colon + 1 :], self.base_dir, (), False)
        if not targets:
            raise line.error(f"alias {name!r} has no targets")
        return AliasEntry(name, tuple(targets), line.origin)

    @staticmethod
    def _parse_name(line: TableLine, written: str) -> str:
        if "@" in written and not written.startswith('"'):
            raise line.error(
                f"alias name {written!r} contains '@': aliases are local names "
                "(use virtusertable for user@domain)"
            )
        try:
            return fold_local(parse_local(written))
        except AddressError as exc:
            raise line.error(f"invalid alias name: {exc}") from exc

    def _parse_targets(
        self,
        line: TableLine,
        text: str,
        base_dir: Path,
        stack: tuple[Path, ...],
        from_include: bool,
    ) -> list[AliasTarget]:
        targets: list[AliasTarget] = []
        for item in _split_unquoted(line, text):
            if item[: len(INCLUDE_PREFIX)].lower() == INCLUDE_PREFIX:
                targets.extend(self._include(line, item[len(INCLUDE_PREFIX) :], base_dir, stack))
            else:
                targets.append(_parse_target(line, item, from_include))
        return targets

    def _include(
        self, line: TableLine, written: str, base_dir: Path, stack: tuple[Path, ...]
    ) -> list[AliasTarget]:
        written = written.strip()
        if written.startswith('"') and written.endswith('"') and len(written) >= 2:
            written = written[1:-1]
        if not written:
            raise line.error(":include: without a file name")
        if self.read_include is None:
            raise line.error(":include: is not allowed here")
        path = Path(written)
        if not path.is_absolute():
            path = base_dir / path
        if path in stack:
            raise line.error(f":include: cycle through {path}")
        if len(stack) >= MAX_INCLUDE_DEPTH:
            raise line.error(f":include: nested deeper than {MAX_INCLUDE_DEPTH} files")
        cached = self._expanded.get((path, len(stack)))
        if cached is None:
            included = self._read(line, path, self.read_include)
            found: list[AliasTarget] = []
            for inner in logical_lines(included, source=source_name(path)):
                found.extend(
                    self._parse_targets(inner, inner.text, path.parent, (*stack, path), True)
                )
            cached = self._expanded[(path, len(stack))] = tuple(found)
        self._included_targets += len(cached)
        if self._included_targets > MAX_INCLUDED_TARGETS:
            raise line.error(
                f":include: files add more than {MAX_INCLUDED_TARGETS} targets to the table"
            )
        return list(cached)

    def _read(self, line: TableLine, path: Path, read_include: IncludeReader) -> str:
        text = self._texts.get(path)
        if text is not None:
            return text
        if len(self._texts) >= MAX_INCLUDE_FILES:
            raise line.error(f"more than {MAX_INCLUDE_FILES} :include: files")
        try:
            text = read_include(path)
        except OSError as exc:
            raise line.error(f"cannot read :include: file {path}: {exc.strerror or exc}") from exc
        self._bytes_read += len(text)
        if self._bytes_read > MAX_INCLUDE_BYTES:
            raise line.error(f":include: files larger than {MAX_INCLUDE_BYTES} bytes in all")
        self._texts[path] = text
        self.include_files.append(path)
        return text


def _parse_target(line: TableLine, item: str, from_include: bool) -> AliasTarget:
    origin = line.origin
    unquoted = item
    if item.startswith('"'):
        end = closing_quote(item)
        if end == len(item) - 1:
            unquoted = item[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            if not unquoted.startswith(("|", "/")):
                unquoted = item  # a quoted local part: parse it as one below
    if unquoted.startswith("|"):
        command = unquoted[1:].strip()
        if not command:
            raise line.error("empty program target '|'")
        return AliasTarget(AliasTargetKind.PROGRAM, command, origin, from_include)
    if unquoted.startswith("/"):
        return AliasTarget(AliasTargetKind.FILE, unquoted, origin, from_include)
    no_alias = unquoted.startswith("\\")
    written = unquoted[1:] if no_alias else unquoted
    try:
        if "@" in written and not no_alias:
            address = parse_address(written)
            return AliasTarget(
                AliasTargetKind.ADDRESS, str(address), origin, from_include, address=address
            )
        name = parse_local(written)
    except AddressError as exc:
        raise line.error(f"invalid target {item!r}: {exc}") from exc
    return AliasTarget(AliasTargetKind.LOCAL, name, origin, from_include, no_alias=no_alias)


def _quotes_balanced(text: str) -> bool:
    in_quotes = False
    i = 0
    while i < len(text):
        if text[i] == "\\" and in_quotes:
            i += 2
            continue
        if text[i] == '"':
            in_quotes = not in_quotes
        i += 1
    return not in_quotes


def _find_unquoted(text: str, char: str) -> int:
    in_quotes = False
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and in_quotes:
            i += 2
            continue
        if c == '"':
            in_quotes = not in_quotes
        elif c == char and not in_quotes:
            return i
        i += 1
    return -1


def _split_unquoted(line: TableLine, text: str) -> list[str]:
    """Split on commas outside double quotes; empty items (trailing commas) drop out."""
    items: list[str] = []
    rest = text
    while True:
        comma = _find_unquoted(rest, ",")
        item = (rest if comma < 0 else rest[:comma]).strip()
        if not _quotes_balanced(item):
            raise line.error(f"unterminated quote in {item!r}")
        if item:
            items.append(item)
        if comma < 0:
            return items
        rest = rest[comma + 1 :]
