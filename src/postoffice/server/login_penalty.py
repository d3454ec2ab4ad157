"""Failed-login delays per client address, for every protocol that takes a password.

Owns ``LoginPenalty``: how long the answer to a failed login waits. The
first failure from an address waits ``base`` seconds, each further one twice
as long as the one before, up to ``ceiling`` (Dovecot's auth penalty:
``auth_failure_delay`` 2 s, doubling per failure from one IP, at most 15 s).
A successful login from the address clears its count; an address that
stayed quiet for ``forget_after`` seconds starts again from the first step.

The delay is the same whether the user exists or not, and the answer is the
same: the caller must not tell an unknown user from a wrong password (the
password check itself costs the same for both, see ``AccountDatabase``).

Where the counts live: a ``LocalFailures`` table in one process, or a
``SharedFailures`` table that the master makes before it forks, so that the
workers of one server count the failures of an address together (an
attacker's connections land on any worker). Both are bounded: the local one
forgets the address quiet the longest, the shared one is a fixed table in
which an address may take the slot of another (its count then starts
again: never a longer delay than earned, at worst a shorter one).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from postoffice.server.limits import address_key, record_locked

DEFAULT_CAPACITY = 10_000
FORGET_AFTER = 3600.0


class FailureTable(Protocol):
    """Failure counts by address: (count, monotonic time of the last failure)."""

    def get(self, address: str) -> tuple[int, float] | None: ...

    def add(self, address: str, now: float, forget_after: float) -> int:
        """Count one failure at ``now`` (from 0 when the last is older than
        ``forget_after``), in one step; the new count."""
        ...

    def drop(self, address: str) -> None: ...


class LocalFailures:
    """The counts of one process, the longest quiet address first out."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def get(self, address: str) -> tuple[int, float] | None:
        return self._entries.get(address)

    def add(self, address: str, now: float, forget_after: float) -> int:
        count = _next_count(self._entries.get(address), now, forget_after)
        self._entries[address] = (count, now)
        self._entries.move_to_end(address)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return count

    def drop(self, address: str) -> None:
        self._entries.pop(address, None)

    def __len__(self) -> int:
        return len(self._entries)


class SharedFailures:
    """The counts of all the workers of one server, in shared memory.

    ``slots`` entries of (8-octet key: a hash of the address, never 0;
    4-octet count; 8-octet time), one slot per key (key modulo slots). A
    POSIX record lock on an unlinked temporary file guards each use; the
    kernel drops it if a worker dies holding it. The time is
    ``time.monotonic()``, one clock for every process of the machine.
    """

    _SLOT = struct.Struct("<QId")

    def __init__(self, slots: int = 8192):
        self.slots = slots
        self._table = mmap.mmap(-1, self._SLOT.size * slots)  # MAP_SHARED | MAP_ANONYMOUS
        self._lock_fd, name = tempfile.mkstemp(prefix="postoffice-penalty-")
        os.unlink(name)

    def close(self) -> None:
        self._table.close()
        os.close(self._lock_fd)

    def get(self, address: str) -> tuple[int, float] | None:
        key = address_key(address)
        with self._locked():
            found, count, at = self._SLOT.unpack_from(self._table, self._offset(key))
        return (count, at) if found == key else None

    def add(self, address: str, now: float, forget_after: float) -> int:
        key = address_key(address)
        offset = self._offset(key)
        with self._locked():  # read and write under one lock: no failure is lost
            found, count, at = self._SLOT.unpack_from(self._table, offset)
            count = _next_count((count, at) if found == key else None, now, forget_after)
            self._SLOT.pack_into(self._table, offset, key, min(count, 0xFFFFFFFF), now)
        return count

    def drop(self, address: str) -> None:
        key = address_key(address)
        with self._locked():
            if self._SLOT.unpack_from(self._table, self._offset(key))[0] == key:
                self._SLOT.pack_into(self._table, self._offset(key), 0, 0, 0.0)

    def _offset(self, key: int) -> int:
        return (key % self.slots) * self._SLOT.size

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return record_locked(self._lock_fd)


def _next_count(entry: tuple[int, float] | None, now: float, forget_after: float) -> int:
    if entry is None or now - entry[1] > forget_after:
        return 1
    return entry[0] + 1


class LoginPenalty:
    """Failure counts by client address and the delay each failure earns."""

    def __init__(
        self,
        base: float = 2.0,
        ceiling: float = 15.0,
        *,
        forget_after: float = FORGET_AFTER,
        table: FailureTable | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.base = base
        self.ceiling = max(base, ceiling)
        self.forget_after = forget_after
        self.table: FailureTable = table if table is not None else LocalFailures()
        self._clock = clock

    def failures(self, address: str) -> int:
        """Failures counted for ``address`` (0 once forgotten)."""
        entry = self.table.get(address)
        if entry is None or self._clock() - entry[1] > self.forget_after:
            return 0
        return entry[0]

    def failed(self, address: str) -> float:
        """Count a failure from ``address``; the seconds its answer must wait."""
        count = self.table.add(address, self._clock(), self.forget_after)
        if self.base <= 0:
            return 0.0
        return float(min(self.ceiling, self.base * 2 ** min(count - 1, 32)))

    def succeeded(self, address: str) -> None:
        """A login from ``address`` succeeded: its count starts again."""
        self.table.drop(address)
