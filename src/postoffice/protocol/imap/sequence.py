"""IMAP sequence sets: ``sequence-set`` of RFC 3501 §9 and RFC 9051 §9.

Owns parsing a sequence set, resolving it against a mailbox (message sequence
numbers or UIDs) and writing a set of numbers back in compact form (for
COPYUID/APPENDUID, RFC 4315 §3, and ESEARCH ALL, RFC 4731 §3.1; in the order
given for ESORT, RFC 5267 §3.1). The RFC 5182
``$`` (SEARCHRES) marker is not a sequence set here: the command parser
replaces it before calling ``SequenceSet.parse``.

Invariants:

- A ``SequenceSet`` always holds at least one range; every bound is either an
  ``nz-number`` (1..4294967295) or ``STAR`` (``None``), kept as written
  (``5:2`` stays ``(5, 2)``) so that ``str()`` gives the client's text back.
- ``*`` is never guessed: every method that needs its value takes it
  (``largest``), or reads it from the mailbox it is given.
- ``resolve`` returns sorted, disjoint, non-adjacent ranges of positive ints.
- ``SequenceSet.parse`` raises only ``ImapSyntaxError``; ``select_numbers``
  raises ``SequenceRangeError`` (a subclass) for numbers beyond the mailbox.

What ``*`` is (RFC 9051 §9, ``seq-number``): "the largest number in use". For
message sequence numbers that is the number of messages in a non-empty
mailbox; a server "should respond with a tagged BAD" to a sequence number
greater than the number of messages, "this includes '*' if the selected
mailbox is empty" -- ``select_numbers`` does exactly that. For UIDs it is the
UID of the last message or, in an empty mailbox, UIDNEXT; since an empty
mailbox has no UID to select, ``select_uids`` returns ``[]`` there, and a
caller that needs the UIDNEXT meaning passes UIDNEXT to ``resolve``.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from postoffice.protocol.imap.errors import ImapSyntaxError

# RFC 3501 §2.3.1.1 / §9: nz-number is a non-zero 32-bit unsigned number.
MAX_NUMBER: Final = 4294967295

# The value standing for "*" in a range bound.
STAR: Final = None

Bound: TypeAlias = int | None
"""One end of a range: a number, or ``STAR`` (``None``) for ``*``."""

# RFC 3501 §9: seq-number = nz-number / "*"; nz-number = digit-nz *DIGIT.
# [0-9] rather than \d: \d also matches non-ASCII digits such as "٣".
_SEQ_NUMBER: Final = r"(?:[1-9][0-9]*|\*)"
_SEQ_ITEM: Final = re.compile(rf"({_SEQ_NUMBER})(?::({_SEQ_NUMBER}))?")


class SequenceRangeError(ImapSyntaxError):
    """A message sequence number beyond the messages in the mailbox (tagged BAD)."""


def _bound(text: str, position: int) -> Bound:
    if text == "*":
        return STAR
    # Bounded before int(): also keeps Python's int-from-str digit limit away.
    if len(text) > 10 or int(text) > MAX_NUMBER:
        raise ImapSyntaxError(f"sequence set item {position} is above {MAX_NUMBER}")
    return int(text)


def _value(bound: Bound, largest: int) -> int:
    return largest if bound is None else bound


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort and merge overlapping or adjacent ranges of positive ints."""
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            if high > merged[-1][1]:
                merged[-1] = (merged[-1][0], high)
        else:
            merged.append((low, high))
    return merged


