"""The queue's control files as parsed entries, cached by file identity.

Owns ``ControlFiles``: reading a ``qfID`` into a ``QueueEntry`` and keeping
the result keyed by the file's (inode, mtime, size). A rewrite is a rename
of a new file over the old one, so a new inode: one ``stat`` tells whether a
cached entry is still the file's, and a file is parsed again only when it
changed. The queue's own writes hand their entry over (``remember``), so a
message just committed or rewritten is never read back.

Blocking (small files): called on the event loop for one message, and from
a queue thread for the scans; each use of the cache is one dictionary
operation, atomic under the GIL.
"""

from __future__ import annotations

import logging
import os

from postoffice.core.maillog import log_event
from postoffice.queue.errors import CorruptQueueFile
from postoffice.queue.ids import QueueId
from postoffice.queue.layout import CONTROL_PREFIX, SpoolLayout, split_name
from postoffice.queue.model import QueueEntry
from postoffice.queue.qffile import MAX_QF_OCTETS, parse_qf
from postoffice.queue.recovery import COMPONENT

FileKey = tuple[int, int, int]  # st_ino, st_mtime_ns, st_size


class ControlFiles:
    """The parsed ``qf`` files of one queue directory (see the module docstring)."""

    def __init__(self, layout: SpoolLayout):
        self.layout = layout
        self._cache: dict[QueueId, tuple[FileKey, QueueEntry]] = {}

    def remember(self, entry: QueueEntry, key: FileKey) -> None:
        """The entry of a qf this process has just written, with its file's key."""
        self._cache[entry.id] = (key, entry)

    def cached(self, queue_id: QueueId) -> QueueEntry | None:
        """The cached entry, unchecked: for a caller whose lock kept the file unchanged."""
        found = self._cache.get(queue_id)
        return None if found is None else found[1]

    def forget(self, queue_id: QueueId) -> None:
        self._cache.pop(queue_id, None)

    def read(self, queue_id: QueueId) -> QueueEntry | None:
        """The parsed qf; None if it is absent; ``CorruptQueueFile`` if it does not parse."""
        path = self.layout.control(queue_id)
        cached = self._cache.get(queue_id)
        if cached is not None:
            try:
                info = os.stat(path)
            except FileNotFoundError:
                self.forget(queue_id)
                return None
            if cached[0] == (info.st_ino, info.st_mtime_ns, info.st_size):
                return cached[1]
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self.forget(queue_id)
            return None
        try:
            info = os.fstat(fd)
            if info.st_size > MAX_QF_OCTETS:
                raise CorruptQueueFile(f"{queue_id}: control file larger than {MAX_QF_OCTETS}")
            data = os.read(fd, MAX_QF_OCTETS + 1)
        finally:
            os.close(fd)
        try:
            entry = parse_qf(data, expected_id=queue_id)
        except CorruptQueueFile as error:
            raise CorruptQueueFile(f"{queue_id}: {error}") from error
        self._cache[queue_id] = ((info.st_ino, info.st_mtime_ns, info.st_size), entry)
        return entry

    def scan(self) -> list[tuple[QueueEntry | None, QueueId]]:
        """Every qf, parsed (None for a corrupt one, logged), by id."""
        found: list[tuple[QueueEntry | None, QueueId]] = []
        ids = sorted(
            parsed[1]
            for parsed in map(split_name, os.listdir(self.layout.root))
            if parsed is not None and parsed[0] == CONTROL_PREFIX
        )
        for queue_id in ids:
            try:
                entry = self.read(queue_id)
            except CorruptQueueFile as error:
                log_event(COMPONENT, str(error), level=logging.WARNING)
                found.append((None, queue_id))
                continue
            if entry is not None:
                found.append((entry, queue_id))
        for stale in set(self._cache) - set(ids):
            self.forget(stale)
        return found
