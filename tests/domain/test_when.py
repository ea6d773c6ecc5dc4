"""Occurred time keeps its precision and its offset, and never guesses a zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidTime
from domain.when import parse_when, starts_open_at


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


_TEXTS = st.one_of(
    st.dates(min_value=date(1, 1, 1), max_value=date(9998, 12, 31)).flatmap(
        lambda d: st.sampled_from([d.isoformat()[:4], d.isoformat()[:7], d.isoformat()])
    ),
    st.tuples(
        st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9997, 12, 31)),
        st.sampled_from(["%H:%M", "%H:%M:%S", "%H:%M:%S.%f"]),
        st.sampled_from(["Z", "+05:45", "-09:30", "+14:00"]),
    ).map(lambda t: f"{t[0].date().isoformat()}T{t[0].strftime(t[1])}{t[2]}"),
)


@given(text=_TEXTS, into=st.floats(min_value=0, max_value=1, exclude_max=True))
def test_every_time_open_at_an_instant_starts_where_an_index_probe_finds_it(
    text: str, into: float
) -> None:
    # Any instant inside an occurred time...
    when = parse_when(text)
    instant = min(when.start + (when.end - when.start) * into, when.end - timedelta.resolution)
    # ...has that time start after the bound, or at one of the few starts named.
    after, exactly = starts_open_at(instant)
    assert when.start > after or when.start in exactly
    assert all(start <= after for start in exactly)
