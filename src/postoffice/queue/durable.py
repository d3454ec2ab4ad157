"""Durable file primitives for the spool: fsync, locks, and group-committed directory fsyncs.

Owns the only places the queue calls ``fsync``: a file's own ``fsync`` (its
octets) and the directory's (its names: a rename is on disk only once the
directory holding the new name is, see fsync(2)). Both go through
``FsHooks`` so that tests can count them, slow them down or fail them, and
a ``step`` hook names each point of a commit where a crash is simulated.

Group commit (``DirectorySyncer``): concurrent commits that renamed into the
same directory share one directory fsync. Invariant: ``sync()`` returns only
after a directory fsync that *started after* ``sync()`` was called has
succeeded. Callers join a batch only while its fsync has not started (the
worker thread marks it started, under a lock, before calling fsync), so the
batch's single fsync covers every rename made before any of them joined.
No caller skips an fsync. With ``max_in_flight=0`` there is no grouping:
each ``sync()`` fsyncs the directory itself, on the caller's thread (the
event loop), which is what the queue does: a directory fsync takes tens of
microseconds, and handing it to a thread and back cost a server about 15 %
more CPU a message (A/B, 2,000 messages over 10 sessions, issue 3) while
messages arriving milliseconds apart rarely found a batch to share.

Locks: a file being written, and a message's data file while its control
file is rewritten, carry an exclusive ``flock``. Recovery in another process
(or at a later ``open()``) removes a leftover only if it can take that lock,
so it never deletes a file a live writer holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def _no_step(name: str) -> None:
    """The production step hook: crash points are for tests only."""


@dataclass
class FsHooks:
    """Injectable file-system operations (tests instrument them).

    ``fsync`` syncs a file descriptor; ``fsync_directory`` syncs an open
    directory descriptor; ``step`` is called with the name of each commit
    step once it is done (``df-written``, ``df-fsynced``, ``df-renamed``,
    ``qf-written``, ``qf-fsynced``, ``qf-renamed``, ``dir-fsynced``; the
    control-file rewrite of ``update()`` uses ``update-written``,
    ``update-fsynced``, ``update-renamed``, ``update-dir-fsynced``).
    """

    fsync: Callable[[int], None] = os.fsync
    fsync_directory: Callable[[int], None] = os.fsync
    step: Callable[[str], None] = field(default=_no_step)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every octet (``os.write`` may write fewer than asked)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def trim(fd: int, length: int) -> None:
    """Cut the file to ``length`` octets: the end of a write over a reused file
    (``spares``), whose older, longer content must not outlive the new."""
    os.ftruncate(fd, length)


def write_whole(fd: int, data: bytes) -> None:
    """``data`` as the whole content of a file opened at offset 0."""
    write_all(fd, data)
    trim(fd, len(data))


def create_exclusive(path: Path) -> int:
    """Create ``path`` (it must not exist), mode 0600, and lock it exclusively."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


def lock_file(path: Path, *, wait: bool) -> int | None:
    """Open ``path`` read-only and lock it; None if ``wait`` is false and it is held.

    Raises ``FileNotFoundError`` when the file is gone.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def close_quietly(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def ensure_directory(path: Path, hooks: FsHooks) -> bool:
    """Create ``path`` (mode 0700) if missing and make its name durable; True if created."""
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        if not path.is_dir():
            raise NotADirectoryError(str(path)) from None
        return False
    sync_directory_path(path.parent, hooks)
    return True


def sync_directory_path(path: Path, hooks: FsHooks) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        hooks.fsync_directory(fd)
    finally:
        os.close(fd)


class _Batch:
    """Callers sharing one directory fsync; joinable until that fsync starts."""

    __slots__ = ("future", "started")

    def __init__(self, future: asyncio.Future[None]):
        self.future = future
        self.started = False  # set by the worker thread, under the syncer's lock


class DirectorySyncer:
    """Group commit of one directory's fsync (see the module docstring).

    A caller joins the open batch if that batch's fsync has not started yet
    (it is waiting for a worker thread, or for one of the ``max_in_flight``
    running fsyncs to end); otherwise it opens a new batch. Up to
    ``max_in_flight`` directory fsyncs overlap: on ext4 and XFS concurrent
    fsyncs share a journal commit anyway, and waiting for one to end before
    starting the next only adds latency. ``max_in_flight=1`` is the classic
    one-at-a-time group commit; ``max_in_flight=0`` fsyncs in ``sync()``
    itself, on the event loop, with no batch and no thread. Used from one
    event loop.
    """

    def __init__(self, path: Path, hooks: FsHooks, executor: Executor, *, max_in_flight: int = 2):
        if max_in_flight < 0:
            raise ValueError("max_in_flight must be 0 (on the loop) or more")
        self.path = path
        self._hooks = hooks
        self._executor = executor
        self._max_in_flight = max_in_flight
        self._fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._lock = threading.Lock()
        self._open: _Batch | None = None
        self._waiting: deque[_Batch] = deque()
        self._running: set[asyncio.Future[None]] = set()
        self.fsyncs = 0  # directory fsyncs performed (for benchmarks and tests)
        self.requests = 0  # sync() calls

    async def sync(self) -> None:
        """Return once a directory fsync started after this call has succeeded."""
        self.requests += 1
        if self._max_in_flight == 0:  # on the loop: our rename is done, this fsync covers it
            self._hooks.fsync_directory(self._fd)
            self.fsyncs += 1
            return
        with self._lock:
            batch = self._open if self._open is not None and not self._open.started else None
        if batch is None:
            # No batch whose fsync is still to start: open one. Our rename is
            # done, and its fsync starts later, so it covers the rename.
            batch = self._open = _Batch(asyncio.get_running_loop().create_future())
            if len(self._running) < self._max_in_flight:
                self._submit(batch)
            else:
                self._waiting.append(batch)
        # shield: a cancelled caller must not cancel the batch others wait on.
        await asyncio.shield(batch.future)

    def _submit(self, batch: _Batch) -> None:
        loop = asyncio.get_running_loop()
        running = loop.run_in_executor(self._executor, self._fsync_batch, batch)
        self._running.add(running)
        running.add_done_callback(lambda done: self._finished(done, batch))

    def _finished(self, running: asyncio.Future[None], batch: _Batch) -> None:
        self._running.discard(running)
        if running.cancelled():
            batch.future.cancel()
        elif (error := running.exception()) is not None:
            batch.future.set_exception(error)  # every caller of this batch re-raises it
        else:
            batch.future.set_result(None)
        while self._waiting and len(self._running) < self._max_in_flight:
            self._submit(self._waiting.popleft())

    def _fsync_batch(self, batch: _Batch) -> None:
        """Worker thread: close the batch to newcomers, then fsync."""
        with self._lock:
            batch.started = True
        self._hooks.fsync_directory(self._fd)
        with self._lock:
            self.fsyncs += 1

    async def close(self) -> None:
        pending = [batch.future for batch in self._waiting] + list(self._running)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        close_quietly(self._fd)
        self._fd = -1
