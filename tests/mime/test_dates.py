"""``mime.dates.parse_date``: the common RFC 5322 date form read directly gives
what the standard library's parser gives, for that form and everything near it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postoffice.mime import dates
from postoffice.mime.dates import _library_date, date_timestamp, parse_date


def _two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:02d}")


# Pieces of a date, in range and out of it, so that every guard of the direct
# reading is crossed (hours 24+, minutes 60+, day 0 or 31 Feb, years under 100).
_DATES = st.builds(
    lambda name, day, month, year, hour, minute, second, sign, zh, zm, tail: (
        f"{name}{day} {month} {year} {hour}:{minute}{second} {sign}{zh}{zm}{tail}"
    ),
    st.sampled_from(["", "Fri, ", "Xyz, ", "fri, ", "Fri,", "Fri "]),
    st.one_of(st.integers(0, 39).map(str), _two(0, 39)),
    st.sampled_from(["Jan", "feb", "MAR", "Dec", "Foo", "Sept", "June"]),
    st.one_of(_two(0, 99), st.integers(0, 9999).map(lambda n: f"{n:04d}")),
    st.one_of(_two(0, 29), st.integers(0, 9).map(str)),
    _two(0, 69),
    st.one_of(st.just(""), _two(0, 69).map(lambda s: ":" + s)),
    st.sampled_from(["+", "-"]),
    _two(0, 29),
    _two(0, 99),
    st.sampled_from(["", " (UTC)", " ", "x"]),
)


@settings(max_examples=3000)
@given(_DATES)
def test_the_direct_reading_agrees_with_the_library(value: str) -> None:
    assert parse_date(value) == _library_date(value)
    when = parse_date(value)
    if when is not None:  # the same zone, not only the same instant (SENTBEFORE reads it)
        expected = _library_date(value)
        assert expected is not None and when.utcoffset() == expected.utcoffset()
    assert date_timestamp(value) == (None if when is None else when.timestamp())


@given(st.text(max_size=40))
def test_any_text_agrees_with_the_library(value: str) -> None:
    assert parse_date(value) == _library_date(value)
    expected = _library_date(value)
    assert date_timestamp(value) == (None if expected is None else expected.timestamp())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Fri, 27 Nov 2026 10:00:00 +0000", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        (
            "7 Feb 1994 21:52 -0800",
            datetime(1994, 2, 7, 21, 52, tzinfo=timezone(-timedelta(hours=8))),
        ),
        ("Mon, 04 Mar 2024 08:37:00 -0000", datetime(2024, 3, 4, 8, 37, tzinfo=UTC)),
        (
            "Mon, 04 Mar 2024 08:37:00 +0530",
            datetime(2024, 3, 4, 8, 37, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        ),
    ],
)
def test_the_common_form_is_read_without_the_library(
    value: str, expected: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(value: str) -> datetime | None:
        raise AssertionError(f"{value!r} went to the library")

    monkeypatch.setattr(dates, "_library_date", refuse)
    when = parse_date(value)
    assert when == expected and when is not None and when.utcoffset() == expected.utcoffset()
    assert date_timestamp(value) == expected.timestamp()


def test_other_forms_go_to_the_library() -> None:
    assert parse_date("Fri, 27 Nov 26 10:00:00 +0000") == datetime(2026, 11, 27, 10, tzinfo=UTC)
    assert parse_date("Fri, 27 Nov 2026 10:00:00 EST") == datetime(
        2026, 11, 27, 10, tzinfo=timezone(-timedelta(hours=5))
    )
    assert parse_date("Fri, 27 Nov 2026 10:00:00 +0000 (UTC)") == datetime(
        2026, 11, 27, 10, tzinfo=UTC
    )
    assert parse_date("30 Feb 2026 10:00:00 +0000") is None
    assert parse_date("not a date") is None
    assert date_timestamp("30 Feb 2026 10:00:00 +0000") is None
    assert date_timestamp("Thu, 01 Jan 1970 00:00:00 +0000") == 0.0
