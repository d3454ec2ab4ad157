"""Reading the date of a Date: field (RFC 5322 §3.3) into an aware datetime.

Owns ``parse_date`` and ``date_timestamp``. Nearly all mail writes its date one way:
``[day-name ", "] day month year hour ":" minute [":" second] zone``, with a
four-digit year and a numeric zone (what ``email.utils.format_datetime`` and
every common mailer write). That form is read by one regular expression and a
few integer conversions; every other one (obsolete zone names, two-digit
years, comments, other spacing, out-of-range fields) by the standard
library's ``email.utils.parsedate_to_datetime``, so both ways give the same
answer for any input (the tests compare them). SORT (DATE) of a 100,000-
message mailbox reads 100,000 dates the first time, and the library's
parser was a third of that SORT (issue 7).

A date without a usable zone (RFC 5322 §3.3: "-0000", or an obsolete zone the
library does not know) is taken as UTC; an unreadable date is None.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

__all__ = ["date_timestamp", "parse_date"]

_EPOCH_DAY = date(1970, 1, 1).toordinal()

_COMMON = re.compile(
    r"(?:[A-Za-z]{3}, )?(\d{1,2}) ([A-Za-z]{3}) (\d{4}) "  # [day-name ", "] day month year
    r"(\d\d):(\d\d)(?::(\d\d))? ([+-])(\d\d)(\d\d)"  # hour:minute[:second] zone
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_ZONES: dict[int, timezone] = {}  # by offset in minutes: one object per zone seen


def parse_date(value: str) -> datetime | None:
    """The instant a Date: field value names, with its zone; None if unreadable."""
    fields = _common_form(value)
    if fields is not None:
        year, month, day, hours, minutes, seconds, offset = fields
        zone = _ZONES.get(offset)
        if zone is None:
            zone = _zone(offset)
        try:
            return datetime(year, month, day, hours, minutes, seconds, tzinfo=zone)
        except ValueError:
            pass  # no such day (30 Feb): the library says so too
    return _library_date(value)


def date_timestamp(value: str) -> float | None:
    """``parse_date(value).timestamp()`` (None for None), without making the
    datetime for the common form: SORT (DATE) compares timestamps."""
    fields = _common_form(value)
    if fields is not None:
        year, month, day, hours, minutes, seconds, offset = fields
        try:
            days = date(year, month, day).toordinal() - _EPOCH_DAY
        except ValueError:
            pass  # no such day: the library says so too
        else:
            return float(days * 86400 + hours * 3600 + minutes * 60 + seconds - offset * 60)
    when = _library_date(value)
    return None if when is None else when.timestamp()


def _common_form(value: str) -> tuple[int, int, int, int, int, int, int] | None:
    """(year, month, day, hours, minutes, seconds, zone offset in minutes) of a
    value in the common form with every field in range; else None."""
    match = _COMMON.fullmatch(value)
    if match is None:
        return None
    day, name, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    month = _MONTHS.get(name.lower())
    years, hours, minutes, seconds = int(year), int(hour), int(minute), int(second or 0)
    offset_hours, offset_minutes = int(zone_hours), int(zone_minutes)
    if (
        month is None
        or years < 100  # the library reads 0000-0099 as two-digit years
        or hours > 23
        or minutes > 59
        or seconds > 59
        or offset_hours > 23
        or offset_minutes > 59
    ):
        return None
    offset = offset_hours * 60 + offset_minutes
    return years, month, int(day), hours, minutes, seconds, -offset if sign == "-" else offset


def _zone(minutes: int) -> timezone:
    zone = UTC if minutes == 0 else timezone(timedelta(minutes=minutes))
    if len(_ZONES) < 2 * 24 * 60:  # bounded: there are no more offsets to keep
        _ZONES[minutes] = zone
    return zone


def _library_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
