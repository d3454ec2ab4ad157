"""Open user stores kept across deliveries: ``StoreCache`` and its ``Mailbox`` handle.

Local delivery writes to the same few mailboxes over and over; opening a
user's store (SQLite index, provisioning check, folder adoption) for every
message, and closing it after (which checkpoints and deletes the index's WAL,
so that the next commit creates it again and SQLite fsyncs the directory),
costs more than the delivery. ``StoreCache`` keeps up to ``capacity`` engines
open, least recently used first out, and closes one idle for
``idle_seconds``; ``close`` closes them all (the delivery agent calls it
when it drains).

Where a job runs: a Maildir delivery runs on the event loop itself, an mbox
one in a worker thread. A Maildir delivery is a few small file operations
and one SQLite transaction, and waits on no lock that another program holds
(only the per-user lock of our own processes, held as briefly); run in a
thread beside a busy event loop, its two dozen system calls each hand the
GIL back and forth, which cost more CPU than the work itself (measured:
about a fifth of the server's CPU per message). An mbox delivery may wait,
with sleeps, for a mail reader's lock on the mbox: never on the loop.

Invariants:
- One call per use (``run``), on the loop or in one worker thread: the
  engine is opened (if it is not), the caller's job runs, and the changes
  it made are published on the factory's change hub after it, from the
  event loop, as ``FileMailStore`` does. The durability of each delivery is
  the engine's, unchanged: nothing is deferred or batched here.
- An engine in use (``users``) is never closed; one that must go while in
  use (over capacity) goes once its last user is done. The engine's own
  locks (thread lock, then the per-user file lock) serialise deliveries to
  one user from several tasks, and exclude other processes, as before.
- Before each use the engine checks that its index is still the file at its
  path (``UserEngine.ensure_open``), so a rebuilt index or a removed user
  directory is opened again, never written behind.
- The tmp/ clean-up (Maildir: files older than 36 hours) runs at most once
  an hour per user, in the background maintenance, never in a delivery.
- Foreign exceptions from the engine leave ``Mailbox.deliver`` as
  ``StoreError`` (the service's one translation rule); what the job itself
  raises passes unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from postoffice.core.address import Address
from postoffice.core.quota import Usage
from postoffice.store import names
from postoffice.store.api import Change
from postoffice.store.backend import AppendMeta
from postoffice.store.engine import AlreadyDelivered, UserEngine
from postoffice.store.fileio import MessageSource
from postoffice.store.service import StoreFactory, translate_error

T = TypeVar("T")

TMP_CLEAN_INTERVAL = 3600.0


@dataclass
class _Entry:
    engine: UserEngine
    users: int = 0
    last_used: float = 0.0
    cleaned_at: float | None = None


class Mailbox:
    """One user's store inside a ``StoreCache.run`` job (synchronous: loop or worker thread)."""

    def __init__(self, cache: StoreCache, engine: UserEngine, changes: list[Change], create: bool):
        self._cache = cache
        self._engine = engine
        self._changes = changes
        self._create = create

    def usage(self) -> Usage:
        """What the user's mailboxes hold (one aggregate query on the index)."""
        try:
            self._engine.ensure_open(create=self._create)
            return self._engine.usage(self._changes)
        except BaseException as exc:
            translated = translate_error(exc, "usage")
            if translated is exc:
                raise
            raise translated from exc

    def delivered(self, key: str) -> bool:
        """Whether the copy ``deliver`` makes with ``key`` is in the index already."""
        try:
            self._engine.ensure_open(create=self._create)
            return self._engine.delivered(key) is not None
        except BaseException as exc:
            translated = translate_error(exc, "delivery")
            if translated is exc:
                raise
            raise translated from exc

    def deliver(
        self,
        data: MessageSource,
        sender: str = "",
        key: str | None = None,
        *,
        repeated: bool = False,
        synced_later: bool = False,
    ) -> int | None:
        """Local delivery to INBOX (``sender`` for the mbox ``From`` line); returns the UID.

        With ``key`` (the queue's name for this copy) a delivery that was made
        already, before a crash kept it in the queue, is not made again: None.
        ``repeated``: this attempt may follow such a crash (look on disk too).
        ``synced_later``: the caller syncs the file system before it counts
        the copy delivered (``AppendMeta.synced_later``).
        """
        meta = AppendMeta(
            flags=0,
            keywords="",
            internal_date=self._cache.factory.clock.now(),
            sender=sender,
            delivery_key=key,
            resync=repeated,
            synced_later=synced_later,
        )
        try:
            self._engine.ensure_open(create=self._create)
            return self._engine.append(names.INBOX, data, meta, self._changes)
        except AlreadyDelivered:
            return None
        except BaseException as exc:
            translated = translate_error(exc, "delivery")
            if translated is exc:
                raise
            raise translated from exc


