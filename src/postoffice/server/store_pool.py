"""User stores shared by the sessions of one serving process.

What this module owns: ``StorePool``, which hands out one open
``FileMailStore`` per user to every session that needs it (an IMAP client
keeps several connections open; a phone reconnects all day) and keeps it
open a while after the last session let go. Opening a store costs an index
open with its integrity check, a look at the folders and a ``tmp/`` clean:
work for a first login, not for every one.

Invariants: a store is closed only when no session holds it; at most
``capacity`` idle stores stay open, each for at most ``idle_seconds`` after
its last release; two sessions that log in at once share one open.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from postoffice.core.address import Address
from postoffice.core.errors import StoreError
from postoffice.store import StoreFactory
from postoffice.store.service import FileMailStore

IDLE_SECONDS = 120.0
CAPACITY = 1000


@dataclass
class _Held:
    store: FileMailStore
    users: int = 0
    idle_since: float = field(default_factory=time.monotonic)


class StorePool:
    """See the module docstring."""

    def __init__(
        self, factory: StoreFactory, *, idle_seconds: float = IDLE_SECONDS, capacity: int = CAPACITY
    ):
        self.factory = factory
        self.idle_seconds = idle_seconds
        self.capacity = capacity
        self._held: dict[str, _Held] = {}
        self._opening: dict[str, asyncio.Future[FileMailStore]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._held)

    async def acquire(self, address: Address) -> FileMailStore:
        """The user's open store (opened, and the user provisioned, if need be)."""
        key = str(self.factory.paths(address).mail_dir)
        held = self._held.get(key)
        if held is None:
            pending = self._opening.get(key)
            if pending is not None:
                await asyncio.shield(pending)
            else:
                future: asyncio.Future[FileMailStore] = asyncio.get_running_loop().create_future()
                self._opening[key] = future
                try:
                    store = await self.factory.open(address, create=True)
                except BaseException as exc:
                    future.set_exception(exc)
                    future.exception()  # retrieved: waiters re-raise it themselves
                    raise
                finally:
                    del self._opening[key]
                self._held[key] = _Held(store)
                future.set_result(store)
            held = self._held.get(key)
            if held is None:
                raise StoreError("the mail store closed while it was being opened")
        held.users += 1
        self._trim()
        return held.store

    def release(self, store: FileMailStore) -> None:
        """A session is done with ``store``; it stays open for the next one a while."""
        key = str(store.paths.mail_dir)
        held = self._held.get(key)
        if held is None or held.store is not store:
            self._close_later(store)
            return
        held.users -= 1
        if held.users <= 0:
            held.users = 0
            held.idle_since = time.monotonic()
        self._trim()

    def _trim(self) -> None:
        now = time.monotonic()
        idle = sorted((held.idle_since, key) for key, held in self._held.items() if held.users == 0)
        excess = len(idle) - self.capacity
        for number, (since, key) in enumerate(idle):
            if number < excess or now - since >= self.idle_seconds:
                self._close_later(self._held.pop(key).store)

    def _close_later(self, store: FileMailStore) -> None:
        task = asyncio.ensure_future(_close(store))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close every store (at server stop)."""
        for key in list(self._held):
            self._close_later(self._held.pop(key).store)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


async def _close(store: FileMailStore) -> None:
    with contextlib.suppress(StoreError, OSError):
        await store.close()
