"""mboxrd: the ``From `` separator line, streaming quoting, and parsing an mbox file.

The mboxrd variant (the "mbox" description by Rahul Dhesi, 1996, and the
Qmail mbox(5) page): a message starts with a line ``From SENDER DATE``; in
the message, every line that matches ``^>*From `` gets one more ``>`` when
written, and every line matching ``^>+From `` loses one ``>`` when read. This
makes the quoting exactly reversible, so what is appended is what is read.
A blank line ends each message before the next ``From`` line.

Invariants here:
- ``LineQuoter`` transforms a stream in chunks with bounded state: a count
  of pending ``>`` and at most four octets of a partial ``From ``.
- ``scan_mbox`` reads the file line by line in pieces of at most
  ``_PIECE`` octets, so a huge mbox or a huge line never sits in memory.
  (A run of more than ``_PIECE`` ``>`` at the start of a line is not
  recognised as quoted by the scan; only the rebuilt size of such a line is
  affected, and only when the index is rebuilt from disk.)
"""

from __future__ import annotations

import calendar
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

FROM_ = b"From "
_PIECE = 1 << 16
_TICK_LINES = 4096
TAG_OCTETS = 256
_GTS = re.compile(rb">*")
_QUOTED_LINE = re.compile(rb">+From ")
# Only lines starting with ">" (unquote) or ">"/"F" (quote) can change.
_INTERESTING_UNQUOTE = re.compile(rb"\n>")
_INTERESTING_QUOTE = re.compile(rb"\n[>F]")
# asctime(3) date in a From_ line: "Www Mmm dd hh:mm:ss yyyy"
_ASCTIME = re.compile(
    rb"([A-Z][a-z]{2}) +([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})"
)
_SENDER_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")


class LineQuoter:
    """Streaming mboxrd quoting (``unquote=False``) or un-quoting (``unquote=True``)."""

    def __init__(self, *, unquote: bool):
        self._unquote = unquote
        self._interesting = _INTERESTING_UNQUOTE if unquote else _INTERESTING_QUOTE
        self._at_line_start = True
        self._gts = 0
        self._tail = b""
        self.changed = 0  # lines quoted or un-quoted so far

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        i, n = 0, len(data)
        while i < n:
            if self._at_line_start:
                if not self._tail:
                    j = _GTS.match(data, i)
                    assert j is not None
                    self._gts += j.end() - i
                    i = j.end()
                    if i == n:
                        break
                need = FROM_[len(self._tail) :]
                avail = data[i : i + len(need)]
                if need.startswith(avail):
                    self._tail += avail
                    i += len(avail)
                    if self._tail == FROM_:
                        out += self._resolve_from_line()
                    continue
                out += b">" * self._gts + self._tail
                self._end_prefix()
            match = self._interesting.search(data, i)
            if match is None:
                out += data[i:]
                self._at_line_start = data.endswith(b"\n")
                i = n
            else:
                out += data[i : match.start() + 1]
                i = match.start() + 1
                self._at_line_start = True
        return bytes(out)

    def finish(self) -> bytes:
        """Flush what is pending at the end of the stream."""
        rest = b">" * self._gts + self._tail if self._at_line_start else b""
        self._end_prefix()
        return rest

    def _resolve_from_line(self) -> bytes:
        gts = self._gts
        if self._unquote:
            if gts:
                gts -= 1
                self.changed += 1
        else:
            gts += 1
            self.changed += 1
        self._end_prefix()
        return b">" * gts + FROM_

    def _end_prefix(self) -> None:
        self._at_line_start = False
        self._gts = 0
        self._tail = b""


def quote(data: bytes) -> tuple[bytes, int]:
    """Quote a whole message; returns (quoted bytes, lines changed)."""
    quoter = LineQuoter(unquote=False)
    out = quoter.feed(data) + quoter.finish()
    return out, quoter.changed


def unquote(data: bytes) -> bytes:
    """Un-quote a whole stored message."""
    quoter = LineQuoter(unquote=True)
    return quoter.feed(data) + quoter.finish()