@dataclass(frozen=True)
class SequenceSet:
    """A parsed ``sequence-set``: ranges whose bounds are numbers or ``STAR``.

    A single number ``n`` is held as ``(n, n)`` and ``*`` alone as
    ``(STAR, STAR)``. Build one with ``SequenceSet.parse``.
    """

    ranges: tuple[tuple[Bound, Bound], ...]

    def __post_init__(self) -> None:
        if not self.ranges:
            raise ValueError("a sequence set holds at least one range")
        for pair in self.ranges:
            for bound in pair:
                if bound is not None and not 1 <= bound <= MAX_NUMBER:
                    raise ValueError(f"sequence set bound out of range: {bound}")

    @classmethod
    def parse(cls, text: str) -> SequenceSet:
        """Parse ``sequence-set`` (RFC 3501 §9, RFC 9051 §9), strictly.

        No spaces, no empty items, no leading zeros, numbers 1..4294967295,
        ``a:b`` in either order. Raises ``ImapSyntaxError``.
        """
        if not text:
            raise ImapSyntaxError("sequence set is empty")
        ranges: list[tuple[Bound, Bound]] = []
        # RFC 3501 §9: sequence-set = (seq-number / seq-range) *("," sequence-set)
        for position, item in enumerate(text.split(","), start=1):
            match = _SEQ_ITEM.fullmatch(item)
            if match is None:
                raise ImapSyntaxError(
                    f"sequence set item {position} is not a number, '*' or a range"
                )
            first = _bound(match.group(1), position)
            second_text = match.group(2)
            second = first if second_text is None else _bound(second_text, position)
            ranges.append((first, second))
        return cls(tuple(ranges))

    def __str__(self) -> str:
        """The set in wire form, item by item as parsed."""

        def show(bound: Bound) -> str:
            return "*" if bound is None else str(bound)

        return ",".join(
            show(low) if low == high else f"{show(low)}:{show(high)}" for low, high in self.ranges
        )

    @property
    def has_star(self) -> bool:
        """Whether ``*`` appears anywhere in the set."""
        return any(low is None or high is None for low, high in self.ranges)

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """The set as sorted, merged ``(low, high)`` ranges with ``*`` = ``largest``.

        RFC 3501 §9: ``seq-range`` means both values and all between,
        regardless of order, so ``5:2`` is ``(2, 5)``. Values above ``largest``
        are kept (a UID set may name UIDs not in the mailbox). ``largest`` may
        be 0 (an empty mailbox for message numbers): then ``*`` names nothing,
        ``*`` alone drops out and ``3:*`` is ``(1, 3)``.
        """
        if largest < 0:
            raise ValueError("largest is 0 or more")
        spans: list[tuple[int, int]] = []
        for first, second in self.ranges:
            a, b = _value(first, largest), _value(second, largest)
            low, high = (a, b) if a <= b else (b, a)
            low = max(low, 1)
            if low <= high:
                spans.append((low, high))
        return _merge(spans)

    def contains(self, n: int, largest: int) -> bool:
        """Whether ``n`` is in the set when ``*`` is ``largest``.

        One pass over the ranges as written (no sorting); to test many values
        against the same set, use ``select_uids`` / ``select_numbers`` instead.
        """
        if n < 1:
            return False
        for first, second in self.ranges:
            a, b = _value(first, largest), _value(second, largest)
            if min(a, b) <= n <= max(a, b):
                return True
        return False

    def iter_values(self, largest: int) -> Iterator[int]:
        """The values of the set from 1 to ``largest``, ascending, each once.

        Bounded by ``largest``: values above it are not produced, so the
        iteration is at most ``largest`` long even for ``1:4294967295``.
        Callers resolve against a finite list (message numbers 1..count, or the
        largest UID with ``select_uids``), never against the full 32-bit space.
        """
        for low, high in self.resolve(largest):
            if low > largest:
                return
            yield from range(low, min(high, largest) + 1)

    def select_uids(self, uids: Sequence[int]) -> list[int]:
        """The UIDs of ``uids`` that are in the set, ascending.

        ``uids`` is the mailbox's UIDs in strictly ascending order (as a
        mailbox keeps them); ``*`` is the last of them. RFC 3501 §6.4.8: "a UID
        range of 559:* always includes the UID of the last message in the
        mailbox, even if 559 is higher than any assigned UID value" -- this
        follows from ``*`` being that UID. UIDs in the set that the mailbox
        does not hold are ignored (RFC 3501 §6.4.8: "A non-existent unique
        identifier is ignored without any error message generated"). An empty
        mailbox selects nothing. Cost: O(ranges x log(len(uids)) + result).
        """
        selected: list[int] = []
        for start, stop in self.select_uid_slices(uids):
            selected.extend(uids[start:stop])
        return selected

    def select_uid_slices(self, uids: Sequence[int]) -> list[tuple[int, int]]:
        """``select_uids`` as index ranges ``[start, stop)`` of ``uids``, ascending:
        the positions give the message numbers (position + 1) at no further cost."""
        if not uids:
            return []
        slices: list[tuple[int, int]] = []
        for low, high in self.resolve(uids[-1]):
            start = bisect_left(uids, low)
            stop = bisect_right(uids, high, lo=start)
            if start < stop:
                slices.append((start, stop))
        return slices

    def select_numbers(self, count: int) -> list[int]:
        """The message sequence numbers 1..``count`` in the set, ascending
        (``select_number_slices`` says which, and when that is an error)."""
        return [
            n
            for start, stop in self.select_number_slices(count)
            for n in range(start + 1, stop + 1)
        ]

    def select_number_slices(self, count: int) -> list[tuple[int, int]]:
        """The message sequence numbers 1..``count`` in the set, as index ranges
        ``[start, stop)`` of the mailbox's messages (number = position + 1), ascending.

        ``*`` is ``count``. A number above ``count`` -- including ``*`` when
        the mailbox is empty -- raises ``SequenceRangeError``: RFC 9051 §9
        (``seq-number``) says the server should answer such a command with a
        tagged BAD, and a command is never partly BAD.
        """
        if count < 0:
            raise ValueError("count is 0 or more")
        if count == 0:
            # RFC 9051 §9: every number, and "*", is invalid in an empty mailbox.
            raise SequenceRangeError("no message sequence number is valid: the mailbox is empty")
        ranges = self.resolve(count)
        if ranges[-1][1] > count:
            raise SequenceRangeError(
                f"message sequence number {ranges[-1][1]} is above the {count} messages"
            )
        return [(low - 1, high) for low, high in ranges]


