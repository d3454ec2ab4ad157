"""The line reader every sendmail-format table shares.

Owns: decoding a table file's bytes, dropping comments and blank lines,
joining continuation lines (for the formats that have them), splitting a line
into its key and value, and the ``Origin`` (file and line number) that every
parsed entry keeps so that errors and ``postoffice explain`` can point at it.

Rules (the ``makemap`` text format, sendmail's makemap(8) and cf/README
"FORMAT OF FILES AND MAPS"; aliases(5) for continuation lines):
- A line whose first non-blank character is ``#`` is a comment. A ``#`` later
  in a line is data, as in makemap: ``ERROR:"550 no #1"`` keeps its ``#``.
- Blank lines are skipped.
- With ``continuation=True`` (aliases(5)), a line starting with a space or a
  tab continues the previous entry; the joined line keeps the number of its
  first physical line.
- The key ends at the first run of blanks (makemap) and the value is the rest,
  stripped.

Invariants: every ``TableLine`` has a non-empty ``text`` without control
characters other than tab, at most ``MAX_LOGICAL_LINE`` characters long; every
failure is a ``TableError`` naming the file and the line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from postoffice.core.errors import TableError

# DESIGN.md §5: every input has a bound. A table line (after joining the
# continuation lines of an alias) longer than this is refused.
MAX_LOGICAL_LINE = 65_536
# A whole table file larger than this is refused before it is parsed.
MAX_TABLE_BYTES = 16 * 1024 * 1024

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_BLANKS = re.compile(r"[ \t]+")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an entry was written: ``file:line``."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class TableLine:
    """One logical line of a table: comments dropped, continuations joined."""

    origin: Origin
    text: str

    def error(self, message: str) -> TableError:
        """A ``TableError`` for this line (the caller raises it)."""
        return TableError(message, file=self.origin.file, line=self.origin.line)


class TableErrorList(TableError):
    """Several faults found in one table; behaves as the first, keeps them all.

    Parsers collect one error per bad line so that ``postoffice check`` can list
    every fault at once; code that only wants to know "is the table good"
    catches ``TableError`` as usual.
    """

    def __init__(self, errors: list[TableError]):
        if not errors:
            raise ValueError("TableErrorList needs at least one error")
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first.detail + more, file=first.file, line=first.line)
        self.errors: tuple[TableError, ...] = tuple(errors)


def flatten_errors(error: TableError) -> tuple[TableError, ...]:
    """The individual errors inside ``error`` (itself when it is a single one)."""
    if isinstance(error, TableErrorList):
        return error.errors
    return (error,)


def raise_collected(errors: list[TableError]) -> None:
    """Raise the collected errors of one parse, if there are any."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise TableErrorList(errors)


def decode_table(data: bytes, *, source: str) -> str:
    """Decode a table file as UTF-8; a bad byte is an error naming its line."""
    if len(data) > MAX_TABLE_BYTES:
        raise TableError(f"file is larger than {MAX_TABLE_BYTES} bytes", file=source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TableError("not valid UTF-8 text", file=source, line=line) from exc


def logical_lines(text: str, *, source: str, continuation: bool = False) -> Iterator[TableLine]:
    """Yield the logical lines of ``text`` (see module doc); raise ``TableError``."""
    pending: list[str] = []
    pending_length = 0  # len(" ".join(pending)) + 1, kept as we go: linear, not quadratic
    pending_line = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        physical = raw.removesuffix("\r")
        if _CONTROL.search(physical):
            raise TableError("control character in line", file=source, line=number)
        stripped = physical.strip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        if continuation and physical[0] in " \t":
            # aliases(5): "Lines beginning with white space are continuation lines."
            if not pending:
                raise TableError(
                    "continuation line without an entry before it", file=source, line=number
                )
            pending.append(stripped)
            pending_length += len(stripped) + 1
            _check_length(pending_length, source, pending_line)
            continue
        if pending:
            yield TableLine(Origin(source, pending_line), " ".join(pending))
        pending = [stripped]
        pending_length = len(stripped) + 1
        pending_line = number
        _check_length(pending_length, source, pending_line)
    if pending:
        yield TableLine(Origin(source, pending_line), " ".join(pending))


def _check_length(length: int, source: str, line: int) -> None:
    if length > MAX_LOGICAL_LINE:
        raise TableError(f"line longer than {MAX_LOGICAL_LINE} characters", file=source, line=line)


def split_key_value(line: TableLine) -> tuple[str, str]:
    """``KEY<blanks>VALUE`` -> (key, value); a line without a value is an error."""
    parts = _BLANKS.split(line.text, maxsplit=1)
    if len(parts) != 2 or not parts[1]:
        raise line.error(f"{parts[0]!r} has no value (expected: KEY  VALUE)")
    return parts[0], parts[1]


def source_name(path: Path | str) -> str:
    """How a file is named in errors and traces."""
    return str(path)


def empty_mapping() -> Mapping[Any, Any]:
    """A read-only empty mapping: the default of every table's index."""
    return MappingProxyType({})