def from_line(sender: str, date: float) -> bytes:
    """``From SENDER DATE\\n``: the sender without white space (``MAILER-DAEMON`` if
    empty) and the date in asctime(3) form, in UTC."""
    safe = _SENDER_UNSAFE.sub("", sender) or "MAILER-DAEMON"
    stamp = time.asctime(time.gmtime(date))  # "Thu Jan  1 00:00:00 1970"
    return b"From " + safe.encode("utf-8", "replace") + b" " + stamp.encode("ascii") + b"\n"


def from_line_date(line: bytes) -> float | None:
    """The date of a ``From`` line (asctime form, read as UTC), or None."""
    match = _ASCTIME.search(line)
    if match is None:
        return None
    try:
        parsed = time.strptime(
            b" ".join(match.groups()[:3]).decode("ascii")
            + " "
            + b":".join(match.groups()[3:6]).decode("ascii")
            + " "
            + match.group(7).decode("ascii"),
            "%a %b %d %H:%M:%S %Y",
        )
    except ValueError:
        return None
    return float(calendar.timegm(parsed))


def message_tag(separator: bytes, region: bytes) -> str:
    """A short fingerprint of a stored message: its ``From`` line and the first
    ``TAG_OCTETS`` of what follows it on disk. Offsets alone cannot tell that
    another program rewrote an mbox with messages of the same lengths."""
    digest = hashlib.blake2b(separator, digest_size=8)
    digest.update(b"\0")
    digest.update(region[:TAG_OCTETS])
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class MboxEntry:
    """One message found by ``scan_mbox`` (offsets are absolute in the file)."""

    offset: int  # the "From " line
    data_offset: int  # first octet of the message
    stored_size: int  # octets of the stored (quoted) message, separator excluded
    quoted: int  # lines that un-quoting changes
    date: float | None  # from the From line
    tag: str  # message_tag()


@dataclass
class _Building:
    offset: int
    separator: bytes
    data_offset: int = 0
    quoted: int = 0
    head: bytes = b""
    prev_blank: bool = False

    def entry(self, boundary: int) -> MboxEntry:
        stored = boundary - self.data_offset
        if self.prev_blank and stored > 0:
            stored -= 1  # the blank line before the next From line
        return MboxEntry(
            offset=self.offset,
            data_offset=self.data_offset,
            stored_size=max(stored, 0),
            quoted=self.quoted,
            date=from_line_date(self.separator),
            tag=message_tag(self.separator, self.head),
        )


def scan_mbox(
    f: BinaryIO, start: int, end: int, tick: Callable[[], None] | None = None
) -> list[MboxEntry]:
    """Find the messages in ``f[start:end]``; ``start`` must be at a line start.

    Octets before the first ``From `` line are not part of any message.
    ``tick`` runs every ``_TICK_LINES`` lines (to keep a lock fresh).
    """
    entries: list[MboxEntry] = []
    f.seek(start)
    pos = start
    at_line_start = True
    in_separator = False
    current: _Building | None = None
    lines = 0
    while pos < end:
        lines += 1
        if tick is not None and lines % _TICK_LINES == 0:
            tick()
        piece = f.readline(min(_PIECE, end - pos))
        if not piece:
            break
        piece_start = pos
        pos += len(piece)
        line_start, at_line_start = at_line_start, piece.endswith(b"\n")
        if in_separator:
            in_separator = not at_line_start
            if current is not None and at_line_start:
                current.data_offset = pos
            continue
        if line_start and piece.startswith(FROM_):
            if current is not None:
                entries.append(current.entry(piece_start))
            current = _Building(offset=piece_start, separator=piece, data_offset=pos)
            in_separator = not at_line_start
            continue
        if current is None:
            continue
        if len(current.head) < TAG_OCTETS:
            current.head += piece[: TAG_OCTETS - len(current.head)]
        if line_start:
            if piece[:1] == b">" and _QUOTED_LINE.match(piece):
                current.quoted += 1
            current.prev_blank = piece == b"\n"
        else:
            current.prev_blank = False
    if current is not None:
        if in_separator:
            current.data_offset = pos
        entries.append(current.entry(pos))
    return entries
