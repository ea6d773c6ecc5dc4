"""One rule for every query parameter of every route (docs/errors.md): 400 when the
request cannot be read (a parameter the route does not take, a value not in its written
form), 422 when a value reads but names nothing real or lies outside its range, 404 when
a filter names a topic or an actor that does not exist (then, with `as_of`)."""

from __future__ import annotations

import pytest

from tests.service.conftest import NDJSON, Api, concrete, operations, record_ids, unique
from tests.service.test_http_api import assert_problem

AN_INSTANT = "2025-02-20T00:00:00Z"

# (path, query, status, the field named): each row of the rule, on the routes that read
# each kind of parameter.
ROWS = [
    # A time not in a form its parameter takes: 400.
    ("/timeline", {"since": "yesterday"}, 400, "since"),
    ("/timeline", {"until": "2025-02-12T10:00:00"}, 400, "until"),  # no offset
    ("/timeline", {"as_of": "2025-02-12"}, 400, "as_of"),  # a day, not an instant
    ("/timeline/counts", {"since": "the other day"}, 400, "since"),
    ("/topics/negotiations/who-said-what", {"since": "last week"}, 400, "since"),
    ("/changes", {"from": "yesterday"}, 400, "from"),
    ("/changes", {"to": "2025-02-20"}, 400, "to"),
    ("/actors", {"as_of": "now"}, 400, "as_of"),
    # ...in its form, but no real time: 422.
    ("/timeline", {"since": "2014-13-01"}, 422, "since"),
    ("/timeline", {"until": "2025-02-30"}, 422, "until"),
    ("/timeline", {"since": "0000"}, 422, "since"),
    ("/timeline", {"as_of": "2025-02-12T10:00:00+15:00"}, 422, "as_of"),
    ("/timeline/counts", {"until": "2025-02-12T25:00Z"}, 422, "until"),
    ("/topics/negotiations/who-said-what", {"until": "2025-02-29"}, 422, "until"),
    ("/changes", {"to": "2025-13-01T00:00Z"}, 422, "to"),
    ("/topics", {"as_of": "2025-02-12T10:00+14:60"}, 422, "as_of"),
    # A whole number not in digits: 400; out of its range: 422.
    ("/timeline", {"limit": "ten"}, 400, "limit"),
    ("/timeline", {"limit": "1e2"}, 400, "limit"),
    ("/timeline", {"limit": 0}, 422, "limit"),
    ("/timeline", {"limit": 501}, 422, "limit"),
    ("/actors", {"limit": 0}, 422, "limit"),
    ("/events", {"limit": 501}, 422, "limit"),
    ("/changes", {"limit": 0}, 422, "limit"),
    ("/timeline", {"as_of_position": -1}, 422, "as_of_position"),
    ("/timeline", {"min_position": -1}, 422, "min_position"),
    ("/timeline", {"as_of_position": 2**62}, 422, "as_of_position"),
    ("/timeline", {"as_of_position": 10**9}, 422, "as_of_position"),  # past the head
    ("/events", {"after": -1}, 422, "after"),
    ("/events/stream", {"after": -1}, 422, "after"),  # refused before it streams
    ("/changes", {"from_position": -1}, 422, "from_position"),
    ("/changes", {"to_position": "two"}, 400, "to_position"),
    # A slug, a word of a closed set, a cursor: 400.
    ("/timeline", {"topic": "Not A Slug"}, 400, "topic"),
    ("/timeline", {"actor": ""}, 400, "actor"),
    ("/timeline", {"kind": "rumour"}, 400, "kind"),
    ("/timeline/counts", {"bucket": "fortnight"}, 400, "bucket"),
    ("/timeline", {"cursor": "not a cursor"}, 400, "cursor"),
    # A filter naming no topic or actor: 404.
    ("/timeline", {"topic": "no-such-topic"}, 404, "topic"),
    ("/timeline", {"actor": "no-such-actor"}, 404, "actor"),
    ("/timeline/counts", {"topic": "no-such-topic"}, 404, "topic"),
    ("/changes", {"actor": "no-such-actor"}, 404, "actor"),
    # A parameter the route does not take, or one given with another it excludes: 400.
    ("/timeline", {"search": "putin"}, 400, "search"),
    ("/events", {"as_of": AN_INSTANT}, 400, "as_of"),
    ("/timeline", {"as_of": AN_INSTANT, "as_of_position": 1}, 400, "as_of"),
]


@pytest.mark.parametrize(("path", "query", "status", "field"), ROWS)
def test_each_row_of_the_rule_answers_its_status_naming_the_parameter(
    api: Api, path: str, query: dict[str, str | int], status: int, field: str
) -> None:
    assert_problem(api.client.get(path, params=query), status, field)


def test_an_unknown_query_parameter_is_400_naming_it_on_every_route(api: Api) -> None:
    ids = record_ids(api)
    for method, template in operations():
        path = concrete(template, ids)
        if method == "GET":
            answer = api.client.get(path, params={"unknown": "1"})
        else:  # a body each route would take or refuse: the query is read first
            headers = {"Content-Type": NDJSON, **api.auth("admin")}
            answer = api.client.request(
                method, path, params={"unknown": "1"}, content=b"", headers=headers
            )
        assert_problem(answer, 400, "unknown")


@pytest.mark.parametrize("path", ["/", "/schema", "/schema/openapi.json", "/static/app.js"])
def test_the_page_its_files_and_the_docs_take_any_query(api: Api, path: str) -> None:
    # The page keeps its state in its URL, so a link to it may carry anything.
    assert api.client.get(path, params={"view": "topics", "unknown": "1"}).status_code == 200


def test_a_filter_naming_a_topic_or_actor_unknown_at_that_point_is_404(api: Api) -> None:
    # A topic and an actor defined now...
    topic, actor = unique("t").replace(" ", "-")[:40], unique("a").replace(" ", "-")[:40]
    before = api.services.timeline.head_position()
    assert api.post("/topics", {"id": topic, "label": "A topic"}).status_code == 201
    body = {"id": actor, "name": "An actor", "kind": "person"}
    assert api.post("/actors", body).status_code == 201
    for path in ("/timeline", "/timeline/counts"):
        for name, slug in (("topic", topic), ("actor", actor)):
            # ...are known now (an empty answer)...
            assert api.read(path, {name: slug}).status_code == 200
            # ...and were not before: 404 naming the filter.
            then = api.read(path, {name: slug, "as_of_position": before})
            assert_problem(then, 404, name)
            assert "at that point" in then.json()["detail"]
