"""GET /timeline/counts on every store: how many records each day, week, month or year
holds, by the UTC start of each one's occurred time, filtered as /timeline and as of
any point, from the first day of year 1 to the last of year 9999."""

from __future__ import annotations

import uuid
from typing import Any

from tests.service.conftest import Api, occurrence, statement, unique
from tests.service.test_http_api import assert_problem

# Occurred times, and the start of the day, week (from Monday), month and year of each
# one's UTC start.
TIMES = {
    "2025-02-12": ("2025-02-12", "2025-02-10", "2025-02-01", "2025-01-01"),  # a Wednesday
    "2025-02-16T23:30:00-01:00": ("2025-02-17", "2025-02-17", "2025-02-01", "2025-01-01"),
    "2025-02": ("2025-02-01", "2025-01-27", "2025-02-01", "2025-01-01"),  # a month
    "2024": ("2024-01-01", "2024-01-01", "2024-01-01", "2024-01-01"),  # a year
    "0001": ("0001-01-01", "0001-01-01", "0001-01-01", "0001-01-01"),  # a Monday
    "0001-01-01T13:59-14:00": ("0001-01-02", "0001-01-01", "0001-01-01", "0001-01-01"),
    "9999-12-31T23:59:59Z": ("9999-12-31", "9999-12-27", "9999-12-01", "9999-01-01"),
}
BUCKETS = ("day", "week", "month", "year")


def counts(api: Api, params: dict[str, Any]) -> dict[str, Any]:
    response = api.read("/timeline/counts", params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def tagged(api: Api, topic: str, occurred: list[str]) -> list[int]:
    """A record on the topic for each occurred time; their positions."""
    found = []
    for when in occurred:
        body = statement(quote=unique("counted"), occurred_at=when, topics=[topic])
        response = api.post("/statements", body)
        assert response.status_code == 201, response.text
        found.append(response.json()["position"])
    return found


def new_topic(api: Api, parent: str | None = None) -> str:
    slug = f"t-{uuid.uuid4().hex[:12]}"
    body = {"id": slug, "label": slug, **({"parent": parent} if parent else {})}
    assert api.post("/topics", body).status_code == 201
    return slug


def test_each_bucket_counts_the_records_it_holds_to_the_calendars_edges(api: Api) -> None:
    topic = new_topic(api)
    tagged(api, topic, list(TIMES))
    for n, bucket in enumerate(BUCKETS):
        expected: dict[str, int] = {}
        for starts in TIMES.values():
            expected[starts[n]] = expected.get(starts[n], 0) + 1
        got = counts(api, {"bucket": bucket, "topic": topic})
        assert got == {
            "bucket": bucket,
            "items": [{"start": day, "count": expected[day]} for day in sorted(expected)],
            "total": len(TIMES),
        }
    # Month by default.
    assert counts(api, {"topic": topic})["bucket"] == "month"


def test_counts_are_those_of_the_records_the_timeline_lists(api: Api) -> None:
    parent = new_topic(api)
    child = new_topic(api, parent)
    tagged(api, child, ["2025-02-12", "2025-02-16T23:30:00-01:00", "2025-02", "2024"])
    happened = occurrence(title=unique("o"), topics=[parent], occurred_at="2025-02-14")
    assert api.post("/occurrences", happened).status_code == 201
    filters: list[dict[str, str]] = [
        {"topic": parent},
        {"topic": child},
        {"topic": parent, "kind": "occurrence"},
        {"topic": parent, "actor": "donald-trump"},
        {"topic": parent, "since": "2025-02-12", "until": "2025-02-16"},
        {"topic": parent, "since": "2025-02-17T00:00:00Z"},
        {"topic": parent, "until": "2024-12"},
        {},
    ]
    for where in filters:
        items = api.read("/timeline", {**where, "limit": 500}).json()["items"]
        found = counts(api, {**where, "bucket": "day"})
        assert found["total"] == len(items), where
        days: dict[str, int] = {}
        for item in items:
            days[item["occurred_at"][:10]] = days.get(item["occurred_at"][:10], 0) + 1
        assert found["items"] == [{"start": d, "count": n} for d, n in sorted(days.items())]
    # The subtree: the parent's counts hold the child's records and its own.
    assert counts(api, {"topic": parent, "bucket": "year"})["total"] == 5
    assert counts(api, {"topic": parent, "kind": "occurrence", "bucket": "year"})["total"] == 1


def test_counts_as_of_a_point_before_a_record_leave_it_out(api: Api) -> None:
    topic = new_topic(api)
    first, second = tagged(api, topic, ["2025-02-12", "2025-02-13"])
    recorded = api.read("/events", {"after": second - 1, "limit": 1}).json()["events"][0]
    then = api.read(
        "/timeline/counts", {"topic": topic, "bucket": "day", "as_of_position": second - 1}
    )
    assert then.status_code == 200 and then.headers["x-timeline-position"] == str(second - 1)
    assert then.json()["items"] == [{"start": "2025-02-12", "count": 1}]
    assert counts(api, {"topic": topic, "as_of_position": first - 1})["items"] == []
    # An instant, as every read's as_of: the second record is in from when it was recorded.
    now = counts(api, {"topic": topic, "bucket": "year", "as_of": recorded["recorded_at"]})
    assert now["items"] == [{"start": "2025-01-01", "count": 2}]
    # A topic not yet defined then is not found then.
    early = {"topic": topic, "as_of_position": first - 3}
    assert_problem(api.read("/timeline/counts", early), 404, "topic")


def test_bad_parameters_are_problems_naming_them(api: Api) -> None:
    def refused(status: int, field: str, **params: Any) -> None:
        assert_problem(api.client.get("/timeline/counts", params=params), status, field)

    refused(400, "bucket", bucket="fortnight")
    refused(400, "bucket", bucket="Month")
    refused(404, "topic", topic="no-such-topic")
    refused(404, "actor", actor="no-such-actor")
    refused(400, "topic", topic="Not A Slug")
    refused(400, "kind", kind="opinion")
    refused(400, "since", since="the other day")  # as /timeline answers it
    refused(422, "until", until="2025-02-12T10:00+15:00")
    refused(400, "as_of", as_of="2025-02-20T00:00:00Z", as_of_position=1)
    refused(422, "as_of_position", as_of_position=10**9)
