"""The maildrop as one POP3 session sees it: numbers, sizes, marks.

What this module owns: the listing the driver handed over at login (unique
id and wire size per message, in message-number order), the deletion marks
(RFC 1939 §5 DELE, RSET), the "highest number accessed" of RFC 1460 §5
(LAST), and which messages were sent whole by RETR (for the driver's UPDATE).

Invariants:
- message numbers are 1-based and never change during the session
  (RFC 1939 §5: a deleted message keeps its number, later ones do not move);
- a deleted message counts nowhere: not in STAT, not in a scan or unique-id
  listing, and any command naming it is refused;
- RFC 1460 §5 (text of RFC 1225, unchanged there): RETR and DELE raise the
  highest number accessed to the message's number; RSET sets it back to its
  value at the start of the session, which is 0 here since nothing is kept
  across sessions. TOP raises it too (the brief for this module asks for it;
  RFC 1460 is silent about TOP).
"""

from __future__ import annotations

from collections.abc import Sequence

from postoffice.protocol.errors import ProtocolUsageError

MAX_UIDL_LENGTH = 70  # RFC 1939 §7 UIDL: 1 to 70 characters in 0x21..0x7E


def _valid_uidl(uidl: str) -> bool:
    # Printable ASCII is 0x20..0x7E; a space is the one of them a UIDL may not hold.
    return (
        0 < len(uidl) <= MAX_UIDL_LENGTH
        and uidl.isascii()
        and uidl.isprintable()
        and " " not in uidl
    )


class Maildrop:
    """Message numbers, sizes, unique ids and the session's marks."""

    __slots__ = ("_deleted", "_last", "_retrieved", "_sizes", "_uidls")

    def __init__(self, listing: Sequence[tuple[str, int]]) -> None:
        uidls: list[str] = []
        sizes: list[int] = []
        for uidl, size in listing:
            if not isinstance(uidl, str) or not _valid_uidl(uidl):
                raise ProtocolUsageError(f"invalid unique id {uidl!r} (RFC 1939 §7)")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ProtocolUsageError(f"invalid message size {size!r}")
            uidls.append(uidl)
            sizes.append(size)
        if len(set(uidls)) != len(uidls):
            raise ProtocolUsageError("unique ids must be unique within the maildrop")
        self._uidls = tuple(uidls)
        self._sizes = tuple(sizes)
        self._deleted: set[int] = set()
        self._retrieved: set[int] = set()
        self._last = 0

    # ----------------------------------------------------------------- view

    @property
    def count(self) -> int:
        """All messages, deleted ones included (the highest valid number)."""
        return len(self._sizes)

    def stat(self) -> tuple[int, int]:
        """(messages, octets) not marked deleted (RFC 1939 §5 STAT)."""
        live = [size for index, size in enumerate(self._sizes) if index not in self._deleted]
        return len(live), sum(live)

    def live(self) -> list[int]:
        """0-based indexes of the messages not marked deleted, in order."""
        return [index for index in range(len(self._sizes)) if index not in self._deleted]

    def size(self, index: int) -> int:
        return self._sizes[index]

    def uidl(self, index: int) -> str:
        return self._uidls[index]

    def exists(self, number: int) -> bool:
        return 1 <= number <= len(self._sizes)

    def is_deleted(self, index: int) -> bool:
        return index in self._deleted

    @property
    def deleted(self) -> tuple[int, ...]:
        return tuple(sorted(self._deleted))

    @property
    def retrieved(self) -> tuple[int, ...]:
        return tuple(sorted(self._retrieved))

    @property
    def last(self) -> int:
        """RFC 1460 §5 LAST: the highest message number accessed, 0 if none."""
        return self._last

    # -------------------------------------------------------------- changes

    def delete(self, index: int) -> None:
        self._deleted.add(index)
        self.accessed(index)  # RFC 1460 §5 DELE

    def reset(self) -> None:
        """RFC 1939 §5 RSET; RFC 1460 §5: the highest number accessed goes back too."""
        self._deleted.clear()
        self._last = 0

    def accessed(self, index: int) -> None:
        self._last = max(self._last, index + 1)

    def retrieved_whole(self, index: int) -> None:
        self._retrieved.add(index)
