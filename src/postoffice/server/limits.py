"""Connection limits per client address (DESIGN.md §5: connections per client are bounded).

Owns the count of open connections by client IP for one listener role and
the decision to refuse one more: the listener asks ``admit`` when a
connection arrives and calls ``release`` when it ends. ``ConnectionLimiter``
counts in one process; ``SharedConnectionCounts`` counts for all the worker
processes of one server (see ``server.workers``), in shared memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import struct
import tempfile
from collections import Counter
from collections.abc import Iterator


class ConnectionLimiter:
    """At most ``per_client`` simultaneous connections from one address."""

    def __init__(self, per_client: int):
        if per_client < 1:
            raise ValueError("per_client must be at least 1")
        self.per_client = per_client
        self._open: Counter[str] = Counter()

    def admit(self, client: str) -> bool:
        """Count the connection and say True, or say False and count nothing."""
        if self._open[client] >= self.per_client:
            return False
        self._open[client] += 1
        return True

    def release(self, client: str) -> None:
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]

    def open_from(self, client: str) -> int:
        return self._open[client]

    @property
    def total(self) -> int:
        return sum(self._open.values())


class SharedConnectionCounts:
    """The per-client connection counts of every worker process, in shared memory.

    Made by the master before it forks its workers, so that "at most N
    connections from one address" holds for the whole server and not per
    worker. The table lives in an anonymous shared ``mmap``: ``slots``
    entries of an 8-octet key (a hash of the address, never 0) and one
    16-bit count per worker, found by linear probing; a slot whose counts are
    all 0 may be taken by another address. A POSIX record lock
    (``fcntl.lockf``) on an unlinked temporary file guards every change: it
    excludes the other processes and is dropped by the kernel if a worker
    dies holding it. When a worker dies the master clears its column
    (``forget_worker``), so the connections it had stop counting.

    Each worker uses it through ``limiter(worker)``, which has the
    ``ConnectionLimiter`` interface. Only the event-loop thread of a worker
    may use it (record locks do not exclude threads of one process).
    """

    def __init__(self, per_client: int, workers: int, *, slots: int = 65536):
        if per_client < 1 or per_client > 0xFFFF:
            raise ValueError("per_client must be between 1 and 65535")
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.per_client = per_client
        self.workers = workers
        self.slots = slots
        self._slot = struct.Struct(f"<Q{workers}H")
        self._table = mmap.mmap(-1, self._slot.size * slots)  # MAP_SHARED | MAP_ANONYMOUS
        self._lock_fd, name = tempfile.mkstemp(prefix="postoffice-limits-")
        os.unlink(name)  # only the descriptor is needed, and it goes with the processes

    def close(self) -> None:
        self._table.close()
        os.close(self._lock_fd)

    def __enter__(self) -> SharedConnectionCounts:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def limiter(self, worker: int) -> SharedConnectionLimiter:
        if not 0 <= worker < self.workers:
            raise ValueError(f"no worker {worker}")
        return SharedConnectionLimiter(self, worker)

    def forget_worker(self, worker: int) -> None:
        """The master, after worker ``worker`` died: its connections are gone."""
        with self._locked():
            for index in range(self.slots):
                key, *counts = self._slot.unpack_from(self._table, index * self._slot.size)
                if key and counts[worker]:
                    counts[worker] = 0
                    self._slot.pack_into(self._table, index * self._slot.size, key, *counts)

    def count(self, client: str) -> int:
        with self._locked():
            found = self._find(address_key(client))
            return 0 if found is None else sum(found[1])

    def change(self, client: str, worker: int, delta: int) -> bool:
        """Add ``delta`` (+1 or -1) to ``worker``'s count for ``client``; False if refused."""
        key = address_key(client)
        with self._locked():
            found = self._find(key)
            if found is None:
                if delta < 0:
                    return True
                self._compact()
                found = self._find(key)
                if found is None:
                    return False  # every slot holds a live address: refuse, never overwrite
            index, counts = found
            if delta > 0 and sum(counts) >= self.per_client:
                return False
            counts[worker] = max(0, counts[worker] + delta)
            self._slot.pack_into(self._table, index * self._slot.size, key, *counts)
            return True

    # -- the table, under the lock ------------------------------------------------------

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return record_locked(self._lock_fd)

    def _find(self, key: int) -> tuple[int, list[int]] | None:
        """``key``'s slot and counts, else a slot to take for it; None if there is none."""
        free: int | None = None
        home = key % self.slots
        for step in range(min(self.slots, MAX_PROBES)):
            index = (home + step) % self.slots
            found, *counts = self._slot.unpack_from(self._table, index * self._slot.size)
            if found == key:
                return index, counts
            if found == 0:
                return (index if free is None else free), [0] * self.workers
            if free is None and not any(counts):
                free = index
        return None if free is None else (free, [0] * self.workers)

    def _compact(self) -> None:
        """Re-insert the live entries into an emptied table (long probe chains)."""
        live = []
        for index in range(self.slots):
            key, *counts = self._slot.unpack_from(self._table, index * self._slot.size)
            if key and any(counts):
                live.append((key, counts))
        self._table[:] = bytes(len(self._table))
        for key, counts in live:
            home = key % self.slots
            # Only as far as _find looks: an entry placed further could never be
            # found again. One that does not fit is dropped (that address's open
            # connections stop counting: it may get a few more, never fewer).
            for step in range(min(self.slots, MAX_PROBES)):
                index = (home + step) % self.slots
                if self._slot.unpack_from(self._table, index * self._slot.size)[0] == 0:
                    self._slot.pack_into(self._table, index * self._slot.size, key, *counts)
                    break


class SharedConnectionLimiter:
    """One worker's face of ``SharedConnectionCounts`` (the ``ConnectionLimiter`` calls)."""

    def __init__(self, counts: SharedConnectionCounts, worker: int):
        self._counts = counts
        self._worker = worker
        self.per_client = counts.per_client

    def admit(self, client: str) -> bool:
        return self._counts.change(client, self._worker, +1)

    def release(self, client: str) -> None:
        self._counts.change(client, self._worker, -1)

    def open_from(self, client: str) -> int:
        return self._counts.count(client)


MAX_PROBES = 256


@contextlib.contextmanager
def record_locked(fd: int) -> Iterator[None]:
    """Hold the POSIX record lock of ``fd`` (a table shared by the workers of one server)."""
    fcntl.lockf(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.lockf(fd, fcntl.LOCK_UN)


def address_key(client: str) -> int:
    """The 8-octet key of a client address in a shared table (a hash, never 0)."""
    digest = hashlib.blake2b(client.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1
