"""The shared line reader of the sendmail-format tables (tables/lines.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postoffice.core.errors import TableError
from postoffice.directory.tables.lines import (
    MAX_LOGICAL_LINE,
    TableErrorList,
    decode_table,
    flatten_errors,
    logical_lines,
    split_key_value,
)

SOURCE = "/etc/mail/test"


def texts(text: str, *, continuation: bool = False) -> list[tuple[int, str]]:
    return [
        (line.origin.line, line.text)
        for line in logical_lines(text, source=SOURCE, continuation=continuation)
    ]


def test_comments_and_blank_lines_are_skipped_and_numbers_kept() -> None:
    text = "# header\n\nfirst value\n   # indented comment\n\t\nsecond  value # kept\n"
    assert texts(text) == [(3, "first value"), (6, "second  value # kept")]


def test_crlf_line_ends_are_accepted() -> None:
    assert texts("a b\r\nc d\r\n") == [(1, "a b"), (2, "c d")]


def test_continuation_lines_join_the_entry_they_follow() -> None:
    text = "staff: alice,\n  bob,\n\tcarol\n# comment\nother: x\n"
    assert texts(text, continuation=True) == [(1, "staff: alice, bob, carol"), (5, "other: x")]


def test_without_continuation_an_indented_line_is_its_own_line() -> None:
    assert texts("a b\n  c d\n") == [(1, "a b"), (2, "c d")]


def test_a_continuation_line_without_an_entry_is_an_error() -> None:
    with pytest.raises(TableError, match=rf"{SOURCE}:2: continuation line"):
        texts("# only a comment\n  bob\n", continuation=True)


def test_control_characters_are_refused_with_the_line() -> None:
    with pytest.raises(TableError, match=rf"{SOURCE}:2: control character"):
        texts("a b\nc\x00d\n")


def test_overlong_logical_line_is_refused() -> None:
    text = "a: b,\n" + "".join(f"  x{i},\n" for i in range(MAX_LOGICAL_LINE // 4))
    with pytest.raises(TableError, match=rf"{SOURCE}:1: line longer than"):
        texts(text, continuation=True)


def test_split_key_value_splits_at_the_first_blanks() -> None:
    (line,) = logical_lines("From:a@b\t  ERROR:550 go away now", source=SOURCE)
    assert split_key_value(line) == ("From:a@b", "ERROR:550 go away now")


def test_split_key_value_without_value_names_the_line() -> None:
    (line,) = logical_lines("\nlonely\n", source=SOURCE)
    with pytest.raises(TableError, match=rf"{SOURCE}:2: 'lonely' has no value"):
        split_key_value(line)


def test_decode_table_reports_the_line_of_a_bad_byte() -> None:
    with pytest.raises(TableError, match=rf"{SOURCE}:3: not valid UTF-8"):
        decode_table(b"a b\nc d\ne \xff\n", source=SOURCE)


def test_table_error_list_behaves_as_its_first_error_and_keeps_all() -> None:
    first = TableError("one", file=SOURCE, line=1)
    second = TableError("two", file=SOURCE, line=4)
    combined = TableErrorList([first, second])
    assert str(combined) == f"{SOURCE}:1: one (and 1 more)"
    assert flatten_errors(combined) == (first, second)
    assert flatten_errors(first) == (first,)


@given(st.text(max_size=400), st.booleans())
def test_garbage_only_ever_raises_table_error(text: str, continuation: bool) -> None:
    try:
        for line in logical_lines(text, source=SOURCE, continuation=continuation):
            assert line.text
            assert line.text == line.text.strip(" \t")
            try:
                split_key_value(line)
            except TableError as exc:
                assert f"{SOURCE}:" in str(exc)
    except TableError as exc:
        assert f"{SOURCE}:" in str(exc)


@given(st.binary(max_size=200))
def test_decoding_garbage_only_ever_raises_table_error(data: bytes) -> None:
    try:
        decode_table(data, source=SOURCE)
    except TableError as exc:
        assert SOURCE in str(exc)


def test_many_continuation_lines_cost_linear_time() -> None:
    import time

    text = "a: x\n" + " ,\n" * 32_000
    started = time.perf_counter()
    (line,) = texts(text, continuation=True)
    assert time.perf_counter() - started < 2.0
    assert line[0] == 1
