"""The listings of mailboxes kept between calls: ``ListingCache``.

What this module owns: the list of ``MessageInfo`` (UID, flags, keywords,
internal date, size, MODSEQ of every message) that SELECT, EXAMINE and every
resync of a session need, kept per mailbox by one open store and shared by
all the sessions of a serving process that use that store. Building it from
the index costs a row and an object per message (about half a second for
100,000 messages); a client that selects the same mailbox again, or a second
client on it, gets the kept one, brought up to date from the index.

How it stays true: the index's invariant (``index.py``) is that every
arrival, flag change and expunge of a mailbox takes a new MODSEQ, and
``highestmodseq`` only grows. So a kept listing made at MODSEQ ``m`` is
current exactly while the mailbox row still says ``highestmodseq == m``
(with the same UIDVALIDITY, UIDNEXT and name). When it says more, the rows
changed since ``m`` (``summaries_since``) and the UIDs expunged since ``m``
(``expunged_since``, when the expunged table still reaches back that far)
are merged into a copy; when they are many, or the expunges are not all
known, the listing is read again whole. Changes made by other processes
reach the index the same way, so they are seen too.

Bounds: at most ``capacity`` messages are kept over all mailboxes of one
store; the least recently used listing goes first. Callers get a new list
each time (the ``MessageInfo`` objects are frozen and shared), so nothing a
caller does to its list changes the kept one.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass

from postoffice.store.api import MessageInfo
from postoffice.store.convert import message_infos
from postoffice.store.index import MailboxRow, MailIndex

DEFAULT_CAPACITY = 500_000  # messages, over every kept listing of one store
MERGE_LIMIT = 2_000  # more changed rows than this: read the listing again whole


@dataclass
class _Kept:
    name: str
    uidvalidity: int
    uidnext: int
    modseq: int
    infos: list[MessageInfo]
    uids: list[int]  # the UIDs of ``infos``, for bisect


class ListingCache:
    """See the module docstring. Not thread-safe: the engine calls it under its lock."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        self.capacity = capacity
        self._kept: OrderedDict[int, _Kept] = OrderedDict()
        self._size = 0
        self.reads = 0  # whole listings read from the index (for tests and benchmarks)
        self.merges = 0  # listings brought up to date by a merge

    def listing(self, box: MailboxRow, index: MailIndex) -> list[MessageInfo]:
        """Every message of ``box``, in UID order, as the index has them now."""
        kept = self._kept.get(box.id)
        if kept is not None and (kept.name, kept.uidvalidity) == (box.name, box.uidvalidity):
            if kept.modseq == box.highestmodseq and kept.uidnext == box.uidnext:
                self._kept.move_to_end(box.id)
                return list(kept.infos)
            if kept.modseq < box.highestmodseq and self._merge(kept, box, index):
                self._kept.move_to_end(box.id)
                infos = list(kept.infos)
                self._trim()  # a merge may have grown it past the capacity
                return infos
        self.reads += 1
        infos = message_infos(index.summaries(box.id))
        self._keep(box, infos)
        return list(infos)

    def clear(self) -> None:
        self._kept.clear()
        self._size = 0

    def _merge(self, kept: _Kept, box: MailboxRow, index: MailIndex) -> bool:
        """Bring ``kept`` to ``box``'s MODSEQ in place; False when it must be read whole."""
        gone = index.expunged_since(box.id, kept.modseq)
        if not gone.complete:
            return False  # RFC 7162 §3.2.5.1 floor: the expunges since are not all known
        changed = index.summaries_since(box.id, kept.modseq)
        if len(changed) + len(gone.uids) > MERGE_LIMIT:
            return False
        infos, uids = list(kept.infos), list(kept.uids)
        for uid in gone.uids:
            at = bisect.bisect_left(uids, uid)
            if at < len(uids) and uids[at] == uid:
                del uids[at], infos[at]
        for info in message_infos(changed):
            at = bisect.bisect_left(uids, info.uid)
            if at < len(uids) and uids[at] == info.uid:
                infos[at] = info
            else:
                uids.insert(at, info.uid)
                infos.insert(at, info)
        self._size += len(infos) - len(kept.infos)
        kept.infos, kept.uids = infos, uids
        kept.modseq, kept.uidnext = box.highestmodseq, box.uidnext
        self.merges += 1
        return True

    def _keep(self, box: MailboxRow, infos: list[MessageInfo]) -> None:
        old = self._kept.pop(box.id, None)
        if old is not None:
            self._size -= len(old.infos)
        if len(infos) > self.capacity:
            return
        uids = [info.uid for info in infos]
        self._kept[box.id] = _Kept(
            box.name, box.uidvalidity, box.uidnext, box.highestmodseq, infos, uids
        )
        self._size += len(infos)
        self._trim()

    def _trim(self) -> None:
        """Drop the least recently used listings until the kept ones fit ``capacity``."""
        while self._kept and self._size > self.capacity:
            _, dropped = self._kept.popitem(last=False)
            self._size -= len(dropped.infos)
