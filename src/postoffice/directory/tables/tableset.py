"""``TableSet``: the six table files of one directory, parsed, and reloaded when they change.

Owns reading the files (``local-host-names``, ``access``, ``aliases``,
``virtusertable``, ``mailertable``, ``genericstable``, and the ``:include:``
files of aliases), the reload-on-change rule and the validation report that
``postoffice check``, ``newaliases`` and ``makemap`` print.

Rules and invariants:
- A missing file is an empty table (sendmail with the feature unused).
- No makemap step: ``snapshot()`` stats every file it depends on (mtime_ns,
  ctime_ns, size, inode: a handful of ``stat`` calls, no reads) and re-parses
  only the tables whose files changed, include files included. ctime catches
  an edit whose mtime was put back (``touch -r``, ``rsync -t --inplace``).
- Throttle: with ``check_interval`` > 0 (the server uses
  ``SERVER_CHECK_INTERVAL``, 1 s) ``snapshot()`` looks at the files at most
  once per interval (monotonic clock) and serves the current snapshot in
  between, so an edit is seen at most ``check_interval`` late instead of
  costing ~30 ``stat`` calls per message. ``refresh()`` always checks. The
  default (0) checks at every ``snapshot()``.
- Timestamps are coarse (a clock tick on ext4, 1 s or 2 s elsewhere): a
  same-size rewrite within the tick of the read leaves every ``stat`` field
  as it was. A file whose mtime is less than ``RACY_WINDOW_NS`` older than the
  moment it was read is "racily clean" (as git calls it): its content hash is
  kept and compared on each check until its mtime is safely in the past.
- A file that cannot even be stat'ed (a path component became a file, a
  permission was removed) is a state of its own, watched like any other: the
  table fails to load (the previous one is served) and is retried when the
  state changes; ``snapshot()`` never raises for it.
- The first load must succeed: an error raises ``TableError`` naming file:line.
  A later reload that fails keeps serving the previous good table and records
  the error (``errors``), so that an administrator's typo never stops a running
  server; the bad file is not re-parsed until it changes again.
- A ``TableSnapshot`` is immutable; the routing decision reads only snapshots,
  so one decision never sees half of a reload.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

from postoffice.core.errors import TableError
from postoffice.directory.tables.access import AccessTable, parse_access
from postoffice.directory.tables.aliases import Aliases, parse_aliases
from postoffice.directory.tables.genericstable import GenericsTable, parse_genericstable
from postoffice.directory.tables.lines import (
    TableErrorList,
    decode_table,
    flatten_errors,
    source_name,
)
from postoffice.directory.tables.localhostnames import LocalHostNames, parse_local_host_names
from postoffice.directory.tables.mailertable import Mailertable, parse_mailertable
from postoffice.directory.tables.virtusertable import VirtualUserTable, parse_virtusertable

LOCAL_HOST_NAMES: Final = "local-host-names"
ACCESS: Final = "access"
ALIASES: Final = "aliases"
VIRTUSERTABLE: Final = "virtusertable"
MAILERTABLE: Final = "mailertable"
GENERICSTABLE: Final = "genericstable"
TABLE_FILE_NAMES: Final = (
    LOCAL_HOST_NAMES,
    ACCESS,
    ALIASES,
    VIRTUSERTABLE,
    MAILERTABLE,
    GENERICSTABLE,
)

_T = TypeVar("_T")

# (mtime_ns, ctime_ns, size, inode); (-1, errno, 0, 0) = cannot stat; None = missing
Fingerprint = tuple[int, int, int, int] | None
# Longer than the coarsest timestamp granularity in use (FAT: 2 s).
RACY_WINDOW_NS: Final = 3_000_000_000
Table = LocalHostNames | AccessTable | Aliases | VirtualUserTable | Mailertable | GenericsTable


@dataclass(frozen=True, slots=True)
class TableSnapshot:
    """The six parsed tables at one moment; what ``route()`` reads."""

    local_host_names: LocalHostNames = field(default_factory=LocalHostNames)
    access: AccessTable = field(default_factory=AccessTable)
    aliases: Aliases = field(default_factory=Aliases)
    virtusertable: VirtualUserTable = field(default_factory=VirtualUserTable)
    mailertable: Mailertable = field(default_factory=Mailertable)
    genericstable: GenericsTable = field(default_factory=GenericsTable)


@dataclass(frozen=True, slots=True)
class TableCount:
    """One line of the check report: ``aliases: 12 aliases, longest 3 targets``."""

    name: str
    path: Path
    present: bool
    entries: int | None  # None when the file has errors
    summary: str

    def __str__(self) -> str:
        return f"{self.name}: {self.summary}"


@dataclass(frozen=True, slots=True)
class TableCheck:
    """The result of validating every table file."""

    errors: tuple[TableError, ...]
    counts: tuple[TableCount, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class Seen:
    """What was read of one file: its fingerprint, and its hash while racily clean."""

    fingerprint: Fingerprint
    digest: bytes | None = None


Watched = dict[Path, Seen]


@dataclass(frozen=True, slots=True)
class _Loaded:
    table: Table
    fingerprints: Watched


def fingerprint(path: Path) -> Fingerprint:
    """The change detector of one file (see ``Fingerprint``); never raises."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return (-1, exc.errno or 0, 0, 0)
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


