"""How many connections each worker process serves, so that new ones go to the least busy.

Owns the per-worker count of open connections, in shared memory, and the
question a worker's listener asks before it accepts: "is a sibling serving
fewer connections than I am?".

Why: every worker waits on the same inherited listening sockets (see
``server.master``). When a connection arrives, the kernel wakes every worker
that waits in ``epoll``, but the one already running, usually the busiest,
reaches ``accept`` first while the idle one waits for a core. Measured with
``bench/pop3_load.py`` (4 clients reconnecting after every 1,000-message
session, 2 workers): one worker held all four connections in half of the
samples and the other sat idle. Dovecot starts a process per connection;
nginx has its ``accept_mutex``; here a busier worker steps aside for a
moment (``server.listener``), and the least busy one takes the connection.

The table is an anonymous shared ``mmap`` of one signed 32-bit count per
worker, made by the master before it forks. Each worker writes only its own
slot (an aligned 4-octet store, which no reader sees torn) and reads the
others without a lock: a count a moment old only makes the choice a little
less even, never wrong. A slot whose worker is gone holds ``ABSENT`` and is
left out.
"""

from __future__ import annotations

import mmap

ABSENT = -1  # the slot of a worker that is not running


class WorkerLoads:
    """The open-connection counts of all the workers of one server (see module doc)."""

    def __init__(self, workers: int):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self._map = mmap.mmap(-1, 4 * workers)
        self._counts = memoryview(self._map).cast("i")
        for index in range(workers):
            self._counts[index] = ABSENT

    def seat(self, index: int) -> WorkerLoad:
        """Worker ``index``'s face of the table (its count starts at 0)."""
        if not 0 <= index < self.workers:
            raise ValueError(f"no worker {index}")
        return WorkerLoad(self._counts, index)

    def forget_worker(self, index: int) -> None:
        """The master, after worker ``index`` died: its slot no longer counts."""
        self._counts[index] = ABSENT

    def counts(self) -> list[int]:
        return list(self._counts)

    def close(self) -> None:
        self._counts.release()
        self._map.close()


class WorkerLoad:
    """One worker's open connections, beside its siblings' (see ``WorkerLoads``)."""

    def __init__(self, counts: memoryview, index: int):
        self._counts = counts
        self._index = index
        self._open = 0
        counts[index] = 0

    @property
    def open(self) -> int:
        return self._open

    def opened(self) -> None:
        self._open += 1
        self._counts[self._index] = self._open

    def closed(self) -> None:
        self._open -= 1
        self._counts[self._index] = self._open

    def sibling_less_busy(self) -> bool:
        """True when another running worker serves fewer connections than this one."""
        mine = self._open
        for index, count in enumerate(self._counts):
            if index != self._index and ABSENT < count < mine:
                return True
        return False
