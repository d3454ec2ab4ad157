"""The queue's errors: every failure of the spool surfaces as a ``QueueError``.

Foreign exceptions (``OSError`` from the file system, ``UnicodeError`` and
``ValueError`` from parsing) are translated here, at the queue's boundary
(DESIGN.md §6), so callers catch one family. The SMTP driver turns a
``QueueError`` from ``commit()`` into a 451 4.3.0 reply: the client keeps
the message and retries, which is the sender-side half of reliable
delivery (RFC 5321 §6.1).
"""

from __future__ import annotations

from postoffice.core.errors import PostofficeError


class QueueError(PostofficeError):
    """A queue operation failed; nothing was acknowledged that is not on disk."""


class CorruptQueueFile(QueueError):
    """A control (qf) or data (df) file fails validation: quarantine, never deliver."""


class UnknownQueueId(QueueError, KeyError):
    """No message with this queue id is in the queue (delivered, deleted or never there)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown queue id"


class QueueStateError(QueueError):
    """The operation does not fit the message's state (remove with recipients pending...)."""
