"""Group commit of local deliveries: one file-system sync for many mailbox copies.

Owns ``MailboxSync``. A Maildir delivery by ``delivery.local`` writes the
message file, links it into ``new/`` and commits its index row without
syncing any of them one by one (``store.backend.AppendMeta.synced_later``).
Before the agent reports the copy delivered, and so before the queue may
drop the message, it awaits ``MailboxSync.sync(path)``, which returns only
after a sync of the file system holding ``path`` that *started after* the
call has succeeded: syncfs(2) (``store.fileio.sync_file_system``), run in a
worker thread. The batching is the queue's directory group commit
(``queue.durable.DirectorySyncer``) with syncfs in place of a directory
fsync: every delivery that finishes while one sync runs joins the next, so
ten concurrent deliveries cost one or two syncs, not thirty fsyncs on the
event loop.

Why no mail is lost (DESIGN.md §5, at-least-once): the queue keeps a message
until each recipient is recorded delivered, and a local recipient is
recorded only after the sync. A crash or power cut before it leaves the
queue entry, and the repeated delivery finds the copy by its key if the copy
survived (no second copy) or makes it again if not. What a power cut can
undo is a copy whose delivery was not recorded yet; an IMAP client that saw
it in that moment sees it again under a new UID.

A sync that fails (a write-back error) raises ``OSError``: the agent defers
the recipient, and the next attempt syncs again before it counts the copy.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from postoffice.queue.durable import DirectorySyncer, FsHooks
from postoffice.store.fileio import sync_file_system


class MailboxSync:
    """Group-committed file-system syncs, one batcher per file system (device)."""

    def __init__(
        self, *, max_in_flight: int = 2, sync: Callable[[int], None] = sync_file_system
    ) -> None:
        self._max_in_flight = max_in_flight
        self._executor = ThreadPoolExecutor(
            max_workers=max_in_flight, thread_name_prefix="mailbox-sync"
        )
        self._hooks = FsHooks(fsync_directory=sync)
        self._by_device: dict[int, DirectorySyncer] = {}

    @property
    def syncs(self) -> int:
        """File-system syncs done so far (for tests and benchmarks)."""
        return sum(syncer.fsyncs for syncer in self._by_device.values())

    async def sync(self, directory: Path) -> None:
        """Return once a sync of ``directory``'s file system, started after this call, is done."""
        device = os.stat(directory).st_dev
        syncer = self._by_device.get(device)
        if syncer is None:
            # Any directory of that file system serves: syncfs(2) reads only
            # which file system its descriptor is on.
            syncer = DirectorySyncer(
                directory, self._hooks, self._executor, max_in_flight=self._max_in_flight
            )
            self._by_device[device] = syncer
        await syncer.sync()

    async def close(self) -> None:
        """Wait for the syncs in progress, then let the threads go."""
        for syncer in self._by_device.values():
            await syncer.close()
        self._by_device.clear()
        self._executor.shutdown(wait=False)
