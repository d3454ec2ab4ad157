"""The in-process change feed: store objects publish, watchers (IMAP IDLE) iterate.

A ``ChangeHub`` is shared by every store object opened from one factory; a
change made through any of them reaches every subscription of the same user
(keyed by the user's mail directory). Changes made by other processes reach
watchers when this process next syncs the mailbox (the sync reports them).

Invariants:
- A subscription sees every change published after it was created, in
  publication order, filtered by mailbox (a rename is seen under both names).
- Memory is bounded (DESIGN.md §5): a subscription holds at most ``limit``
  changes; past that it drops them and queues one ``OVERFLOW`` change, which
  tells the watcher to re-read the mailbox.
- ``publish`` may be called from any thread; waiters are woken on their own
  event loop.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable, Sequence
from types import TracebackType

from postoffice.store.api import Change, ChangeKind

DEFAULT_LIMIT = 10_000


class ChangeSubscription:
    """An async iterator of ``Change``; ``close()`` or ``async with`` ends it."""

    def __init__(self, hub: ChangeHub, user: str, mailbox: str | None, limit: int):
        self._hub = hub
        self.user = user
        self.mailbox = mailbox
        self._limit = limit
        self._items: collections.deque[Change] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._overflowed = False
        self._closed = False

    def wants(self, change: Change) -> bool:
        return self.mailbox is None or self.mailbox in (change.mailbox, change.new_name)

    def push(self, change: Change) -> None:
        if self._closed:
            return
        if len(self._items) >= self._limit:
            if not self._overflowed:
                self._overflowed = True
                self._items.append(Change(ChangeKind.OVERFLOW, self.mailbox or ""))
        else:
            self._items.append(change)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is None:
            return
        loop = waiter.get_loop()
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            _resolve(waiter)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(_resolve, waiter)

    def pending(self) -> int:
        """How many changes wait to be read."""
        return len(self._items)

    def __aiter__(self) -> ChangeSubscription:
        return self

    async def __anext__(self) -> Change:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        change = self._items.popleft()
        if change.kind is ChangeKind.OVERFLOW:
            self._overflowed = False
        return change

    def close(self) -> None:
        self._closed = True
        self._hub.remove(self)
        self._wake()

    async def __aenter__(self) -> ChangeSubscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class ChangeHub:
    """Routes published changes to the subscriptions of the same user."""

    def __init__(self, *, limit: int = DEFAULT_LIMIT):
        self._limit = limit
        self._lock = threading.Lock()
        self._subscriptions: dict[str, set[ChangeSubscription]] = {}
        # Called with every change published here, to tell other processes
        # serving the same stores (``server.change_relay``); never with the
        # changes those processes relayed in (``publish_relayed``).
        self.relay: Callable[[str, Sequence[Change]], None] | None = None

    def subscribe(self, user: str, mailbox: str | None = None) -> ChangeSubscription:
        subscription = ChangeSubscription(self, user, mailbox, self._limit)
        with self._lock:
            self._subscriptions.setdefault(user, set()).add(subscription)
        return subscription

    def remove(self, subscription: ChangeSubscription) -> None:
        with self._lock:
            group = self._subscriptions.get(subscription.user)
            if group is not None:
                group.discard(subscription)
                if not group:
                    del self._subscriptions[subscription.user]

    def publish(self, user: str, changes: Sequence[Change]) -> None:
        if not changes:
            return
        if self.relay is not None:
            self.relay(user, changes)
        self.publish_relayed(user, changes)

    def publish_relayed(self, user: str, changes: Sequence[Change]) -> None:
        """Deliver changes to this process's subscriptions only."""
        with self._lock:
            targets = list(self._subscriptions.get(user, ()))
        for subscription in targets:
            for change in changes:
                if subscription.wants(change):
                    subscription.push(change)
