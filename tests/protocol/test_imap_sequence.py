"""Sequence sets (RFC 3501 §9 / RFC 9051 §9 ``sequence-set``)."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postoffice.protocol.imap.errors import ImapSyntaxError
from postoffice.protocol.imap.sequence import (
    MAX_NUMBER,
    STAR,
    SequenceRangeError,
    SequenceSet,
    format_sequence,
)

# --- parsing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ranges"),
    [
        ("1", ((1, 1),)),
        ("42", ((42, 42),)),
        ("*", ((STAR, STAR),)),
        ("1:5", ((1, 5),)),
        ("5:1", ((5, 1),)),  # kept as written; resolve orders it
        ("1:*", ((1, STAR),)),
        ("*:4", ((STAR, 4),)),
        ("*:*", ((STAR, STAR),)),
        ("2,4:7,9,12:*", ((2, 2), (4, 7), (9, 9), (12, STAR))),
        ("*:4,5:7", ((STAR, 4), (5, 7))),
        ("1,1,1", ((1, 1), (1, 1), (1, 1))),
        ("4294967295", ((MAX_NUMBER, MAX_NUMBER),)),
        ("1:4294967295", ((1, MAX_NUMBER),)),
        ("10", ((10, 10),)),  # a zero after the first digit is fine
    ],
)
def test_every_grammar_form_parses(text: str, ranges: tuple[tuple[int | None, ...], ...]) -> None:
    parsed = SequenceSet.parse(text)
    assert parsed.ranges == ranges
    assert str(parsed) == text.replace("*:*", "*")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "01",
        "1:0",
        "0:1",
        "1:01",
        "1:",
        ":2",
        ":",
        "1,,2",
        ",1",
        "1,",
        "1 2",
        " 1",
        "1 ",
        "1, 2",
        "1:2:3",
        "4294967296",
        "1:4294967296",
        "99999999999999999999",
        "9" * 5000,  # longer than Python's int-from-str limit
        "-1",
        "+1",
        "1-2",
        "**",
        "1*",
        "$",  # RFC 5182 SEARCHRES is handled by the command parser
        "a",
        "\u0663",  # ARABIC-INDIC DIGIT THREE: a digit, but not an ASCII DIGIT
        "1\u00b2",  # SUPERSCRIPT TWO
        "1\n",
        "1\r\n",
    ],
)
def test_invalid_sets_are_rejected(text: str) -> None:
    with pytest.raises(ImapSyntaxError):
        SequenceSet.parse(text)


def test_a_set_cannot_be_built_empty_or_with_bad_bounds() -> None:
    with pytest.raises(ValueError, match="at least one"):
        SequenceSet(())
    with pytest.raises(ValueError, match="out of range"):
        SequenceSet(((0, 1),))


def test_has_star() -> None:
    assert SequenceSet.parse("1,5:*").has_star
    assert SequenceSet.parse("*").has_star
    assert not SequenceSet.parse("1,5:9").has_star


# --- resolve / contains / iter_values ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "largest", "resolved"),
    [
        ("*", 15, [(15, 15)]),
        ("1:*", 15, [(1, 15)]),
        ("*:1", 15, [(1, 15)]),
        ("12:*", 15, [(12, 15)]),
        ("*:12", 15, [(12, 15)]),
        ("20:*", 15, [(15, 20)]),  # "*" below the other bound: the range flips
        ("*:4,5:7", 10, [(4, 10)]),  # RFC 9051 §9 example, coalesced
        ("2,4:7,9,12:*", 15, [(2, 2), (4, 7), (9, 9), (12, 15)]),  # RFC 9051 §9 example
        ("5:2", 15, [(2, 5)]),
        ("1,2,3", 15, [(1, 3)]),  # adjacent values merge
        ("1:3,4:6", 15, [(1, 6)]),
        ("1:5,3:9", 15, [(1, 9)]),
        ("9,1,5", 15, [(1, 1), (5, 5), (9, 9)]),
        ("1,*,3", 5, [(1, 1), (3, 3), (5, 5)]),
        ("100:200", 15, [(100, 200)]),  # values above largest are kept
        ("*", 0, []),  # empty mailbox: "*" names nothing
        ("3:*", 0, [(1, 3)]),
        ("*,2", 0, [(2, 2)]),
    ],
)
def test_resolve(text: str, largest: int, resolved: list[tuple[int, int]]) -> None:
    assert SequenceSet.parse(text).resolve(largest) == resolved


def test_resolve_refuses_a_negative_largest() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        SequenceSet.parse("1").resolve(-1)


def test_contains_agrees_with_the_rfc_example() -> None:
    # RFC 9051 §9: 2,4:7,9,12:* with 15 messages is 2,4,5,6,7,9,12,13,14,15
    seq = SequenceSet.parse("2,4:7,9,12:*")
    members = [n for n in range(20) if seq.contains(n, 15)]
    assert members == [2, 4, 5, 6, 7, 9, 12, 13, 14, 15]


def test_contains_star_and_reversed_ranges() -> None:
    assert SequenceSet.parse("*").contains(7, 7)
    assert not SequenceSet.parse("*").contains(6, 7)
    assert SequenceSet.parse("9:3").contains(3, 100)
    assert SequenceSet.parse("*:3").contains(2, 2)  # "*" = 2: range 2:3
    assert not SequenceSet.parse("*").contains(0, 0)


def test_iter_values_is_bounded_by_largest() -> None:
    assert list(SequenceSet.parse("2,4:7,9,12:*").iter_values(15)) == [
        2,
        4,
        5,
        6,
        7,
        9,
        12,
        13,
        14,
        15,
    ]
    assert list(SequenceSet.parse("1:4294967295").iter_values(3)) == [1, 2, 3]
    assert list(SequenceSet.parse("5:9").iter_values(3)) == []
    assert list(SequenceSet.parse("*").iter_values(0)) == []


# --- select_uids ----------------------------------------------------------------------

UIDS = [3, 4, 7, 10, 11, 12, 100, 500]


@pytest.mark.parametrize(
    ("text", "selected"),
    [
        ("1:*", UIDS),
        ("*", [500]),
        ("559:*", [500]),  # RFC 3501 §6.4.8: 559:* includes the last UID
        ("3291:*", [500]),  # RFC 9051 §9 seq-range example
        ("*:600", [500]),
        ("5:11", [7, 10, 11]),
        ("11:5", [7, 10, 11]),
        ("1,2,5,6", []),  # gaps: non-existent UIDs are ignored
        ("8:9", []),
        ("12:100", [12, 100]),
        ("1:3,500", [3, 500]),
        ("600:700", []),
        ("100,3,12,12", [3, 12, 100]),  # sorted, no duplicates
        ("4294967295", []),
    ],
)
def test_select_uids(text: str, selected: list[int]) -> None:
    assert SequenceSet.parse(text).select_uids(UIDS) == selected


@pytest.mark.parametrize(
    "text", ["1:*", "*", "5:11", "1,2,5,6", "12:100", "100,3,12,12", "1:3,500"]
)
def test_select_uid_slices_are_the_positions_of_select_uids(text: str) -> None:
    seq = SequenceSet.parse(text)
    slices = seq.select_uid_slices(UIDS)
    positions = [index for start, stop in slices for index in range(start, stop)]
    assert [UIDS[index] for index in positions] == seq.select_uids(UIDS)
    assert all(start < stop for start, stop in slices)  # no empty slice
    assert positions == sorted(set(positions))  # ascending, each once


def test_select_uids_in_an_empty_mailbox_selects_nothing() -> None:
    assert SequenceSet.parse("1:*").select_uids([]) == []
    assert SequenceSet.parse("*").select_uids([]) == []


def test_select_uids_is_fast_for_a_large_mailbox_and_many_ranges() -> None:
    rng = random.Random(3501)
    uids = sorted(rng.sample(range(1, 400_000), 100_000))
    items: list[str] = []
    for _ in range(1_000):
        low = rng.randrange(1, 400_000)
        items.append(f"{low}:{low + rng.randrange(0, 200)}")
    items.append("399990:*")
    seq = SequenceSet.parse(",".join(items))
    started = time.perf_counter()
    selected = seq.select_uids(uids)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5
    members = {n for low, high in seq.resolve(uids[-1]) for n in range(low, high + 1)}
    assert selected == [uid for uid in uids if uid in members]
    assert len(selected) > 10_000
    assert selected[-1] == uids[-1]


# --- select_numbers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "selected"),
    [
        ("1:*", 5, [1, 2, 3, 4, 5]),
        ("*", 5, [5]),
        ("*:3", 5, [3, 4, 5]),
        ("2,4:5", 5, [2, 4, 5]),
        ("5:1", 5, [1, 2, 3, 4, 5]),
        ("1", 1, [1]),
        ("*", 1, [1]),
    ],
)
def test_select_numbers(text: str, count: int, selected: list[int]) -> None:
    assert SequenceSet.parse(text).select_numbers(count) == selected
    slices = SequenceSet.parse(text).select_number_slices(count)
    assert [n + 1 for start, stop in slices for n in range(start, stop)] == selected
    assert all(start < stop for start, stop in slices)


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("6", 5),
        ("1:6", 5),
        ("1,6", 5),  # never partly valid
        ("6:*", 5),  # resolves to 5:6
        ("1", 0),  # RFC 9051 §9: any number in an empty mailbox
        ("*", 0),  # ... including "*"
        ("1:*", 0),
    ],
)
def test_select_numbers_beyond_the_mailbox_is_a_range_error(text: str, count: int) -> None:
    with pytest.raises(SequenceRangeError) as caught:
        SequenceSet.parse(text).select_numbers(count)
    assert isinstance(caught.value, ImapSyntaxError)


def test_select_numbers_refuses_a_negative_count() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        SequenceSet.parse("1").select_numbers(-1)


# --- format_sequence ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "text"),
    [
        ([1], "1"),
        ([1, 2, 3, 5, 7, 8, 9], "1:3,5,7:9"),
        ([9, 8, 7, 5, 3, 2, 1, 1, 2], "1:3,5,7:9"),
        ([1, 3, 5], "1,3,5"),
        ([4, 5], "4:5"),
        ([MAX_NUMBER], "4294967295"),
    ],
)
def test_format_sequence(values: list[int], text: str) -> None:
    assert format_sequence(values) == text


@pytest.mark.parametrize("values", [[], [0], [1, MAX_NUMBER + 1], [-3]])
def test_format_sequence_refuses_values_it_cannot_write(values: list[int]) -> None:
    with pytest.raises(ValueError):
        format_sequence(values)


@given(st.sets(st.integers(min_value=1, max_value=MAX_NUMBER), min_size=1, max_size=60))
def test_format_then_parse_round_trips(values: set[int]) -> None:
    ordered = sorted(values)
    text = format_sequence(values)
    assert SequenceSet.parse(text).select_uids(ordered) == ordered
    assert format_sequence(SequenceSet.parse(text).iter_values(ordered[-1])) == text


@given(st.sets(st.integers(min_value=1, max_value=300), min_size=1, max_size=60))
def test_format_then_resolve_gives_the_runs(values: set[int]) -> None:
    ranges = SequenceSet.parse(format_sequence(values)).resolve(1)
    assert [n for low, high in ranges for n in range(low, high + 1)] == sorted(values)


# --- properties ---------------------------------------------------------------------------


@given(st.text(alphabet=st.sampled_from("0123456789:,* *$a"), max_size=30))
def test_set_shaped_garbage_only_raises_syntax_errors(text: str) -> None:
    try:
        seq = SequenceSet.parse(text)
    except ImapSyntaxError as exc:
        assert str(exc).startswith("sequence set")
    else:
        assert str(SequenceSet.parse(str(seq))) == str(seq)


@given(st.text(max_size=30))
def test_arbitrary_text_only_raises_syntax_errors(text: str) -> None:
    try:
        seq = SequenceSet.parse(text)
    except ImapSyntaxError as exc:
        assert str(exc).startswith("sequence set")
    else:
        assert seq.ranges


bounds = st.one_of(st.none(), st.integers(min_value=1, max_value=60))


@given(
    st.lists(st.tuples(bounds, bounds), min_size=1, max_size=8),
    st.integers(min_value=0, max_value=50),
    st.lists(st.integers(min_value=1, max_value=70), unique=True).map(sorted),
)
def test_the_selectors_agree_with_contains(
    ranges: list[tuple[int | None, int | None]], largest: int, uids: list[int]
) -> None:
    seq = SequenceSet(tuple(ranges))
    expected = [n for n in range(1, largest + 1) if seq.contains(n, largest)]
    assert list(seq.iter_values(largest)) == expected
    if uids:
        assert seq.select_uids(uids) == [u for u in uids if seq.contains(u, uids[-1])]
    if largest and all(b is None or b <= largest for pair in ranges for b in pair):
        assert seq.select_numbers(largest) == expected
    elif largest:
        with pytest.raises(SequenceRangeError):
            seq.select_numbers(largest)
