"""Spare queue files: the inodes of removed messages, kept for the next ones.

Owns ``SparePool``. When a message leaves the queue its qf and df are not
unlinked but renamed into ``tmp/`` as ``spare.PID.N`` (up to ``capacity`` of
them); a new data or control file then takes a spare (rename to its tmp
name) instead of creating a file.

Why: on ext4 without a journal (the machines this project is measured on)
every new inode is found by ``find_inode_bit``, which reads the inode table
of each recently deleted inode it passes over (``recently_deleted``). With a
queue that creates two files and deletes two files a message, that scan was
12 % of the CPU time of SMTP acceptance (``perf``, issue 3). A rename costs no
inode allocation. Elsewhere it costs a rename instead of an unlink, and a
rename plus an ``ftruncate`` instead of a create.

A taken spare is not emptied when it is opened: it still holds the octets
of the message it served, and the writer writes over them from offset 0 and
then cuts the file to its new length (``durable.trim``) before its fsync.
Emptying it first (``O_TRUNC``) freed every block only for the writes to
allocate them again; with messages of similar sizes, writing over the old
blocks allocates nothing (A/B under ``bench/smtp_accept``: 410 against 468
msg/s, 3.71 against 3.44 ms of CPU a message).

Rules:
- A spare is not part of the queue: it is in ``tmp/``, where nothing is
  trusted. Recovery removes every spare at start (``is_spare``), silently;
  ``close()`` unlinks this pool's own.
- Names carry the process id, so the pools of several processes sharing one
  queue never take each other's files.
- Whatever is written to a taken spare is trimmed to its length before the
  file is fsync'd and renamed into the queue; a crash before that leaves it
  in ``tmp/``, which recovery empties.
- A taken spare is locked (``flock``) like a created file. One that cannot
  be locked at once (the claim of the message it came from is still open) is
  unlinked and a new file is created instead: taking never waits.
- Used from several threads: the list is guarded by a lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import threading
from pathlib import Path

from postoffice.queue.durable import FILE_MODE, create_exclusive

SPARE_PREFIX = "spare."
DEFAULT_CAPACITY = 64


def is_spare(name: str) -> bool:
    return name.startswith(SPARE_PREFIX)


class SparePool:
    """This process's spare files in one ``tmp/`` (see the module docstring)."""

    def __init__(self, tmp: Path, capacity: int = DEFAULT_CAPACITY):
        self.tmp = tmp
        self.capacity = capacity
        self._spares: list[Path] = []
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._pid = os.getpid()
        self.reused = 0  # files taken from the pool (for tests and benchmarks)

    def keep(self, path: Path) -> bool:
        """Move ``path`` (leaving the queue) into the pool; False when the pool is full.

        The caller unlinks it when False. ``FileNotFoundError`` passes through.
        """
        if self._pid != os.getpid():  # a forked child starts with no spares of its own
            self._reset()
        with self._lock:
            if len(self._spares) >= self.capacity:
                return False
            spare = self.tmp / f"{SPARE_PREFIX}{self._pid}.{next(self._numbers)}"
        os.rename(path, spare)
        with self._lock:
            self._spares.append(spare)
        return True

    def take(self, target: Path) -> int | None:
        """A spare renamed to ``target``, opened for writing at offset 0 and locked; or None.

        Its old octets are still there: the caller writes, then ``trim``s.
        """
        if self._pid != os.getpid():
            self._reset()
        while True:
            with self._lock:
                if not self._spares:
                    return None
                spare = self._spares.pop()
            try:
                os.rename(spare, target)
            except FileNotFoundError:
                continue  # removed behind our back (recovery by another process)
            fd = os.open(target, os.O_WRONLY | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.fchmod(fd, FILE_MODE)
            except BlockingIOError:
                os.close(fd)
                os.unlink(target)  # still locked by the claim it came from: not reused
                continue
            except BaseException:
                os.close(fd)
                raise
            self.reused += 1
            return fd

    def open_new(self, path: Path) -> int:
        """``path`` opened for writing and locked: a spare if there is one, else a new file.

        Either way the caller ends its writes with ``durable.trim(fd, length)``.
        """
        fd = self.take(path)
        return create_exclusive(path) if fd is None else fd

    def retire(self, path: Path) -> None:
        """``path`` leaves the queue: into the pool, or unlinked when it is full (or gone)."""
        try:
            if self.keep(path):
                return
        except FileNotFoundError:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def close(self) -> None:
        """Unlink this pool's spares (the server stops; nothing else would use them)."""
        with self._lock:
            spares, self._spares = self._spares, []
        for spare in spares:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(spare)

    def _reset(self) -> None:
        with self._lock:
            self._spares = []
            self._pid = os.getpid()
