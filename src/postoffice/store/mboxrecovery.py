"""Torn mbox appends: finding what a crashed append left, and taking it back.

An mbox append writes in place at the end of a shared file, so a process
killed part way (SIGKILL, power loss) leaves a partial message there, which
every reader, our next scan included, would take for a message. The engine
therefore records an ``index.AppendIntent`` (inode, size before the append,
the octets it writes first) and commits it durably before the first octet
is written, and deletes it in the transaction that adds the message's index
row. An intent found under the locks is an append that never completed;
``find_torn`` decides which octets it left, and ``MboxFormat.recover_append``
takes them back. Invariants:

- Only our own octets are taken: nothing happens unless the file is the
  same inode, longer than the size before the append, and holds (a prefix
  of) the expected line break and ``From`` line at that size.
- Our range ends at the first line that starts with ``From `` after our
  ``From`` line (mboxrd quoting never writes one, so it is another
  program's message appended after the crash), or at the end of the file.
  A batch (COPY) writes several messages under one intent, which lists
  their ``From`` lines: a line equal to the batch's next one is ours.
- When nothing follows, the file is truncated to its size before the
  append: its length and octets are exactly as before.
- When another program appended after our octets, our range is cut out
  by a rewrite (``fileio.replace_keeping``) and theirs is kept, moved up to
  where our ``From`` line was.
- The range is first saved, fsync'd, in the user's mail directory as
  ``postoffice-torn-*`` (which is never a mailbox) whenever it might hold
  octets that are not ours: something follows it, or a ``From `` appears in
  it that our quoting cannot have written (a program that appended without
  first ending our torn last line glued its message onto ours; no reader
  can separate the two again, so both are set aside rather than lost).
- Left alone, and said so in the log: a file replaced meanwhile (another
  inode: a rewrite by another program has taken our octets in; they will
  show as a message) and a torn ``From`` line followed directly by another
  program's octets without a line break (the two cannot be told apart; the
  other program's message is kept, under our partial ``From`` line).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from postoffice.store.fileio import CHUNK, copy_range, fsync_dir, pread_exact
from postoffice.store.index import AppendIntent
from postoffice.store.mboxrd import FROM_

QUARANTINE_PREFIX = "postoffice-torn-"
# Octets kept from the previous chunk when looking back from a "From ": enough
# for a quoted line's run of ">"; a longer run only makes us cautious.
_LOOKBACK = 256


def intent_for(fd: int, separators: Sequence[bytes]) -> AppendIntent:
    """The intent of appending messages with these ``From`` lines to the locked mbox ``fd``."""
    st = os.fstat(fd)
    size = st.st_size
    pad = b"\n" if size and pread_exact(fd, size - 1, 1) != b"\n" else b""
    return AppendIntent(st.st_ino, size, pad + separators[0], b"".join(separators[1:]))


@dataclass(frozen=True, slots=True)
class TornRange:
    """Octets ``[start, end)`` of a file of ``size`` octets are a crashed append's."""

    start: int  # the file's size before the append
    keep_to: int  # when cutting out: keep up to here (``start`` plus our line break)
    end: int  # first octet that is not ours: another program's From line, or ``size``
    size: int
    quarantine: bool  # save the range aside first: it may hold octets not ours
    reason: str


