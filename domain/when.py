"""Occurred time: a year, month, day or offset-bearing instant, with its precision kept.

The service never guesses a time zone: an instant without an offset is refused.
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
_FIRST = datetime(1, 1, 1, tzinfo=UTC)


def starts_open_at(instant: datetime) -> tuple[datetime, tuple[datetime, ...]]:
    """`(after, exactly)`: every When open at the instant (`start <= instant < end`)
    starts after `after`, or at one of `exactly` (each at or before `after`).

    A year, month or day starts at a UTC midnight, a minute on a UTC minute (offsets are
    whole minutes), and a second anywhere, but lasts one second. So an index on start
    finds them with a short range and a few probes, not a walk through all history.
    """
    m = instant.astimezone(UTC)
    after = max(m, _FIRST + SECOND) - SECOND
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
        raise InvalidTime(f"{text!r} is not a real date: {e}", field=field) from None
    if year < 1 or year > 9998:
        raise InvalidTime(f"year {year} is out of range", field=field)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    if m["d"]:
        return When(text, "day", start, start + timedelta(days=1), 0)
    if m["m"]:
        nxt = date(year + (month == 12), month % 12 + 1, 1)
        return When(text, "month", start, datetime(nxt.year, nxt.month, 1, tzinfo=UTC), 0)
    return When(text, "year", start, datetime(year + 1, 1, 1, tzinfo=UTC), 0)


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
        if hours > 23 or minutes > 59:
            raise InvalidTime(f"{m['tz']!r} is not a UTC offset", field=field)
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
        start = local.astimezone(UTC)
    except (ValueError, OverflowError) as e:
        raise InvalidTime(f"{text!r} is not a real instant: {e}", field=field) from None
    if m["s"]:
        return When(text, "second", start, start + timedelta(seconds=1), offset)
    return When(text, "minute", start, start + timedelta(minutes=1), offset)