class StoreCache:
    """Open engines of one ``StoreFactory``, by user (see the module docstring)."""

    def __init__(
        self,
        factory: StoreFactory,
        *,
        capacity: int = 64,
        idle_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.factory = factory
        self.capacity = capacity
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._timer: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._inline = factory.layout.format == "maildir"

    def __len__(self) -> int:
        return len(self._entries)

    async def run(self, address: Address, job: Callable[[Mailbox], T], *, create: bool = True) -> T:
        """Run ``job(mailbox)`` with the user's store, on the loop or in a thread.

        On the loop for Maildir (see the module docstring): the job then runs
        to its end before anything else on the loop does. The store is opened
        only when the job delivers (``Mailbox.deliver``), so a job that
        decides not to deliver costs no open. If the caller is cancelled, a
        thread job still finishes in its thread; the engine stays in use
        until it does.
        """
        key = str(self.factory.paths(address).mail_dir)
        entry = self._entries.get(key)
        if entry is None:
            engine = UserEngine(
                self.factory.layout,
                self.factory.address(address),
                self.factory.clock,
                lock_timeout=self.factory.lock_timeout,
            )
            entry = _Entry(engine, last_used=self._clock())
            self._entries[key] = entry
        self._entries.move_to_end(key)
        entry.users += 1
        changes: list[Change] = []
        mailbox = Mailbox(self, entry.engine, changes, create)

        def done(work: object = None) -> None:
            entry.users -= 1
            entry.last_used = self._clock()
            self.factory.hub.publish(key, changes)
            self._trim()
            self._arm()

        if self._inline:
            try:
                return job(mailbox)
            finally:
                done()
        work = asyncio.get_running_loop().run_in_executor(None, job, mailbox)
        work.add_done_callback(done)
        return await asyncio.shield(work)

    async def close(self) -> None:
        """Close every engine not in use (all of them once deliveries are drained)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        idle = [key for key, entry in self._entries.items() if entry.users == 0]
        engines = [self._entries.pop(key).engine for key in idle]
        if engines:
            await asyncio.to_thread(_close_all, engines, [])
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    # -- background maintenance -------------------------------------------------------

    def _trim(self) -> None:
        """Over capacity: close the least recently used engines that nobody uses."""
        excess = len(self._entries) - self.capacity
        if excess <= 0:
            return
        doomed = []
        for key, entry in list(self._entries.items()):
            if excess <= 0:
                break
            if entry.users == 0:
                del self._entries[key]
                doomed.append(entry.engine)
                excess -= 1
        self._spawn(doomed, [])

    def _arm(self) -> None:
        if self._timer is None and self._entries:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.idle_seconds / 2, self._maintain)

    def _maintain(self) -> None:
        """Close engines idle for ``idle_seconds``; clean tmp/ of the others hourly."""
        self._timer = None
        now = self._clock()
        doomed = []
        for key, entry in list(self._entries.items()):
            if entry.users == 0 and now - entry.last_used >= self.idle_seconds:
                del self._entries[key]
                doomed.append(entry.engine)
        cleaning = []
        for entry in self._entries.values():
            if entry.cleaned_at is None or now - entry.cleaned_at >= TMP_CLEAN_INTERVAL:
                entry.cleaned_at = now
                cleaning.append(entry.engine)
        self._spawn(doomed, cleaning)
        self._arm()

    def _spawn(self, closing: list[UserEngine], cleaning: list[UserEngine]) -> None:
        if not closing and not cleaning:
            return
        task = asyncio.ensure_future(asyncio.to_thread(_close_all, closing, cleaning))
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _close_all(closing: list[UserEngine], cleaning: list[UserEngine]) -> None:
    for engine in closing:
        with contextlib.suppress(Exception):
            engine.close()
    for engine in cleaning:
        # Only an engine a delivery opened has folders to clean; a failure
        # here costs nothing but a later retry.
        with contextlib.suppress(Exception):
            if engine.is_open:
                engine.clean_tmp()