def find_torn(fd: int, intent: AppendIntent, tick: Callable[[], None]) -> TornRange | str | None:
    """What ``intent``'s append left in the locked mbox ``fd``: None if nothing of
    ours, a reason when octets of ours may be there but cannot be told apart."""
    st = os.fstat(fd)
    size = st.st_size
    if st.st_ino != intent.inode:
        return "the file was replaced since: its octets are left as they are"
    if size <= intent.start:
        return None
    head = intent.head
    pad = 1 if head.startswith(b"\n") else 0
    present = pread_exact(fd, intent.start, len(head))
    matched = _common_prefix(present, head)
    keep_to = intent.start + pad
    if matched <= pad:
        return None  # at most a line break that any appender would also write
    if matched < len(present):
        # Our From line is torn and other octets follow it. Only a line break
        # there shows that another program ended our line and appended after.
        if present[matched : matched + 1] != b"\n":
            if matched <= pad + len(FROM_):
                return None  # every From line starts so: nothing shows an octet of ours
            return "another program's octets follow a torn From line: left as they are"
        end, _ = _next_from_line(fd, intent.start + matched, size, False, tick)
        return TornRange(intent.start, keep_to, end, size, True, "torn From line, then others")
    if matched < len(head):
        return TornRange(intent.start, keep_to, size, size, False, "torn From line")
    end, foreign = _our_end(fd, intent, size, tick)
    if end < size:
        return TornRange(intent.start, keep_to, end, size, True, "partial message, then others")
    if foreign:
        reason = "partial message holding an unquoted From"
        return TornRange(intent.start, keep_to, end, size, True, reason)
    return TornRange(intent.start, keep_to, end, size, False, "partial message")


def _our_end(
    fd: int, intent: AppendIntent, size: int, tick: Callable[[], None]
) -> tuple[int, bool]:
    """Where the octets of a batch whose first From line is whole end (see
    ``_next_from_line``): From lines that are the batch's next ones are skipped."""
    later = intent.later.splitlines(keepends=True)  # each ends in its one LF
    position = intent.start + len(intent.head)
    foreign = False
    for expected in [*later, b""]:
        end, odd = _next_from_line(fd, position, size, True, tick)
        foreign = foreign or odd
        if end >= size or not expected or pread_exact(fd, end, len(expected)) != expected:
            break
        position = end + len(expected)
    return end, foreign


def _common_prefix(a: bytes, b: bytes) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _next_from_line(
    fd: int, position: int, size: int, line_start: bool, tick: Callable[[], None]
) -> tuple[int, bool]:
    """The offset of the first line starting with ``From `` in ``[position, size)``
    (``size`` if none), and whether a ``From `` that mboxrd quoting cannot have
    written (not at a line start behind ``>``) comes before it.

    ``line_start`` says whether ``position`` starts a line. Reads in chunks.
    """
    # buffer[0] sits at file offset ``base``; a virtual first octet stands for
    # what precedes ``position`` (a line break or not).
    buffer = b"\n" if line_start else b"."
    base = position - 1
    foreign = False
    while position < size:
        tick()
        chunk = pread_exact(fd, position, min(CHUNK, size - position))
        if not chunk:
            break
        # A "From " starting in the last four octets of the old buffer is new.
        first = max(len(buffer) - (len(FROM_) - 1), 0)
        buffer += chunk
        position += len(chunk)
        found = buffer.find(FROM_, first)
        while found >= 0:
            before = found
            while before > 0 and buffer[before - 1] == ord(">"):
                before -= 1
            at_line_start = before > 0 and buffer[before - 1] == ord("\n")
            if at_line_start and before == found:
                return base + found, foreign
            if not at_line_start:
                foreign = True
            found = buffer.find(FROM_, found + 1)
        keep = min(len(buffer), _LOOKBACK)
        base += len(buffer) - keep
        buffer = buffer[len(buffer) - keep :]
    return size, foreign


def quarantine(
    fd: int, torn: TornRange, directory: Path, *, fsync: bool, tick: Callable[[], None]
) -> Path:
    """Save ``fd[torn.start:torn.end]`` as a new ``postoffice-torn-*`` file in ``directory``."""
    stamp = int(time.time())
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    attempt = 0
    while True:
        suffix = f".{attempt}" if attempt else ""
        path = directory / f"{QUARANTINE_PREFIX}{stamp}-{torn.start}{suffix}"
        try:
            out = os.open(path, flags, 0o600)
            break
        except FileExistsError:
            attempt += 1
    try:
        copy_range(fd, out, torn.start, torn.end, 0, tick)
        if fsync:
            os.fsync(out)
    finally:
        os.close(out)
    if fsync:
        fsync_dir(directory)
    return path