def format_sequence(values: Iterable[int]) -> str:
    """Write numbers as a compact ``sequence-set``: ``1:3,5,7:9``.

    Sorted ascending, duplicates dropped, runs of consecutive numbers written
    as ``low:high``. Used for COPYUID/APPENDUID (RFC 4315 §3) and ESEARCH ALL
    (RFC 4731 §3.1). Raises ``ValueError`` when there are no values (the
    grammar has no empty set: the caller omits the item instead) or a value
    is outside 1..4294967295.
    """
    ordered = sorted(set(values))
    if not ordered:
        raise ValueError("a sequence set holds at least one number")
    if ordered[0] < 1 or ordered[-1] > MAX_NUMBER:
        raise ValueError(f"sequence numbers are 1..{MAX_NUMBER}")
    return format_ordered_sequence(ordered)  # in ascending order every run is a range


def format_ordered_sequence(values: Sequence[int]) -> str:
    """Write numbers as a ``sequence-set`` that keeps their order (ESORT ALL, RFC
    5267 §3.1: "in the requested sort order"): a run going up by one becomes
    ``low:high``; everything else stays one number each, in place, so a reader
    that expands ranges low to high still gets the order. Raises ``ValueError``
    when there are no values."""
    if not values:
        raise ValueError("a sequence set holds at least one number")
    parts: list[str] = []
    start = previous = values[0]
    for value in values[1:]:
        if value != previous + 1:
            parts.append(str(start) if start == previous else f"{start}:{previous}")
            start = value
        previous = value
    parts.append(str(start) if start == previous else f"{start}:{previous}")
    return ",".join(parts)


@dataclass(frozen=True)
class SavedResult:
    """``$``: the result saved by the last ``SEARCH RETURN (SAVE)`` (RFC 5182 §2,
    RFC 9051 §6.4.4.1), where a sequence set may stand. The session keeps the
    result; this only marks where it is used."""

    def __str__(self) -> str:
        return "$"


SAVED: Final = SavedResult()
SequenceOrSaved: TypeAlias = "SequenceSet | SavedResult"
