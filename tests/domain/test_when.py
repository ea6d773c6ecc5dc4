"""Occurred time keeps its precision and its offset, and never guesses a zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.errors import InvalidTime
from domain.when import parse_when


@pytest.mark.parametrize(
    ("text", "precision", "start", "end", "offset"),
    [
        ("2014", "year", datetime(2014, 1, 1, tzinfo=UTC), datetime(2015, 1, 1, tzinfo=UTC), 0),
        (
            "2014-12",
            "month",
            datetime(2014, 12, 1, tzinfo=UTC),
            datetime(2015, 1, 1, tzinfo=UTC),
            0,
        ),
        (
            "2014-03-18",
            "day",
            datetime(2014, 3, 18, tzinfo=UTC),
            datetime(2014, 3, 19, tzinfo=UTC),
            0,
        ),
        (
            "2025-02-12T15:30-05:00",
            "minute",
            datetime(2025, 2, 12, 20, 30, tzinfo=UTC),
            datetime(2025, 2, 12, 20, 31, tzinfo=UTC),
            -300,
        ),
        (
            "2025-02-12T15:30:05+05:30",
            "second",
            datetime(2025, 2, 12, 10, 0, 5, tzinfo=UTC),
            datetime(2025, 2, 12, 10, 0, 6, tzinfo=UTC),
            330,
        ),
        (
            "2025-02-12T23:59:59.5Z",
            "second",
            datetime(2025, 2, 12, 23, 59, 59, 500000, tzinfo=UTC),
            datetime(2025, 2, 13, 0, 0, 0, 500000, tzinfo=UTC),
            0,
        ),
    ],
)
def test_each_precision_is_read_with_its_utc_interval(
    text: str, precision: str, start: datetime, end: datetime, offset: int
) -> None:
    when = parse_when(text)
    assert (when.text, when.precision, when.start, when.end, when.offset_minutes) == (
        text,
        precision,
        start,
        end,
        offset,
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2025-02-12T15:30:00", "no UTC offset"),
        ("2025-02-30", "not a real date"),
        ("2025-13", "not a real date"),
        ("2025-02-12T25:00Z", "not a real instant"),
        ("2025-02-12T10:00+24:00", "not a UTC offset"),
        ("12 Feb 2025", "is not a year"),
        ("0000", "out of range"),
        ("", "is not a year"),
        (2025, "must be a string"),
        (1739371800.5, "must be a string"),
        (None, "must be a string"),
    ],
)
def test_unreadable_times_are_refused_naming_the_field(value: object, message: str) -> None:
    with pytest.raises(InvalidTime, match=message) as caught:
        parse_when(value, "ended_at")
    assert caught.value.field == "ended_at"
