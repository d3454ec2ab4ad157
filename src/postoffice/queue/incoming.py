"""Accepting one message into the queue: stream the octets in, commit durably.

Owns the acceptance half of DESIGN.md §5: the SMTP driver may answer ``250``
after DATA/BDAT only once ``commit()`` has returned, and ``commit()`` returns
only when, in this order,

1. the data file ``tmp/dfID`` is written and fsync'd,
2. it is renamed to ``dfID``,
3. the control file is written to ``tmp/`` and fsync'd,
4. it is renamed to ``qfID`` (a message exists exactly when its qf does),
5. the queue directory is fsync'd by a directory fsync that started after
   step 4 (``durable.DirectorySyncer``: on the loop, or grouped in threads).

Invariants:
- The message is never held whole in memory: chunks are buffered up to
  ``FLUSH_OCTETS`` and then written out (and hashed).
- The file work runs on the event loop (see ``spool``: a message's few
  small files cost less there than the GIL hand-offs of a thread), and so
  does the directory fsync unless the queue groups them in its threads.
- A commit that fails undoes what it put in place (qf first, then df) and
  raises ``QueueError``: the driver answers 451 and nothing is acknowledged.
  A crash at any step leaves files that ``recovery`` either completes (the
  qf and df are both whole) or removes (anything else), never half a message.
- Once started, a commit runs to its end even if the awaiting task is
  cancelled (a lost 250 is the classic duplicate of RFC 1047, not a loss).

This is the reliability the receiver owes the sender: "accept
responsibility" only once the message is safe (RFC 5321 §6.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from postoffice.core.clock import Clock
from postoffice.core.envelope import Envelope
from postoffice.queue.durable import (
    DirectorySyncer,
    FsHooks,
    close_quietly,
    trim,
    unlink_quietly,
    write_all,
    write_whole,
)
from postoffice.queue.errors import QueueError, QueueStateError
from postoffice.queue.ids import QueueId
from postoffice.queue.layout import SpoolLayout
from postoffice.queue.model import QueueEntry, RecipientStatus
from postoffice.queue.qffile import render_qf
from postoffice.queue.spares import SparePool

FLUSH_OCTETS = 128 * 1024
_T = TypeVar("_T")


@dataclass
class CommitContext:
    """What an ``IncomingMessage`` needs from its ``Queue``."""

    layout: SpoolLayout
    hooks: FsHooks
    syncer: DirectorySyncer
    clock: Clock
    on_committed: Callable[[QueueEntry], None]
    spares: SparePool
    # After the qf rename: (entry, its qf's (inode, mtime_ns, size)),
    # so the queue's parse cache has the entry without reading the file back.
    on_written: Callable[[QueueEntry, tuple[int, int, int]], None] | None = None


class _State(enum.Enum):
    OPEN = "open"
    COMMITTING = "committing"
    COMMITTED = "committed"
    ABORTED = "aborted"
    FAILED = "failed"


def _blank_entry(queue_id: QueueId, envelope: Envelope, arrival: float) -> QueueEntry:
    statuses = tuple(RecipientStatus() for _ in envelope.recipients)
    return QueueEntry(queue_id, envelope, arrival, 0, "0" * 64, statuses)


class IncomingMessage:
    """One message being received; get it from ``Queue.begin(envelope)``.

    ``await write(chunk)`` any number of times, then ``await commit()`` (the
    queue id) or ``await abort()``. As an async context manager it aborts on
    exit unless committed.
    """

    def __init__(self, context: CommitContext, envelope: Envelope, queue_id: QueueId):
        self._ctx = context
        self.envelope = envelope
        self.queue_id = queue_id
        if not envelope.recipients:
            raise QueueError("a message needs at least one recipient")
        # Fail before DATA rather than after it: the envelope must fit a qf.
        render_qf(_blank_entry(queue_id, envelope, context.clock.now()))
        self._state = _State.OPEN
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._size = 0
        self._hash = hashlib.sha256()
        self._df_fd: int | None = None
        self._qf_fd: int | None = None
        self._qf_tmp: Path | None = None
        self._df_renamed = False
        self._qf_renamed = False
        self._commit_task: asyncio.Task[QueueId] | None = None

    @property
    def size(self) -> int:
        """Octets received so far."""
        return self._size + self._buffered

    def set_envelope(self, envelope: Envelope) -> None:
        """Replace the envelope before ``commit`` (the SMTP session's final one)."""
        if self._state is not _State.OPEN:
            raise QueueStateError(
                f"{self.queue_id}: envelope change on a {self._state.value} message"
            )
        if envelope == self.envelope:
            return  # validated at begin(); nothing to check again
        if not envelope.recipients:
            raise QueueError("a message needs at least one recipient")
        render_qf(_blank_entry(self.queue_id, envelope, self._ctx.clock.now()))
        self.envelope = envelope

    async def write(self, chunk: bytes) -> None:
        if self._state is not _State.OPEN:
            raise QueueStateError(f"{self.queue_id}: write on a {self._state.value} message")
        if not chunk:
            return
        self._buffer.append(bytes(chunk))
        self._buffered += len(chunk)
        if self._buffered >= FLUSH_OCTETS:
            chunks = self._take_buffer()
            try:
                self._write_chunks(chunks)
            except OSError as error:
                self._fail()
                raise QueueError(f"{self.queue_id}: cannot write the data file: {error}") from error

    async def commit(self) -> QueueId:
        """Make the message durable (see the module docstring); returns its queue id."""
        if self._state is not _State.OPEN:
            raise QueueStateError(f"{self.queue_id}: commit on a {self._state.value} message")
        self._state = _State.COMMITTING
        self._commit_task = asyncio.get_running_loop().create_task(self._commit())
        return await asyncio.shield(self._commit_task)

    async def abort(self) -> None:
        """Drop the message: nothing of it stays on disk. Idempotent."""
        if self._state in (_State.ABORTED, _State.FAILED):
            return
        if self._state is not _State.OPEN:
            raise QueueStateError(f"{self.queue_id}: abort on a {self._state.value} message")
        self._state = _State.ABORTED
        self._buffer.clear()
        self._buffered = 0
        self._remove_tmp()

    async def __aenter__(self) -> IncomingMessage:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._state is _State.OPEN:
            await self.abort()
        elif self._state is _State.COMMITTING and self._commit_task is not None:
            # The awaiting task was cancelled mid-commit: let the commit finish.
            await asyncio.gather(self._commit_task, return_exceptions=True)

    # ---------------------------------------------------------------- internals

    def _take_buffer(self) -> list[bytes]:
        chunks, self._buffer, self._buffered = self._buffer, [], 0
        return chunks

    def _fail(self) -> None:
        self._state = _State.FAILED
        self._buffer.clear()
        self._buffered = 0
        with contextlib.suppress(OSError):
            self._remove_tmp()

    async def _commit(self) -> QueueId:
        chunks = self._take_buffer()
        try:
            entry = self._write_files(chunks)
            await self._ctx.syncer.sync()
            self._ctx.hooks.step("dir-fsynced")
        except Exception as error:
            self._state = _State.FAILED
            # What cannot be undone now is removed by recovery at the next open().
            with contextlib.suppress(OSError):
                self._undo()
            raise QueueError(f"{self.queue_id}: commit failed: {error}") from error
        finally:
            # Closing releases the locks, as a crash would.
            close_quietly(self._df_fd)
            close_quietly(self._qf_fd)
            self._df_fd = self._qf_fd = None
        self._state = _State.COMMITTED
        self._ctx.on_committed(entry)
        return self.queue_id

    def _write_chunks(self, chunks: list[bytes]) -> None:
        """Append ``chunks`` to the tmp data file (created on first use)."""
        if self._df_fd is None:
            self._df_fd = self._ctx.spares.open_new(self._ctx.layout.tmp_data(self.queue_id))
        for chunk in chunks:
            write_all(self._df_fd, chunk)
            self._hash.update(chunk)
            self._size += len(chunk)

    def _write_files(self, chunks: list[bytes]) -> QueueEntry:
        """Steps 1-4 of the commit."""
        layout, hooks = self._ctx.layout, self._ctx.hooks
        self._write_chunks(chunks)
        if self._df_fd is None:  # an empty message: the data file still exists
            self._df_fd = self._ctx.spares.open_new(layout.tmp_data(self.queue_id))
        trim(self._df_fd, self._size)  # a reused spare may hold a longer message
        hooks.step("df-written")
        hooks.fsync(self._df_fd)
        hooks.step("df-fsynced")
        data_path, control_path = layout.data(self.queue_id), layout.control(self.queue_id)
        if data_path.exists() or control_path.exists():
            raise QueueError(f"queue id {self.queue_id} is already in use")
        os.rename(layout.tmp_data(self.queue_id), data_path)
        self._df_renamed = True
        hooks.step("df-renamed")
        entry = QueueEntry(
            id=self.queue_id,
            envelope=self.envelope,
            arrival=self._ctx.clock.now(),
            size=self._size,
            sha256=self._hash.hexdigest(),
            statuses=tuple(RecipientStatus() for _ in self.envelope.recipients),
        )
        self._qf_tmp = layout.tmp_control(self.queue_id)
        self._qf_fd = self._ctx.spares.open_new(self._qf_tmp)
        write_whole(self._qf_fd, render_qf(entry))
        hooks.step("qf-written")
        hooks.fsync(self._qf_fd)
        hooks.step("qf-fsynced")
        info = os.fstat(self._qf_fd)  # a rename keeps inode, mtime and size
        os.rename(self._qf_tmp, control_path)
        self._qf_renamed = True
        hooks.step("qf-renamed")
        if self._ctx.on_written is not None:
            self._ctx.on_written(entry, (info.st_ino, info.st_mtime_ns, info.st_size))
        return entry

    def _remove_tmp(self) -> None:
        close_quietly(self._df_fd)
        close_quietly(self._qf_fd)
        self._df_fd = self._qf_fd = None
        unlink_quietly(self._ctx.layout.tmp_data(self.queue_id))
        if self._qf_tmp is not None:
            unlink_quietly(self._qf_tmp)

    def _undo(self) -> None:
        """Take back a failed commit: qf first (the message stops existing), then df."""
        layout = self._ctx.layout
        if self._qf_renamed:
            unlink_quietly(layout.control(self.queue_id))
        if self._df_renamed:
            unlink_quietly(layout.data(self.queue_id))
        self._remove_tmp()
