"""QRESYNC (RFC 7162 §3.2): telling a client which of its messages vanished.

What this module owns: the ``VANISHED (EARLIER)`` answers of SELECT/EXAMINE
with the QRESYNC parameter (§3.2.5) and of UID FETCH with CHANGEDSINCE and
VANISHED (§3.2.6), the FETCH responses that bring a resynchronising client's
flags up to date (§3.2.5), and ``send_vanished``, the ``VANISHED`` that stands
for EXPUNGE once the client enabled QRESYNC (§3.2.10).

Decisions and invariants:

- ``VANISHED (EARLIER)`` never names a UID the session's view still holds (one
  another session expunged and this one has not reported yet): it is reported
  as a plain ``VANISHED`` with the other news, which also lowers the client's
  EXISTS, so that the client's count and the view's stay the same.
- When the store forgot expunges as old as the client's MODSEQ
  (``ExpungedSince.complete`` is False), every UID of the client's set below
  UIDNEXT that names no message is reported: §3.2.5.1 lets the server name
  UIDs that were never there, and none that vanished is missed.
- seq-match-data (§3.2.5.2) is read and checked by the parser; it only helps
  a server without expunge history to send fewer UIDs, and is not used here.
- A plain ``VANISHED`` names only UIDs of the view (RFC 7162 §3.2.10: the
  client removes them from its numbering).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence

from postoffice.protocol.imap.commands import Fetch
from postoffice.protocol.imap.modifiers import Qresync
from postoffice.protocol.imap.responses import fetch_flags, vanished
from postoffice.protocol.imap.sequence import MAX_NUMBER, SavedResult, format_sequence
from postoffice.server.imap_context import SessionState
from postoffice.server.imap_view import MailboxView, flag_names
from postoffice.store.api import ExpungedSince


def _format_ranges(ranges: Iterable[tuple[int, int]]) -> str:
    return ",".join(str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in ranges)


def _inside(ranges: Sequence[tuple[int, int]], uid: int) -> bool:
    index = bisect_right(ranges, (uid, MAX_NUMBER + 1)) - 1
    return index >= 0 and ranges[index][0] <= uid <= ranges[index][1]


def vanished_among(
    found: ExpungedSince, ranges: Sequence[tuple[int, int]], view: MailboxView
) -> str | None:
    """The uid-set of ``VANISHED (EARLIER)`` for the client's UIDs ``ranges`` (sorted,
    disjoint), or None when there is nothing to say (see the module docstring)."""
    if found.complete:
        uids = [u for u in found.uids if _inside(ranges, u) and view.number_of(u) is None]
        return format_sequence(uids) if uids else None
    gaps: list[tuple[int, int]] = []
    last = view.uidnext - 1
    for low, top in ranges:
        high = min(top, last)
        start = bisect_left(view.uids, low)
        stop = bisect_right(view.uids, high, lo=start)
        at = low
        for uid in view.uids[start:stop]:
            if uid > at:
                gaps.append((at, uid - 1))
            at = uid + 1
        if at <= high:
            gaps.append((at, high))
    return _format_ranges(gaps) if gaps else None


async def resync_selected(state: SessionState, view: MailboxView, qresync: Qresync) -> None:
    """After a SELECT/EXAMINE's usual responses (RFC 7162 §3.2.5): what vanished of
    the client's known UIDs since its MODSEQ, then the messages changed since,
    with UID, FLAGS and MODSEQ. A different UIDVALIDITY says nothing more: the
    client starts again from the usual responses."""
    assert state.store is not None
    if qresync.uidvalidity != view.uidvalidity:
        return
    if qresync.known_uids is not None:
        ranges = qresync.known_uids.resolve(MAX_NUMBER)
    else:  # §3.2.5: omitted, the known UIDs are 1:UIDNEXT-1
        ranges = [(1, view.uidnext - 1)] if view.uidnext > 1 else []
    found = await state.store.vanished_since(view.name, qresync.modseq)
    uids = vanished_among(found, ranges, view)
    if uids is not None:
        state.conn.send(vanished(uids, earlier=True))
    for number, uid in enumerate(view.uids, 1):
        info = view.infos[uid]
        if info.modseq > qresync.modseq:
            state.conn.send(fetch_flags(number, flag_names(info), uid, info.modseq))


async def fetch_vanished(state: SessionState, view: MailboxView, command: Fetch) -> None:
    """UID FETCH ... (CHANGEDSINCE m VANISHED), before its FETCH responses (RFC 7162
    §3.2.6): the UIDs of the requested set expunged since ``m``."""
    assert state.store is not None and command.changed_since is not None
    if isinstance(command.sequence, SavedResult):
        ranges = [(u, u) for u in sorted(set(state.saved))]
    else:
        ranges = command.sequence.resolve(view.uids[-1] if view.uids else view.uidnext - 1)
    found = await state.store.vanished_since(view.name, command.changed_since)
    uids = vanished_among(found, ranges, view)
    if uids is not None:
        state.conn.send(vanished(uids, earlier=True))


def send_vanished(state: SessionState, uids: Sequence[int]) -> None:
    """``* VANISHED uids`` (RFC 7162 §3.2.10) for messages just dropped from the view."""
    if uids:
        state.conn.send(vanished(format_sequence(uids)))
