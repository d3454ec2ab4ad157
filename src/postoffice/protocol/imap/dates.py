"""IMAP dates: ``date`` and ``date-time`` of RFC 3501 §9 / RFC 9051 §9.

Owns reading the SEARCH ``date`` (BEFORE, ON, SINCE, SENTBEFORE, ...) and the
APPEND ``date-time``, and writing INTERNALDATE. The DQUOTEs around a quoted
``date`` or a ``date-time`` belong to the command parser: these functions see
the text between them.

Invariants:

- Parsing is strict to the ABNF (ASCII digits only, fixed widths, one SP) and
  checks calendar and clock ranges; every failure is ``ImapSyntaxError``.
- Month names are the English three-letter names, read case-insensitively
  (RFC 3501 §9: ABNF literal strings are case-insensitive) and always written
  as ``Jan``..``Dec``, whatever the process locale.
- ``parse_date_time`` returns an aware ``datetime`` in the zone written;
  ``parse_date_time(format_date_time(dt)) == dt`` for any aware ``dt`` with
  whole seconds and a whole-minute UTC offset.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Final

from postoffice.protocol.imap.errors import ImapSyntaxError

# RFC 3501 §9: date-month = "Jan" / "Feb" / ... / "Dec"
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_MONTH_NUMBER: Final = {name.lower(): number for number, name in enumerate(_MONTHS, start=1)}

# RFC 3501 §9: date-text = date-day "-" date-month "-" date-year
#              date-day = 1*2DIGIT; date-year = 4DIGIT
_DATE: Final = re.compile(r"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")

# RFC 3501 §9: date-time = DQUOTE date-day-fixed "-" date-month "-" date-year
#                          SP time SP zone DQUOTE
#              date-day-fixed = (SP DIGIT) / 2DIGIT
#              time = 2DIGIT ":" 2DIGIT ":" 2DIGIT; zone = ("+" / "-") 4DIGIT
_DATE_TIME: Final = re.compile(
    r"( [0-9]|[0-9]{2})-([A-Za-z]{3})-([0-9]{4})"
    r" ([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r" ([+-])([0-9]{2})([0-9]{2})"
)


def _calendar_date(day: str, month: str, year: str) -> date:
    number = _MONTH_NUMBER.get(month.lower())
    if number is None:
        raise ImapSyntaxError("date has an unknown month name")
    try:
        return date(int(year), number, int(day))
    except ValueError:
        raise ImapSyntaxError("date does not exist in the calendar") from None


def parse_date(text: str) -> date:
    """Parse ``date-text`` such as ``1-Feb-2026`` or ``01-feb-2026`` (RFC 3501 §9)."""
    match = _DATE.fullmatch(text)
    if match is None:
        raise ImapSyntaxError('date is not in the form "d-Mon-yyyy"')
    return _calendar_date(*match.groups())


def parse_date_time(text: str) -> datetime:
    """Parse the inside of ``date-time``: ``dd-Mon-yyyy hh:mm:ss +zzzz`` (RFC 3501 §9).

    The day is two digits or a space and one digit (``date-day-fixed``). A
    second of 60 (a leap second, allowed by RFC 5322 §3.3) is read as 59,
    which ``datetime`` can hold. The zone is ``+hhmm`` / ``-hhmm`` with hours
    below 24 and minutes below 60; ``-0000`` is UTC.
    """
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise ImapSyntaxError('date-time is not in the form "dd-Mon-yyyy hh:mm:ss +zzzz"')
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    on = _calendar_date(day.lstrip(" "), month, year)
    if int(hour) > 23 or int(minute) > 59 or int(second) > 60:
        raise ImapSyntaxError("date-time has a time of day out of range")
    if int(zone_hours) > 23 or int(zone_minutes) > 59:
        raise ImapSyntaxError("date-time has a zone out of range")
    offset = timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
    zone = timezone(-offset if sign == "-" else offset)
    return datetime(
        on.year, on.month, on.day, int(hour), int(minute), min(int(second), 59), tzinfo=zone
    )


def format_date_time(moment: datetime) -> str:
    """Write INTERNALDATE's ``date-time`` without its DQUOTEs (RFC 3501 §9).

    The day is ``date-day-fixed`` padded with a space (`` 2-Jan-2026 13:04:05
    +0000``), the zone is the datetime's own offset; fractions of a second are
    dropped. An offset that is not a whole number of minutes (old local mean
    times) cannot be written as ``zone``, so such a time is written in UTC.
    ``moment`` must be aware (``ValueError`` otherwise): a naive time would
    make the zone a guess.
    """
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("INTERNALDATE needs a timezone-aware datetime")
    if offset % timedelta(minutes=1):
        moment = moment.astimezone(UTC)
        offset = timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    return (
        f"{moment.day:2d}-{_MONTHS[moment.month - 1]}-{moment.year:04d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} "
        f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    )
