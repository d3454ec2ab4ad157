"""SORT's order of messages (``imap_sort.sorted_messages``) against a reference.

The server sorts once per criterion, the last first, relying on the
stability of Python's sort also under ``reverse``; the reference compares
two messages criterion by criterion as RFC 5256 §3 says, then by number.
"""

from __future__ import annotations

from functools import cmp_to_key

from hypothesis import given, settings
from hypothesis import strategies as st

from postoffice.server.imap_sort import SortValue, sorted_messages

Row = tuple[int, int, list[SortValue]]


def reference(rows: list[Row], reverse: list[bool]) -> list[tuple[int, int]]:
    def order(left: Row, right: Row) -> int:
        for index, backwards in enumerate(reverse):
            a, b = left[2][index], right[2][index]
            outcome = (a > b) - (a < b)  # type: ignore[operator]
            if outcome:
                return -outcome if backwards else outcome
        return left[0] - right[0]

    return [(number, uid) for number, uid, _ in sorted(rows, key=cmp_to_key(order))]


@st.composite
def sort_inputs(draw: st.DrawFn) -> tuple[list[Row], list[bool]]:
    # Few distinct values per criterion, so that ties are common.
    kinds = draw(st.lists(st.sampled_from(["int", "float", "str"]), min_size=1, max_size=3))
    values = {
        "int": st.integers(min_value=0, max_value=3),
        "float": st.sampled_from([0.0, 1.5, 1e9, -2.0]),
        "str": st.sampled_from(["", "a", "b", "ab"]),
    }
    count = draw(st.integers(min_value=0, max_value=30))
    numbers = draw(st.permutations(range(1, count + 1)))
    rows = [(n, 100 + n, [draw(values[kind]) for kind in kinds]) for n in numbers]
    reverse = draw(st.lists(st.booleans(), min_size=len(kinds), max_size=len(kinds)))
    return rows, reverse


@settings(max_examples=300, deadline=None)
@given(sort_inputs())
def test_the_order_is_the_criterion_by_criterion_order_then_the_number(
    case: tuple[list[Row], list[bool]],
) -> None:
    rows, reverse = case
    found = sorted((number, uid) for number, uid, _ in rows)
    columns = [{uid: values[index] for _, uid, values in rows} for index in range(len(reverse))]
    assert sorted_messages(found, columns, reverse) == reference(rows, reverse)
