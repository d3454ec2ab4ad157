"""What SORT and THREAD compare of each message, kept in the process between commands.

What this module owns: ``MessageKeys``, for each mailbox (owner, name,
UIDVALIDITY) and each kind of key (a SORT criterion such as ``"DATE"`` or
``"SUBJECT"``, or ``"THREAD"`` for ``mime.threads.ThreadFacts``), the value
worked out for each message from its header fields
(``imap_fields.keys_for`` reads the fields of the messages whose keys are
not kept yet, and keeps theirs).

A SORT or THREAD of a big mailbox then reads no index row and parses no
date, subject or msg-id again: on 100,000 messages reading and decoding the
header values took more time than ordering them.

Invariants:
- a key depends on the message alone, which never changes under one UID and
  UIDVALIDITY (RFC 9051 §2.3.1.1), so a kept key is never stale; a message
  expunged since leaves its key behind until the mailbox's keys go;
- at most ``KEPT_KEYS`` keys are kept in all: the least recently used
  mailboxes' go first, and a mailbox with more than that keeps none.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Final

KEPT_KEYS: Final = 600_000  # about 60 bytes for a date, 500 for a THREAD's facts

Box = tuple[str, str, int]  # (owner, mailbox, UIDVALIDITY)


class MessageKeys:
    """Keys by mailbox, kind and UID (module docstring)."""

    def __init__(self, limit: int = KEPT_KEYS) -> None:
        self.limit = limit
        self._boxes: OrderedDict[Box, dict[str, dict[int, Any]]] = OrderedDict()

    def kept(self, box: Box, kind: str) -> dict[int, Any]:
        """The keys of ``kind`` kept for ``box`` (an empty dict when none are)."""
        kinds = self._boxes.get(box)
        if kinds is None:
            return {}
        self._boxes.move_to_end(box)
        return kinds.get(kind, {})

    def keep(self, box: Box, kind: str, keys: dict[int, Any]) -> None:
        """Add ``keys`` to those of ``kind`` kept for ``box``, within the bound."""
        kinds = self._boxes.setdefault(box, {})
        self._boxes.move_to_end(box)
        kinds.setdefault(kind, {}).update(keys)
        while self._boxes and self.size() > self.limit:
            self._boxes.popitem(last=False)  # the least recently used first, at last this one

    def size(self) -> int:
        return sum(len(keys) for kinds in self._boxes.values() for keys in kinds.values())
