"""IMAP ``date`` and ``date-time`` (RFC 3501 §9 / RFC 9051 §9)."""

from __future__ import annotations

import locale
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postoffice.protocol.imap.dates import format_date_time, parse_date, parse_date_time
from postoffice.protocol.imap.errors import ImapSyntaxError

# --- date ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1-Feb-1994", date(1994, 2, 1)),  # RFC 3501 §6.4.4 SEARCH example
        ("01-Feb-1994", date(1994, 2, 1)),
        ("17-Jul-1996", date(1996, 7, 17)),
        ("31-Dec-2026", date(2026, 12, 31)),
        ("29-Feb-2024", date(2024, 2, 29)),
        ("5-jan-2026", date(2026, 1, 5)),  # month names are case-insensitive
        ("5-JAN-2026", date(2026, 1, 5)),
        ("5-sEp-2026", date(2026, 9, 5)),
        ("1-Jan-0001", date(1, 1, 1)),
    ],
)
def test_valid_dates(text: str, expected: date) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "form"),
        ("1-Feb-94", "form"),  # date-year is 4DIGIT
        ("1-Feb-19944", "form"),
        ("001-Feb-1994", "form"),  # date-day is 1*2DIGIT
        ("-Feb-1994", "form"),
        (" 1-Feb-1994", "form"),  # the space-padded day belongs to date-time
        ("1 Feb 1994", "form"),
        ("1-February-1994", "form"),
        ("1-Feb-1994 ", "form"),
        ("1-Feb-1994\n", "form"),
        ('"1-Feb-1994"', "form"),  # the quotes are the caller's business
        ("\u0661-Feb-1994", "form"),  # ARABIC-INDIC DIGIT ONE
        ("1-Fev-1994", "month"),
        ("1-F\u00e9b-1994", "form"),
        ("0-Feb-1994", "calendar"),
        ("32-Jan-1994", "calendar"),
        ("30-Feb-2024", "calendar"),
        ("29-Feb-2025", "calendar"),
        ("31-Apr-2026", "calendar"),
        ("1-Jan-0000", "calendar"),
    ],
)
def test_invalid_dates(text: str, why: str) -> None:
    with pytest.raises(ImapSyntaxError, match=why):
        parse_date(text)


# --- date-time -------------------------------------------------------------------------


def zone(hours: int, minutes: int = 0) -> timezone:
    sign = -1 if hours < 0 else 1
    return timezone(sign * timedelta(hours=abs(hours), minutes=minutes))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # RFC 3501 §6.3.11 APPEND / §7.4.2 INTERNALDATE examples
        ("17-Jul-1996 02:44:25 -0700", datetime(1996, 7, 17, 2, 44, 25, tzinfo=zone(-7))),
        ("05-Feb-1994 21:52:25 -0800", datetime(1994, 2, 5, 21, 52, 25, tzinfo=zone(-8))),
        (" 5-Feb-1994 21:52:25 -0800", datetime(1994, 2, 5, 21, 52, 25, tzinfo=zone(-8))),
        ("01-jan-2026 00:00:00 +0000", datetime(2026, 1, 1, tzinfo=UTC)),
        ("31-DEC-2026 23:59:59 +1400", datetime(2026, 12, 31, 23, 59, 59, tzinfo=zone(14))),
        ("15-Mar-2026 12:00:00 +0530", datetime(2026, 3, 15, 12, tzinfo=zone(5, 30))),
        ("15-Mar-2026 12:00:00 -0930", datetime(2026, 3, 15, 12, tzinfo=zone(-9, 30))),
        ("15-Mar-2026 12:00:00 -0000", datetime(2026, 3, 15, 12, tzinfo=UTC)),
        ("15-Mar-2026 12:00:00 +2359", datetime(2026, 3, 15, 12, tzinfo=zone(23, 59))),
        # a leap second (RFC 5322 §3.3) is read as :59
        ("31-Dec-2016 23:59:60 +0000", datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_valid_date_times(text: str, expected: datetime) -> None:
    parsed = parse_date_time(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


def test_the_zone_is_kept_not_converted() -> None:
    parsed = parse_date_time("17-Jul-1996 02:44:25 -0700")
    assert parsed.hour == 2
    assert parsed.utcoffset() == timedelta(hours=-7)
    assert parsed.astimezone(UTC) == datetime(1996, 7, 17, 9, 44, 25, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "form"),
        ("1-Jul-1996 02:44:25 -0700", "form"),  # date-day-fixed: " 1" or "01"
        ("  1-Jul-1996 02:44:25 -0700", "form"),
        ("17-Jul-1996 2:44:25 -0700", "form"),
        ("17-Jul-1996 02:44 -0700", "form"),
        ("17-Jul-1996 02:44:25", "form"),
        ("17-Jul-1996 02:44:25 0700", "form"),
        ("17-Jul-1996 02:44:25 -07:00", "form"),
        ("17-Jul-1996 02:44:25 -070", "form"),
        ("17-Jul-1996 02:44:25 UTC", "form"),
        ("17-Jul-1996 02:44:25 GMT", "form"),
        ("17-Jul-1996  02:44:25 -0700", "form"),
        ("17-Jul-1996T02:44:25 -0700", "form"),
        ("17-Jul-96 02:44:25 -0700", "form"),
        ("17-Jul-1996 02:44:25 -0700 ", "form"),
        ('"17-Jul-1996 02:44:25 -0700"', "form"),
        ("17-Jul-1996 02:44:25.5 -0700", "form"),
        ("17-Jul-1996 \u06602:44:25 -0700", "form"),
        ("17-Jux-1996 02:44:25 -0700", "month"),
        ("32-Jul-1996 02:44:25 -0700", "calendar"),
        ("00-Jul-1996 02:44:25 -0700", "calendar"),
        (" 0-Jul-1996 02:44:25 -0700", "calendar"),
        ("29-Feb-1900 02:44:25 -0700", "calendar"),
        ("17-Jul-1996 24:00:00 -0700", "time of day"),
        ("17-Jul-1996 02:60:25 -0700", "time of day"),
        ("17-Jul-1996 02:44:61 -0700", "time of day"),
        ("17-Jul-1996 02:44:25 -2400", "zone"),
        ("17-Jul-1996 02:44:25 +0060", "zone"),
        ("17-Jul-1996 02:44:25 +9999", "zone"),
    ],
)
def test_invalid_date_times(text: str, why: str) -> None:
    with pytest.raises(ImapSyntaxError, match=why):
        parse_date_time(text)


