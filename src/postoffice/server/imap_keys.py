"""What SORT and THREAD compare of each message, and THREAD's answers, kept in the
process between commands.

What this module owns: ``MessageKeys``, for each mailbox (owner, name,
UIDVALIDITY) and each kind of key (a SORT criterion such as ``"DATE"`` or
``"SUBJECT"``, or ``"THREAD"`` for ``mime.threads.ThreadFacts``), the value
worked out for each message from its header fields
(``imap_fields.keys_for`` reads the fields of the messages whose keys are
not kept yet, and keeps theirs).

A SORT or THREAD of a big mailbox then reads no index row and parses no
date, subject or msg-id again: on 100,000 messages reading and decoding the
header values took more time than ordering them.

``KeptAnswers`` keeps the last THREAD responses by what they were computed
from (``answer_digest``: the UIDVALIDITY, and each matched message's number
and UID): a client that threads an unchanged mailbox again gets the same
octets without the algorithm running (the index keeps the last one of each
kind too, for the other workers: ``store.field_cache``).

Invariants:
- an answer is given back only for the digest it was computed from; the
  messages never change under their UIDs, so equal digests mean equal
  answers;
- a key depends on the message alone, which never changes under one UID and
  UIDVALIDITY (RFC 9051 §2.3.1.1), so a kept key is never stale; a message
  expunged since leaves its key behind until the mailbox's keys go;
- at most ``KEPT_KEYS`` keys are kept in all: the least recently used
  mailboxes' go first, and a mailbox with more than that keeps none.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final

KEPT_KEYS: Final = 600_000  # about 60 bytes for a date, 500 for a THREAD's facts
KEPT_ANSWER_OCTETS: Final = 16 * 1024 * 1024  # a THREAD of 100,000 messages is ~0.8 MB

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


def answer_digest(uidvalidity: int, numbers: Sequence[int], uids: Sequence[int]) -> bytes:
    """What an answer over the messages ``numbers`` (their UIDs ``uids``) was
    computed from."""
    values = array("q", [uidvalidity, len(numbers)])
    values.extend(numbers)  # no Python-level step per message
    values.extend(uids)
    return hashlib.blake2b(values.tobytes(), digest_size=16).digest()


class KeptAnswers:
    """The last answer of each kind for each mailbox, with its digest; the least
    recently used going first past ``limit`` octets in all (module docstring)."""

    def __init__(self, limit: int = KEPT_ANSWER_OCTETS) -> None:
        self.limit = limit
        self._answers: OrderedDict[tuple[str, str, str], tuple[bytes, bytes]] = OrderedDict()
        self._octets = 0

    def get(self, owner: str, mailbox: str, kind: str, digest: bytes) -> bytes | None:
        """The kept answer when it was computed from ``digest``; else None."""
        key = (owner, mailbox, kind)
        found = self._answers.get(key)
        if found is None or found[0] != digest:
            return None
        self._answers.move_to_end(key)
        return found[1]

    def keep(self, owner: str, mailbox: str, kind: str, digest: bytes, answer: bytes) -> None:
        """Keep ``answer`` in place of the last one of its kind for the mailbox."""
        key = (owner, mailbox, kind)
        old = self._answers.pop(key, None)
        if old is not None:
            self._octets -= len(old[1])
        if len(answer) > self.limit:
            return
        self._answers[key] = (digest, answer)
        self._octets += len(answer)
        while self._octets > self.limit:
            _, (_, dropped) = self._answers.popitem(last=False)
            self._octets -= len(dropped)
