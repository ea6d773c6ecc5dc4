from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from projections.rows import parse_utc, utc_text

# Years 2 to 9998: at either end, some instants of a zone lie outside the years of UTC.
zones = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=11))]
instants = st.datetimes(datetime(2, 1, 1), datetime(9998, 12, 31), timezones=st.sampled_from(zones))


@given(instants)
def test_an_instant_is_written_in_utc_to_the_microsecond_and_read_back_alike(
    moment: datetime,
) -> None:
    text = utc_text(moment)
    m = moment.astimezone(UTC)
    # The form SQLite stores and the API shows: fixed width, so that text order is time order.
    assert text == (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
        f".{m.microsecond:06d}Z"
    )
    assert parse_utc(text) == moment


@given(instants, instants)
def test_instants_in_text_sort_as_they_do_in_time(a: datetime, b: datetime) -> None:
    assert (utc_text(a) < utc_text(b)) == (a < b)