# --- format_date_time -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 1, 2, 13, 4, 5, tzinfo=UTC), " 2-Jan-2026 13:04:05 +0000"),
        (datetime(1996, 7, 17, 2, 44, 25, tzinfo=zone(-7)), "17-Jul-1996 02:44:25 -0700"),
        (datetime(2026, 3, 15, 12, tzinfo=zone(5, 30)), "15-Mar-2026 12:00:00 +0530"),
        (datetime(2026, 3, 15, 12, tzinfo=zone(-9, 30)), "15-Mar-2026 12:00:00 -0930"),
        (datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "31-Dec-2026 23:59:59 +0000"),
        (datetime(9, 5, 1, tzinfo=UTC), " 1-May-0009 00:00:00 +0000"),
    ],
)
def test_format_date_time(moment: datetime, text: str) -> None:
    assert format_date_time(moment) == text


def test_every_month_has_its_english_name() -> None:
    names = [format_date_time(datetime(2026, m, 10, tzinfo=UTC))[3:6] for m in range(1, 13)]
    assert names == [
        *("Jan", "Feb", "Mar", "Apr", "May", "Jun"),
        *("Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    ]


def test_month_names_do_not_follow_the_locale() -> None:
    moment = datetime(2026, 5, 3, tzinfo=UTC)
    assert format_date_time(moment).startswith(" 3-May-2026")
    previous = locale.setlocale(locale.LC_TIME)
    try:
        for name in ("de_DE.UTF-8", "fr_FR.UTF-8", "C.UTF-8"):
            try:
                locale.setlocale(locale.LC_TIME, name)
            except locale.Error:
                continue
            assert format_date_time(moment).startswith(" 3-May-2026")
    finally:
        locale.setlocale(locale.LC_TIME, previous)


def test_a_naive_datetime_cannot_be_formatted() -> None:
    with pytest.raises(ValueError, match="aware"):
        format_date_time(datetime(2026, 1, 2, 13, 4, 5))


def test_an_offset_with_seconds_is_written_in_utc() -> None:
    odd = timezone(timedelta(minutes=-75, seconds=-30))
    moment = datetime(1880, 1, 1, 12, 0, 0, tzinfo=odd)
    assert format_date_time(moment) == " 1-Jan-1880 13:15:30 +0000"


aware = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.builds(
        timezone,
        st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
            lambda m: timedelta(minutes=m)
        ),
    ),
).map(lambda dt: dt.replace(microsecond=0))


@given(aware)
def test_format_then_parse_round_trips(moment: datetime) -> None:
    text = format_date_time(moment)
    parsed = parse_date_time(text)
    assert parsed == moment
    assert parsed.utcoffset() == moment.utcoffset()
    assert parsed.timetuple()[:6] == moment.timetuple()[:6]


@given(aware)
def test_a_zero_padded_day_reads_the_same(moment: datetime) -> None:
    text = format_date_time(moment)
    assert parse_date_time(text.replace(" ", "0", 1) if text[0] == " " else text) == moment


@given(st.text(max_size=40))
def test_garbage_only_raises_syntax_errors(text: str) -> None:
    for parse in (parse_date, parse_date_time):
        try:
            parse(text)
        except ImapSyntaxError as exc:
            assert str(exc).startswith(("date", "date-time"))
        else:
            assert text.isascii()


@given(st.text(alphabet=st.sampled_from("0123456789 -:+JanFebDcUuly"), max_size=30))
def test_date_shaped_garbage_only_raises_syntax_errors(text: str) -> None:
    for parse in (parse_date, parse_date_time):
        try:
            result = parse(text)
        except ImapSyntaxError as exc:
            assert str(exc).startswith(("date", "date-time"))
        else:
            assert isinstance(result, date)
