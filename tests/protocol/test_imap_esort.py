"""ESORT's grammar (RFC 5267 §5: SORT with search-return-opts) and the ordered
sequence-set its ALL answer is written in (RFC 5267 §3.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postoffice.protocol.imap.commands import Command, Sort, SortCriterion
from postoffice.protocol.imap.search_keys import AllKey
from postoffice.protocol.imap.sequence import SequenceSet, format_ordered_sequence
from tests.protocol.imap_parsing import assert_cut_short_refused_or_different, parse, refused

EXAMPLES: list[tuple[str, bytes, Command]] = [
    (
        "all-options",
        b"a SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL\r\n",
        Sort(
            "a",
            (SortCriterion("DATE"),),
            AllKey(),
            uid=False,
            charset="UTF-8",
            return_options=("MIN", "MAX", "COUNT", "ALL"),
        ),
    ),
    (
        "empty-uid",
        b"b uid sort return () (reverse size) us-ascii all\r\n",
        Sort(
            "b",
            (SortCriterion("SIZE", reverse=True),),
            AllKey(),
            uid=True,
            charset="US-ASCII",
            return_options=(),
        ),
    ),
]


@pytest.mark.parametrize(("wire", "expected"), [pytest.param(w, e, id=n) for n, w, e in EXAMPLES])
def test_esort_parses(wire: bytes, expected: Command) -> None:
    assert parse(wire) == expected


def test_plain_sort_has_no_return_options() -> None:
    command = parse(b"a SORT (DATE) UTF-8 ALL\r\n")
    assert isinstance(command, Sort) and command.return_options is None


@pytest.mark.parametrize("wire", [pytest.param(w, id=n) for n, w, _ in EXAMPLES])
def test_esort_cut_short_and_trailing(wire: bytes) -> None:
    assert_cut_short_refused_or_different(wire, ("BAD", "NO"))
    for tail in (b" )", b" x"):
        error = refused(wire[:-2] + tail + b"\r\n")
        assert (error.tag, error.status) == (parse(wire).tag, "BAD")


@pytest.mark.parametrize(
    "wire",
    [
        b"a SORT RETURN (DATE) UTF-8 ALL\r\n",  # the criteria are missing
        b"a SORT RETURN MIN (DATE) UTF-8 ALL\r\n",
        b"a SORT RETURN (MIN (DATE) UTF-8 ALL\r\n",
        b"a SORT RETURN  (MIN) (DATE) UTF-8 ALL\r\n",
        b"a SORT (DATE) RETURN (MIN) UTF-8 ALL\r\n",  # RETURN comes first
    ],
)
def test_malformed_esort_is_refused(wire: bytes) -> None:
    error = refused(wire)
    assert error.tag == "a" and error.status in ("BAD", "NO")


@pytest.mark.parametrize(
    ("values", "text"),
    [
        ([4, 3, 1, 2], "4,3,1:2"),
        ([1, 2, 3], "1:3"),
        ([3, 2, 1], "3,2,1"),  # a run going down is not a range: the order would be lost
        ([7], "7"),
        ([2, 3, 9, 10, 11, 1], "2:3,9:11,1"),
    ],
)
def test_ordered_sequence(values: list[int], text: str) -> None:
    assert format_ordered_sequence(values) == text


def test_ordered_sequence_needs_a_value() -> None:
    with pytest.raises(ValueError, match="at least one"):
        format_ordered_sequence([])


@given(st.lists(st.integers(1, 50), min_size=1, max_size=30, unique=True))
def test_ordered_sequence_expands_back_in_order(values: list[int]) -> None:
    """Each part, expanded low to high and read left to right, gives the values back."""
    text = format_ordered_sequence(values)
    expanded: list[int] = []
    for part in text.split(","):
        for low, high in SequenceSet.parse(part).resolve(50):
            expanded += range(low, high + 1)
    assert expanded == values
