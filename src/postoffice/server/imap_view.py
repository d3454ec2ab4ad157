"""The selected mailbox as one IMAP session sees it: numbers, UIDs, flags, pending news.

What this module owns: ``MailboxView``, the session's picture of its
selected mailbox (RFC 9051 §2.3.1.2: message sequence numbers are the
session's own), and how that picture catches up with the store:

- ``catch_up(changes)`` compares the store's changes (and expunges) with the picture
  and records what the client has not been told: new messages, flag
  changes made by others, and messages expunged by others.
- ``updates(allow_expunge)`` renders that news as untagged responses and
  folds it into the picture. EXPUNGE renumbers messages, so it is only sent
  when ``allow_expunge`` (never during FETCH, STORE or SEARCH, RFC 9051
  §7.5.1); until then an expunged message keeps its number, and the
  picture's EXISTS count does not drop. Once QRESYNC is on, the expunges go
  as one ``VANISHED`` of their UIDs instead (RFC 7162 §3.2.10).
- the session's own changes (its STORE, its EXPUNGE) are folded in by
  ``record_flags`` and ``remove`` so they are not reported twice.

Invariants: ``uids`` is strictly ascending; the number of a message is its
index in ``uids`` plus one; a UID leaves ``uids`` only when its EXPUNGE has
been rendered (or by ``remove`` for the session's own expunges, which the
caller reports itself).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from postoffice.protocol.imap.responses import exists, expunge, fetch_flags
from postoffice.protocol.imap.responses import vanished as vanished_response
from postoffice.protocol.imap.sequence import format_sequence
from postoffice.store.api import MailboxChanges, MessageInfo


@dataclass(slots=True)
class Known:
    """What the client was last told of one message."""

    flags: frozenset[str]
    keywords: frozenset[str]
    modseq: int


def shown_modseq(highestmodseq: int) -> int:
    """A mailbox's HIGHESTMODSEQ as IMAP shows it. The store's is 0 until the first
    message arrives; RFC 7162 §7 has mod-sequence-value start at 1, and clients
    take a HIGHESTMODSEQ of 0 for a mailbox without MODSEQ support and resync it
    on every visit, so 0 is shown as 1. The first message then takes MODSEQ 1
    without moving the value shown: a CONDSTORE client learns of new messages by
    UIDNEXT and EXISTS, not by HIGHESTMODSEQ, so it loses nothing."""
    return max(highestmodseq, 1)


def flag_names(info: MessageInfo | Known) -> list[str]:
    """The FLAGS of a message, system flags first, in a stable order."""
    return sorted(info.flags) + sorted(info.keywords)


class MailboxView:
    """See the module docstring."""

    def __init__(
        self,
        name: str,
        messages: Sequence[MessageInfo],
        *,
        uidvalidity: int,
        uidnext: int,
        highestmodseq: int,
        read_only: bool,
    ):
        self.name = name
        self.read_only = read_only
        self.uidvalidity = uidvalidity
        self.uidnext = uidnext
        self.highestmodseq = highestmodseq
        # While expunges by others wait to be reported (not while answering by
        # number), the MODSEQ up to which the picture had every expunge reported.
        self.held_since: int | None = None
        self.uids: list[int] = [m.uid for m in messages]
        # What the client was told of a message, made on its first change: until
        # then ``infos`` holds exactly that (no object per message at SELECT).
        self._known: dict[int, Known] = {}
        self.infos: dict[int, MessageInfo] = {m.uid: m for m in messages}
        self._vanished: set[int] = set()  # expunged by others, not yet reported
        self._new: list[MessageInfo] = []  # arrived, not yet reported
        self._changed: set[int] = set()  # flags changed by others, not yet reported
        self.keywords_seen: set[str] = {k for m in messages for k in m.keywords}

    def __len__(self) -> int:
        return len(self.uids)

    def known(self, uid: int) -> Known | None:
        """What the client was last told of message ``uid`` (None: not in the picture)."""
        known = self._known.get(uid)
        if known is None:
            info = self.infos.get(uid)  # not changed since the client was told of it
            if info is None:
                return None
            known = self._known[uid] = Known(info.flags, info.keywords, info.modseq)
        return known

    # -- numbers -----------------------------------------------------------------

    def uid_at(self, number: int) -> int:
        return self.uids[number - 1]

    def number_of(self, uid: int) -> int | None:
        index = bisect_left(self.uids, uid)
        if index < len(self.uids) and self.uids[index] == uid:
            return index + 1
        return None

    def is_expunged(self, uid: int) -> bool:
        """Expunged by another session; the client still has its number."""
        return uid in self._vanished

    # -- catching up with the store --------------------------------------------------

    def catch_up(self, changes: MailboxChanges, highestmodseq: int, uidnext: int) -> None:
        """Record the difference between the picture and the store, given (at least)
        what changed since the picture's ``highestmodseq`` (``MailStore.changed_since``:
        the UIDs expunged since, or every UID the mailbox has now)."""
        if changes.expunged is not None:
            gone = [u for u in changes.expunged if u in self.infos and u not in self._vanished]
        else:
            present = set(changes.uids or ())
            gone = [uid for uid in self.uids if uid not in present and uid not in self._vanished]
        changed = changes.changed
        if gone and self.held_since is None:
            self.held_since = self.highestmodseq  # the picture was whole up to here
        self._vanished.update(gone)
        last = self.uids[-1] if self.uids else 0
        if self._new:
            last = max(last, self._new[-1].uid)
        for info in changed:
            known = self.known(info.uid)  # (before ``infos`` takes the new state)
            if known is None:
                if info.uid > last:
                    self._new.append(info)
                    last = info.uid
                continue
            if known.modseq != info.modseq:
                if (info.flags, info.keywords) != (known.flags, known.keywords):
                    self._changed.add(info.uid)
                known.modseq = info.modseq
                self.infos[info.uid] = info
        self.highestmodseq = max(self.highestmodseq, highestmodseq)
        self.uidnext = max(self.uidnext, uidnext)

    @property
    def has_news(self) -> bool:
        return bool(self._vanished or self._new or self._changed)

    def updates(
        self,
        *,
        allow_expunge: bool,
        with_uid: bool = True,
        modseq: bool = False,
        vanished: bool = False,
    ) -> list[bytes]:
        """Untagged responses for the news (see the module docstring); flag changes
        carry their MODSEQ with ``modseq`` (CONDSTORE is on, RFC 7162 §3.1), and
        expunges are one ``VANISHED`` with ``vanished`` (QRESYNC, RFC 7162 §3.2.10)."""
        out: list[bytes] = []
        if allow_expunge and self._vanished:
            gone: list[int] = []
            # Highest number first: each EXPUNGE leaves the lower numbers as they are.
            for uid in sorted(self._vanished, reverse=True):
                number = self.number_of(uid)
                if number is None:
                    continue
                if not vanished:
                    out.append(expunge(number))
                gone.append(uid)
                self._drop(number - 1)
            self._vanished.clear()
            self.held_since = None
            if vanished and gone:
                out.append(vanished_response(format_sequence(gone)))
        for uid in sorted(self._changed):
            number = self.number_of(uid)
            info = self.infos.get(uid)
            if number is None or info is None or uid in self._vanished:
                continue
            known = self.known(uid)
            assert known is not None  # made by ``catch_up`` or ``record_flags``
            known.flags, known.keywords = info.flags, info.keywords
            self.keywords_seen.update(info.keywords)
            out.append(
                fetch_flags(
                    number,
                    flag_names(info),
                    uid if with_uid else None,
                    info.modseq if modseq else None,
                )
            )
        self._changed.clear()
        if self._new:
            for info in self._new:
                self.uids.append(info.uid)
                self.infos[info.uid] = info
                self.keywords_seen.update(info.keywords)
            self._new.clear()
            out.append(exists(len(self.uids)))
        return out

    def _drop(self, index: int) -> None:
        uid = self.uids.pop(index)
        self._known.pop(uid, None)
        self.infos.pop(uid, None)

    # -- the session's own changes --------------------------------------------------

    def record_flags(self, infos: Iterable[MessageInfo]) -> None:
        """Fold in flags the session set itself (its STORE, the \\Seen of a FETCH).

        ``highestmodseq`` is left alone: it says how far the picture has caught up
        with the store, and a change made elsewhere just before this one (with a
        lower MODSEQ) has not been caught up with yet."""
        for info in infos:
            known = self.known(info.uid)  # (before ``infos`` takes the new state)
            if known is None:
                continue
            known.flags, known.keywords, known.modseq = info.flags, info.keywords, info.modseq
            self.infos[info.uid] = info
            self._changed.discard(info.uid)
            self.keywords_seen.update(info.keywords)

    def remove(self, uids: Iterable[int]) -> list[int]:
        """Drop the session's own expunged messages; their numbers, in the order the
        EXPUNGE responses must be sent (each as the number is at that moment)."""
        numbers: list[int] = []
        for uid in sorted(set(uids), reverse=True):
            number = self.number_of(uid)
            if number is None:
                continue
            numbers.append(number)
            self._drop(number - 1)
            self._vanished.discard(uid)
        return numbers