# The server's table freshness check: edits are seen at most this late.
SERVER_CHECK_INTERVAL: Final = 1.0


class TableSet:
    """The tables of one directory, reloaded on change (see module doc)."""

    def __init__(
        self,
        directory: Path | str,
        *,
        check_interval: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.directory = Path(directory)
        self.check_interval = check_interval
        self._monotonic = monotonic
        self._next_check = float("-inf")
        self._loaded: dict[str, _Loaded] = {}
        self._failed: dict[str, tuple[TableError, Watched]] = {}
        errors: list[TableError] = []
        for name in TABLE_FILE_NAMES:
            fingerprints: Watched = {}
            try:
                self._loaded[name] = _Loaded(self._parse(name, fingerprints), fingerprints)
            except TableError as exc:
                errors.extend(flatten_errors(exc))
        if errors:
            raise errors[0] if len(errors) == 1 else TableErrorList(errors)
        self._snapshot = self._build_snapshot()

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def errors(self) -> tuple[TableError, ...]:
        """Errors of the last failed reload of each table still serving its older version."""
        return tuple(error for error, _ in self._failed.values())

    def snapshot(self) -> TableSnapshot:
        """The current tables, after reloading any whose files changed.

        With a ``check_interval`` the files are looked at only when the last
        check is at least that old (see the module docstring).
        """
        if self.check_interval <= 0:
            self.refresh()
            return self._snapshot
        now = self._monotonic()
        if now >= self._next_check:
            self._next_check = now + self.check_interval
            self.refresh()
        return self._snapshot

    def refresh(self) -> bool:
        """Reload the tables whose files changed; True when a table was replaced."""
        replaced = False
        for name in TABLE_FILE_NAMES:
            failed = self._failed.get(name)
            watched = failed[1] if failed is not None else self._loaded[name].fingerprints
            if not _changed(watched):
                continue
            fingerprints: Watched = {}
            try:
                table = self._parse(name, fingerprints)
            except TableError as exc:
                self._failed[name] = (exc, fingerprints)
                continue
            self._failed.pop(name, None)
            self._loaded[name] = _Loaded(table, fingerprints)
            replaced = True
        if replaced:
            self._snapshot = self._build_snapshot()
        return replaced

    def check(self) -> TableCheck:
        """Parse every file afresh (served tables untouched); all errors and entry counts."""
        return check_tables(self.directory)

    def _build_snapshot(self) -> TableSnapshot:
        def get(name: str) -> Table:
            return self._loaded[name].table

        return TableSnapshot(
            local_host_names=_as(get(LOCAL_HOST_NAMES), LocalHostNames),
            access=_as(get(ACCESS), AccessTable),
            aliases=_as(get(ALIASES), Aliases),
            virtusertable=_as(get(VIRTUSERTABLE), VirtualUserTable),
            mailertable=_as(get(MAILERTABLE), Mailertable),
            genericstable=_as(get(GENERICSTABLE), GenericsTable),
        )

    def _parse(self, name: str, fingerprints: Watched) -> Table:
        return parse_table(self.directory, name, fingerprints)


def check_tables(directory: Path) -> TableCheck:
    """Validate every table file in ``directory``: all errors and entry counts.

    Unlike ``TableSet(directory)`` it never raises for a table error, so
    ``postoffice check`` can report every fault at once.
    """
    errors: list[TableError] = []
    counts: list[TableCount] = []
    for name in TABLE_FILE_NAMES:
        path = directory / name
        present = fingerprint(path) is not None
        try:
            table = parse_table(directory, name, {})
        except TableError as exc:
            found = flatten_errors(exc)
            errors.extend(found)
            counts.append(TableCount(name, path, present, None, f"{len(found)} errors"))
            continue
        summary = table.summary() if present else "no file (empty)"
        counts.append(TableCount(name, path, present, len(table), summary))
    return TableCheck(tuple(errors), tuple(counts))


def parse_table(directory: Path, name: str, fingerprints: Watched) -> Table:
    """Parse table ``name`` of ``directory``, recording the fingerprint of each file read."""
    path = directory / name
    text = _read(path, fingerprints)
    source = source_name(path)
    if text is None:
        return _EMPTY[name]
    if name == ALIASES:

        def read_include(include: Path) -> str:
            included = _read(include, fingerprints)
            if included is None:
                raise FileNotFoundError(2, "No such file or directory", str(include))
            return included

        return parse_aliases(text, source=source, base_dir=path.parent, read_include=read_include)
    return _PARSERS[name](text, source)


def _read(path: Path, fingerprints: Watched) -> str | None:
    """Read a table file, recording its fingerprint first; None when it is missing."""
    # Stat before reading: a write that lands between the two only causes one
    # extra reload on the next access, never a missed change.
    seen = fingerprint(path)
    fingerprints[path] = Seen(seen)
    if seen is None:
        return None
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        fingerprints[path] = Seen(None)
        return None
    except OSError as exc:
        raise TableError(f"cannot read: {exc.strerror or exc}", file=path) from exc
    if _racy(seen):
        fingerprints[path] = Seen(seen, hashlib.sha256(data).digest())
    return decode_table(data, source=source_name(path))


def _racy(seen: Fingerprint) -> bool:
    """True when a write within the same timestamp tick could leave ``seen`` unchanged."""
    return seen is not None and seen[0] >= 0 and time.time_ns() - seen[0] < RACY_WINDOW_NS


def _changed(fingerprints: Watched) -> bool:
    """True when a watched file changed; settles racily clean files that did not."""
    for path, seen in fingerprints.items():
        now = fingerprint(path)
        if now != seen.fingerprint:
            return True
        if seen.digest is None:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            return True
        if hashlib.sha256(data).digest() != seen.digest:
            return True
        if not _racy(now):
            # Its mtime is now safely older than any later write's can be.
            fingerprints[path] = Seen(now)
    return False


def _as(table: Table, kind: type[_T]) -> _T:
    if not isinstance(table, kind):  # pragma: no cover - guarded by _PARSERS/_EMPTY
        raise TypeError(f"expected {kind.__name__}, got {type(table).__name__}")
    return table


_PARSERS: Final[dict[str, Callable[[str, str], Table]]] = {
    LOCAL_HOST_NAMES: lambda text, source: parse_local_host_names(text, source=source),
    ACCESS: lambda text, source: parse_access(text, source=source),
    VIRTUSERTABLE: lambda text, source: parse_virtusertable(text, source=source),
    MAILERTABLE: lambda text, source: parse_mailertable(text, source=source),
    GENERICSTABLE: lambda text, source: parse_genericstable(text, source=source),
}

_EMPTY: Final[dict[str, Table]] = {
    LOCAL_HOST_NAMES: LocalHostNames(),
    ACCESS: AccessTable(),
    ALIASES: Aliases(),
    VIRTUSERTABLE: VirtualUserTable(),
    MAILERTABLE: Mailertable(),
    GENERICSTABLE: GenericsTable(),
}
