"""The queue: the durable spool of accepted messages under ``spool/mqueue/``.

Owns the ``Queue`` object the SMTP driver, the delivery runner and the
``postoffice queue`` / ``mailq`` commands use: ``open()`` (with recovery),
``begin()`` (acceptance, see ``incoming``), state changes after acceptance
(``update``, ``finish``, ``remove``, ``hold``, ``release``, ``delete``,
``quarantine``) and
reads (``load``, ``list``, ``pending``, ``open_data``).

Invariants:
- A message exists exactly when its ``qfID`` is in the queue directory; its
  ``dfID`` is immutable from the commit until removal.
- Every rewrite of a qf is atomic and durable before it returns: new file in
  ``tmp/``, fsync, rename over the old one, directory fsync. A reader sees
  the old or the new qf, never a mix.
- Rewrites of one message are serialised: within the process by an asyncio
  lock per id, across processes (``postoffice queue hold`` while the server
  runs) by an ``flock`` on the message's df, taken without blocking a worker
  thread. Each rewrite is read-modify-write of the current qf, so a hold by
  the administrator and a delivery update never lose each other.
- A delivery attempt holds that same ``flock`` from ``claim`` to ``end_claim``,
  so two server workers (or two tasks) never deliver one message at once.
- ``remove()`` deletes qf then df, and only when every recipient is final
  (at-least-once delivery, DESIGN.md §5). It does not fsync the directory:
  if a crash forgets the removal, the message is delivered again, which
  at-least-once allows; a df left without its qf is removed at the next open.
- Where the work runs: the file work of one message (a commit's two files,
  a claim, a rewrite or a removal: a few small files, a file fsync at most,
  and the directory fsync unless ``fsyncs_in_flight`` asks for them to be
  grouped in threads) runs on the event loop itself; the whole-queue work
  (recovery, scans for ``list`` and ``pending``, quarantine) runs on the
  queue's threads. Done in a thread beside a busy loop, a
  message's dozen system calls each hand the GIL back and forth, which cost
  more CPU than the calls (measured on the SMTP benchmark: about 14 % of the
  server's CPU a message). Waits for another process's lock are polled from
  the loop (``flock`` without blocking), never slept in.
- Control files are read through ``entries.ControlFiles`` (parsed once,
  re-read only when the file changed); removed files become ``spares``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import fcntl
import functools
import logging
import os
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from postoffice.core.clock import Clock, SystemClock
from postoffice.core.envelope import Envelope
from postoffice.core.maillog import log_event, log_received
from postoffice.queue.durable import (
    DirectorySyncer,
    FsHooks,
    close_quietly,
    ensure_directory,
    lock_file,
    write_whole,
)
from postoffice.queue.entries import ControlFiles
from postoffice.queue.errors import CorruptQueueFile, QueueError, QueueStateError, UnknownQueueId
from postoffice.queue.ids import QueueId, QueueIdGenerator, is_queue_id
from postoffice.queue.incoming import CommitContext, IncomingMessage
from postoffice.queue.layout import SpoolLayout
from postoffice.queue.model import QueueEntry, RecipientStatus
from postoffice.queue.qffile import render_qf
from postoffice.queue.reader import DataReader
from postoffice.queue.recovery import COMPONENT, RecoveryReport, quarantine
from postoffice.queue.recovery import recover as recover_spool
from postoffice.queue.spares import SparePool

_T = TypeVar("_T")
LOCK_POLL_SECONDS = 0.005
LOCK_TIMEOUT_SECONDS = 30.0
# Worker threads of one queue: the directory fsyncs in flight (two, see
# ``DirectorySyncer``) and the occasional scan or recovery.
DEFAULT_WORKERS = 3


@dataclass(frozen=True, slots=True)
class QueueStats:
    commits: int
    directory_fsyncs: int


class Queue:
    """The durable message queue in one directory (see the module docstring).

    Use ``await Queue.open(queue_dir, clock)``; close with ``await close()``
    or ``async with``.
    """

    def __init__(
        self,
        layout: SpoolLayout,
        clock: Clock,
        hooks: FsHooks,
        executor: ThreadPoolExecutor,
        syncer: DirectorySyncer,
    ):
        self.layout = layout
        self.clock = clock
        self.hooks = hooks
        self.recovery: RecoveryReport | None = None
        self._executor = executor
        self._syncer = syncer
        self._ids = QueueIdGenerator(clock)
        self._locks: weakref.WeakValueDictionary[QueueId, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._entries = ControlFiles(layout)
        self._claims: dict[QueueId, int] = {}  # id -> fd holding the df's flock
        self._listeners: list[Callable[[QueueEntry], None]] = []
        self._commits = 0
        self.spares = SparePool(layout.tmp)
        self._context = CommitContext(
            layout,
            hooks,
            syncer,
            clock,
            on_committed=self._committed,
            spares=self.spares,
            on_written=self._entries.remember,
        )

    @classmethod
    async def open(
        cls,
        queue_dir: Path,
        clock: Clock | None = None,
        *,
        hooks: FsHooks | None = None,
        recover: bool = True,
        verify_data: bool = True,
        workers: int = DEFAULT_WORKERS,
        fsyncs_in_flight: int = 0,
    ) -> Queue:
        """Open the queue in ``queue_dir`` (``DATA/spool/mqueue``), creating it (0700).

        With ``recover`` (the server, at start) leftovers are removed and
        broken messages quarantined (see ``recovery``); with ``verify_data``
        every df is also hashed, which costs one read of the whole queue.
        ``postoffice queue`` commands may open with ``recover=False``.
        ``fsyncs_in_flight`` bounds overlapping directory fsyncs in the queue's
        threads (group commit, see ``durable.DirectorySyncer``); 0, the
        default, fsyncs the directory on the event loop in each commit.
        """
        hooks = hooks or FsHooks()
        layout = SpoolLayout(Path(queue_dir))
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="queue")
        loop = asyncio.get_running_loop()

        def prepare() -> RecoveryReport | None:
            layout.root.parent.mkdir(parents=True, exist_ok=True)
            for path in (layout.root, layout.tmp, layout.quarantine):
                ensure_directory(path, hooks)
            return recover_spool(layout, hooks, verify_data=verify_data) if recover else None

        try:
            report = await loop.run_in_executor(executor, prepare)
            syncer = DirectorySyncer(layout.root, hooks, executor, max_in_flight=fsyncs_in_flight)
        except OSError as error:
            executor.shutdown(wait=False)
            raise QueueError(f"cannot open the queue in {queue_dir}: {error}") from error
        except BaseException:
            executor.shutdown(wait=False)
            raise
        queue = cls(layout, clock or SystemClock(), hooks, executor, syncer)
        queue.recovery = report
        return queue

    async def close(self) -> None:
        """Wait for directory fsyncs in flight, stop the worker threads, drop the spares."""
        await self._syncer.close()
        await asyncio.to_thread(self._executor.shutdown, True)
        self.spares.close()

    async def __aenter__(self) -> Queue:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def stats(self) -> QueueStats:
        return QueueStats(self._commits, self._syncer.fsyncs)

    # ----------------------------------------------------------- acceptance

    def begin(self, envelope: Envelope) -> IncomingMessage:
        """Start receiving a message for ``envelope``; its queue id is known at once."""
        return IncomingMessage(self._context, envelope, self._ids.next_id())

    def add_listener(self, callback: Callable[[QueueEntry], None]) -> None:
        """Call ``callback(entry)`` on the event loop after each durable commit."""
        self._listeners.append(callback)

    def _committed(self, entry: QueueEntry) -> None:
        self._commits += 1
        log_received(
            COMPONENT,
            entry.id,
            sender=entry.sender,
            size=entry.size,
            nrcpt=len(entry.envelope.recipients),
        )
        for callback in self._listeners:
            try:
                callback(entry)
            except Exception as error:  # the commit is durable whatever a listener does
                log_event(
                    COMPONENT,
                    f"{entry.id}: commit listener failed: {error!r}",
                    level=logging.ERROR,
                )

    # ---------------------------------------------------------------- reads

    async def load(self, queue_id: QueueId | str) -> QueueEntry:
        """The message's entry; ``UnknownQueueId`` if absent, ``CorruptQueueFile`` if broken."""
        checked = _checked_id(queue_id)
        entry = self._now(self._entries.read, checked)
        if entry is None:
            raise UnknownQueueId(checked)
        return entry

    async def list(self) -> builtins.list[QueueEntry]:
        """Every message in the queue, oldest id first (reads qf files only).

        A qf that does not parse is skipped with a maillog warning (the next
        ``open()`` or ``pending()`` quarantines it).
        """
        return [entry for entry, _ in await self._run(self._entries.scan) if entry is not None]

    async def pending(self, now: float | None = None) -> builtins.list[QueueId]:
        """Ids due for delivery at ``now``: not held, some recipient due; earliest first.

        A qf found corrupt here is quarantined, so the runner never sees it.
        """
        moment = self.clock.now() if now is None else now
        due: builtins.list[tuple[float, QueueId]] = []
        for entry, queue_id in await self._run(self._entries.scan):
            if entry is None:
                await self.quarantine(queue_id, "control file corrupt (found by the runner)")
                continue
            when = entry.due_at()
            if not entry.held and when is not None and when <= moment:
                due.append((when, entry.id))
        due.sort()
        return [queue_id for _, queue_id in due]

    async def open_data(self, queue_id: QueueId | str) -> DataReader:
        """A stream of the message octets, checked against the qf's size and SHA-256."""
        checked = _checked_id(queue_id)

        entry = self._now(self._entries.read, checked)
        if entry is None:
            raise UnknownQueueId(checked)
        return self.open_entry_data(entry)

    def open_entry_data(self, entry: QueueEntry) -> DataReader:
        """The data stream of an entry already loaded (the qf is not parsed again).

        A message this process has claimed is read through a duplicate of the
        claim's descriptor (no second open of the file).
        """
        claimed = self._claims.get(entry.id)
        if claimed is not None:
            return DataReader(entry.id, os.dup(claimed), entry.size, entry.sha256)
        try:
            fd = os.open(self.layout.data(entry.id), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as error:
            raise CorruptQueueFile(f"{entry.id}: data file missing") from error
        except OSError as error:
            raise QueueError(f"{entry.id}: cannot open the data file: {error}") from error
        return DataReader(entry.id, fd, entry.size, entry.sha256)

    # ----------------------------------------------------------- claims

    async def claim(self, queue_id: QueueId | str) -> QueueEntry | None:
        """Take the message for one delivery attempt; its current entry, or None.

        The claim is the df's ``flock``, held until ``end_claim``: while it is
        held no other process (another server worker, ``postoffice queue``)
        can claim or rewrite the message, and no second claim in this process
        succeeds either, so one attempt at a time delivers a message. None when
        someone else holds it (a commit still in progress holds it too) or the
        message is gone. ``finish``, ``update`` and ``remove`` of a claimed
        message work under the claim.
        """
        checked = _checked_id(queue_id)
        if checked in self._claims:
            return None

        def take() -> tuple[int, QueueEntry] | None:
            try:
                fd = lock_file(self.layout.data(checked), wait=False)
            except FileNotFoundError:
                return None
            if fd is None:
                return None
            try:
                entry = self._entries.read(checked)
            except BaseException:
                close_quietly(fd)
                raise
            if entry is None:
                close_quietly(fd)
                return None
            return fd, entry

        taken = self._now(take)
        if taken is None:
            return None
        fd, entry = taken
        if checked in self._claims:  # claimed meanwhile by another task of this process
            close_quietly(fd)
            return None
        self._claims[checked] = fd
        return entry

    def end_claim(self, queue_id: QueueId | str) -> None:
        """End a claim (closing the descriptor drops the lock). Idempotent."""
        close_quietly(self._claims.pop(QueueId(queue_id), None))

    # --------------------------------------------------------- state changes

    async def update(
        self, queue_id: QueueId | str, statuses: Mapping[int, RecipientStatus]
    ) -> QueueEntry:
        """Set recipients' states (by index into the envelope's recipients), durably."""
        return await self._rewrite(queue_id, lambda entry: entry.with_statuses(statuses))

    async def hold(self, queue_id: QueueId | str) -> QueueEntry:
        """Keep the message out of delivery until ``release`` (``postqueue``-style hold)."""
        entry = await self._rewrite(queue_id, lambda entry: replace(entry, held=True))
        log_event(COMPONENT, f"{entry.id}: placed on hold")
        return entry

    async def release(self, queue_id: QueueId | str) -> QueueEntry:
        entry = await self._rewrite(queue_id, lambda entry: replace(entry, held=False))
        log_event(COMPONENT, f"{entry.id}: released from hold")
        return entry

    async def finish(
        self, queue_id: QueueId | str, statuses: Mapping[int, RecipientStatus]
    ) -> QueueEntry | None:
        """Record one delivery attempt: ``update`` it, or remove the message if it is done.

        When the new states leave every recipient final the message is
        removed at once, without writing those states first: a crash before
        the unlink means one more delivery, as a crash before an ``update``
        would (at-least-once, DESIGN.md §5). Returns the rewritten entry, or
        None when the message is gone.
        """

        def recorded(entry: QueueEntry) -> QueueEntry | None:
            new = entry.with_statuses(statuses)
            return None if new.is_complete else new

        return await self._change(queue_id, recorded)

    async def remove(self, queue_id: QueueId | str) -> None:
        """Delete a message whose recipients are all final (delivered or failed)."""

        def removed(entry: QueueEntry) -> None:
            if not entry.is_complete:
                raise QueueStateError(f"{entry.id}: recipients still to deliver")

        await self._change(queue_id, removed)

    async def delete(self, queue_id: QueueId | str) -> None:
        """Delete a message whatever its state (the administrator's ``queue delete``)."""
        checked = _checked_id(queue_id)
        async with self._id_lock(checked):
            fd = await self._lock_data(checked)
            try:
                if not self.layout.control(checked).exists():
                    raise UnknownQueueId(checked)
                self._now(self._unlink_message, checked)
            finally:
                close_quietly(fd)
        log_event(COMPONENT, f"{checked}: deleted by the administrator")

    async def quarantine(self, queue_id: QueueId | str, reason: str) -> None:
        """Move a broken message aside into quarantine/ (logged with ``reason``)."""
        checked = _checked_id(queue_id)
        async with self._id_lock(checked):
            await self._run(quarantine, self.layout, checked, reason)
            self._entries.forget(checked)

    # ------------------------------------------------------------- internals

    async def _run(self, function: Callable[..., _T], *args: object) -> _T:
        """Whole-queue work, in a queue thread."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, function, *args)
        except FileNotFoundError:
            raise
        except OSError as error:
            raise QueueError(f"queue I/O failed: {error}") from error

    def _now(self, function: Callable[..., _T], *args: object) -> _T:
        """One message's file work, on the loop (see the module docstring)."""
        try:
            return function(*args)
        except FileNotFoundError:
            raise
        except OSError as error:
            raise QueueError(f"queue I/O failed: {error}") from error

    def _id_lock(self, queue_id: QueueId) -> asyncio.Lock:
        lock = self._locks.get(queue_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[queue_id] = lock
        return lock

    async def _lock_data(self, queue_id: QueueId) -> int:
        """Take the df's flock, polling while another process holds it; the fd holds it."""
        path = self.layout.data(queue_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOCK_TIMEOUT_SECONDS
        while True:
            try:
                fd = self._now(functools.partial(lock_file, path, wait=False))
            except FileNotFoundError:
                raise UnknownQueueId(queue_id) from None
            if fd is not None:
                return fd
            if loop.time() > deadline:
                raise QueueError(f"{queue_id}: message locked by another process")
            await asyncio.sleep(LOCK_POLL_SECONDS)

    async def _locked(self, queue_id: QueueId, action: Callable[[QueueEntry], _T]) -> _T:
        """``action(entry)`` under the df's flock (lock, read, act, unlock), on the loop.

        The flock is taken without blocking; while another process holds it
        the attempt is retried after a short sleep of the task.
        """
        path = self.layout.data(queue_id)

        def attempt() -> tuple[_T] | None:
            claimed = self._claims.get(queue_id)
            if claimed is not None:
                fd: int | None = claimed  # this process's claim holds the lock already
            else:
                try:
                    fd = lock_file(path, wait=False)
                except FileNotFoundError:
                    raise UnknownQueueId(queue_id) from None
                if fd is None:
                    return None  # locked by another process
            try:
                # Under this process's claim nobody else can have rewritten the qf
                # since the claim read it: its cached entry is current.
                cached = self._entries.cached(queue_id) if claimed is not None else None
                entry = cached if cached is not None else self._entries.read(queue_id)
                if entry is None:
                    raise UnknownQueueId(queue_id)
                return (action(entry),)
            finally:
                if claimed is None:
                    close_quietly(fd)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOCK_TIMEOUT_SECONDS
        while True:
            done = self._now(attempt)
            if done is not None:
                return done[0]
            if loop.time() > deadline:
                raise QueueError(f"{queue_id}: message locked by another process")
            await asyncio.sleep(LOCK_POLL_SECONDS)

    async def _rewrite(
        self, queue_id: QueueId | str, change: Callable[[QueueEntry], QueueEntry]
    ) -> QueueEntry:
        new = await self._change(queue_id, change)
        assert new is not None  # change() always gives an entry
        return new

    async def _change(
        self, queue_id: QueueId | str, change: Callable[[QueueEntry], QueueEntry | None]
    ) -> QueueEntry | None:
        """Read-modify-write of one message under its locks: ``change(entry)`` gives the
        new entry, written durably over the qf, or None, which removes the message."""
        checked = _checked_id(queue_id)

        def change_locked(entry: QueueEntry) -> QueueEntry | None:
            new = change(entry)
            if new is None:
                self._unlink_message(checked)
            else:
                self._replace_control(new)
            return new

        async with self._id_lock(checked):
            new = await self._locked(checked, change_locked)
            if new is not None:
                await self._syncer.sync()
                self.hooks.step("update-dir-fsynced")
        if new is None:
            log_event(COMPONENT, f"{checked}: removed")
        return new

    def _replace_control(self, entry: QueueEntry) -> None:
        """tmp + fsync + rename over the old qf, df lock held."""
        data = render_qf(entry)
        tmp = self.layout.tmp_control(entry.id)
        fd = self.spares.open_new(tmp)
        try:
            write_whole(fd, data)
            self.hooks.step("update-written")
            self.hooks.fsync(fd)
            self.hooks.step("update-fsynced")
            info = os.fstat(fd)  # a rename keeps inode, mtime and size
            os.rename(tmp, self.layout.control(entry.id))
            self.hooks.step("update-renamed")
            self._entries.remember(entry, (info.st_ino, info.st_mtime_ns, info.st_size))
        except Exception:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)

    def _unlink_message(self, queue_id: QueueId) -> None:
        """qf first (the message stops existing), then df."""
        self.spares.retire(self.layout.control(queue_id))
        claimed = self._claims.get(queue_id)
        if claimed is not None:
            # The message is gone: the claim has nothing left to guard, and its
            # lock would keep the df from serving as a spare file.
            with contextlib.suppress(OSError):
                fcntl.flock(claimed, fcntl.LOCK_UN)
        self.spares.retire(self.layout.data(queue_id))
        self._entries.forget(queue_id)


def _checked_id(queue_id: str) -> QueueId:
    if not is_queue_id(queue_id):
        raise UnknownQueueId(queue_id)
    return QueueId(queue_id)
