"""Occurred time: a year, month, day or offset-bearing instant, with its precision kept.

The service never guesses a time zone: an instant without an offset is refused. Times run
from 0001-01-01T00:00Z to 9999-12-31T23:59:59.999999Z, with offsets of at most 14 hours;
an interval that would end past the last instant ends at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Literal

from domain.errors import InvalidTime

Precision = Literal["year", "month", "day", "minute", "second"]

_DATE = re.compile(r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2}))?)?")
_INSTANT = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})T(?P<h>\d{2}):(?P<mi>\d{2})"
    r"(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,6}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?"
)


@dataclass(frozen=True, slots=True)
class When:
    """A parsed occurred time: the text as given, its precision and its UTC interval."""

    text: str
    precision: Precision
    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC
    offset_minutes: int  # the offset the writer gave; 0 for dates


SECOND = timedelta(seconds=1)
FIRST = datetime(1, 1, 1, tzinfo=UTC)
LAST = datetime.max.replace(tzinfo=UTC)  # 9999-12-31T23:59:59.999999Z
MAX_OFFSET_MINUTES = 14 * 60  # the widest offset in use (Kiribati, +14:00)
_RANGE = "0001-01-01T00:00Z to 9999-12-31T23:59:59.999999Z"


def later(moment: datetime, length: timedelta) -> datetime:
    """`moment + length`, or the last instant where that would pass it."""
    return moment + length if LAST - moment >= length else LAST


def starts_open_at(instant: datetime) -> tuple[datetime, tuple[datetime, ...]]:
    """`(after, exactly)`: every When open at the instant (`start <= instant < end`)
    starts after `after`, or at one of `exactly` (each at or before `after`).

    A year, month or day starts at a UTC midnight, a minute on a UTC minute (offsets are
    whole minutes), and a second anywhere, but lasts one second. So an index on start
    finds them with a short range and a few probes, not a walk through all history.
    """
    m = instant.astimezone(UTC)
    after = max(m, FIRST + SECOND) - SECOND
    floors = {
        datetime(m.year, 1, 1, tzinfo=UTC),
        datetime(m.year, m.month, 1, tzinfo=UTC),
        datetime(m.year, m.month, m.day, tzinfo=UTC),
        m.replace(second=0, microsecond=0),
    }
    return after, tuple(sorted(f for f in floors if f <= after))


def parse_when(value: object, field: str = "occurred_at") -> When:
    """Read an occurred time, or raise `InvalidTime` naming the field."""
    if not isinstance(value, str):
        raise InvalidTime(
            f"must be a string (a year, month, day or instant with offset), "
            f"not {type(value).__name__}",
            field=field,
        )
    if len(value) <= _CACHED_LENGTH:
        return _parse_cached(value, field)
    return _parse(value, field)


_CACHED_LENGTH = 40  # longer than any valid time: a long value is never kept


@lru_cache(maxsize=8192)
def _parse_cached(value: str, field: str) -> When:
    """Histories repeat their times (a month, a day): each is parsed once. A value
    that raises is not kept."""
    return _parse(value, field)


def _parse(value: str, field: str) -> When:
    if m := _DATE.fullmatch(value):
        return _parse_date(value, m, field)
    if m := _INSTANT.fullmatch(value):
        return _parse_instant(value, m, field)
    raise InvalidTime(
        f"{value[:40]!r} is not a year (2014), month (2014-03), day (2014-03-18) "
        "or instant with offset (2025-02-12T15:30:00-05:00)",
        field=field,
    )


def _parse_date(text: str, m: re.Match[str], field: str) -> When:
    year, month, day = int(m["y"]), int(m["m"] or 1), int(m["d"] or 1)
    try:
        first = date(year, month, day)
    except ValueError as e:
        raise InvalidTime(
            f"{text!r} is not a real date: {e}", field=field, impossible=True
        ) from None
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    if m["d"]:
        return When(text, "day", start, later(start, timedelta(days=1)), 0)
    if m["m"]:
        return When(text, "month", start, _first_of(year + (month == 12), month % 12 + 1), 0)
    return When(text, "year", start, _first_of(year + 1, 1), 0)


def _first_of(year: int, month: int) -> datetime:
    """The first instant of a month; the last instant when the calendar ends before it."""
    return datetime(year, month, 1, tzinfo=UTC) if year <= LAST.year else LAST


def _parse_instant(text: str, m: re.Match[str], field: str) -> When:
    if not m["tz"]:
        raise InvalidTime(
            f"{text!r} has no UTC offset; add one (Z or +02:00): the service never guesses",
            field=field,
        )
    offset = 0
    if m["tz"] != "Z":
        sign = -1 if m["tz"][0] == "-" else 1
        hours, minutes = int(m["tz"][1:3]), int(m["tz"][4:6])
        if minutes > 59 or hours * 60 + minutes > MAX_OFFSET_MINUTES:
            raise InvalidTime(
                f"{m['tz']!r} is not a UTC offset: offsets run from -14:00 to +14:00",
                field=field,
                impossible=True,
            )
        offset = sign * (hours * 60 + minutes)
    try:
        day = date.fromisoformat(m["date"])
        local = datetime(
            day.year,
            day.month,
            day.day,
            int(m["h"]),
            int(m["mi"]),
            int(m["s"] or 0),
            int((m["f"] or "0").ljust(6, "0")),
            tzinfo=timezone(timedelta(minutes=offset)),
        )
    except ValueError as e:
        raise InvalidTime(
            f"{text!r} is not a real instant: {e}", field=field, impossible=True
        ) from None
    try:
        start = local.astimezone(UTC)
    except OverflowError:
        raise InvalidTime(
            f"{text!r} is, in UTC, outside the times this service keeps ({_RANGE})",
            field=field,
            impossible=True,
        ) from None
    if m["s"]:
        return When(text, "second", start, later(start, SECOND), offset)
    return When(text, "minute", start, later(start, timedelta(minutes=1)), offset)
