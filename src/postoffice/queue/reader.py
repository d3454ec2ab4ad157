"""Reading a queued message's octets back, checking them as they stream by.

Owns ``DataReader``: a binary stream over a data file ``dfID`` that counts
and hashes what it hands out, and at end of file compares size and SHA-256
with the control file's record. A mismatch raises ``CorruptQueueFile`` at
the read that reaches the end, so a delivery that streams the message into
a mailbox (Maildir tmp→new, mbox with truncate-on-failure) fails before it
makes the message visible: a corrupt data file is never delivered, even
when ``Queue.open(verify_data=False)`` skipped the check at start.

Invariant: at most ``size`` octets are handed out; extra octets in the file
are a mismatch, reported before they are returned. Reads are positional
(``pread``), so the descriptor may be a duplicate of another one (the
queue's claim on the message) without sharing a file offset that matters.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from types import TracebackType

from postoffice.queue.errors import CorruptQueueFile, QueueError
from postoffice.queue.ids import QueueId

READ_CHUNK = 1 << 16


class DataReader:
    """A verifying, read-only binary stream over one data file (see module doc)."""

    def __init__(self, queue_id: QueueId, fd: int, size: int, sha256: str):
        self.queue_id = queue_id
        self.size = size
        self._fd: int | None = fd
        self._expected = sha256
        self._hash = hashlib.sha256()
        self._position = 0
        self._verified = False

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` octets (all that remain if negative); ``b""`` at the end."""
        if self._fd is None:
            raise ValueError("read of a closed DataReader")
        remaining = self.size - self._position
        want = remaining if size < 0 else min(size, remaining)
        parts = []
        while want > 0:
            try:
                chunk = os.pread(self._fd, min(want, READ_CHUNK), self._position)
            except OSError as error:
                raise QueueError(f"{self.queue_id}: cannot read the data file: {error}") from error
            if not chunk:
                raise CorruptQueueFile(
                    f"{self.queue_id}: data file shorter than its recorded {self.size} octets"
                )
            self._hash.update(chunk)
            self._position += len(chunk)
            want -= len(chunk)
            parts.append(chunk)
        if self._position >= self.size and not self._verified:
            self._verify_end()
        return b"".join(parts)

    def _verify_end(self) -> None:
        if self._fd is not None and os.pread(self._fd, 1, self.size):
            raise CorruptQueueFile(
                f"{self.queue_id}: data file longer than its recorded {self.size} octets"
            )
        if not hmac.compare_digest(self._hash.hexdigest(), self._expected):
            raise CorruptQueueFile(f"{self.queue_id}: data file SHA-256 mismatch")
        self._verified = True

    def readable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self._fd is None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
