"""GET /changes on every store: what changed in what we know between two points of the
log. Each event of a record is one change at its position (added, corrected, sourced,
tagged, retracted), between two positions or two instants, filtered as /timeline and
paged by cursor; nothing else is a change; every bad parameter is a problem naming it.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from domain.writers import Author
from service.files.backfill import load_files, seed_files
from service.http.app import build_services, create_app
from service.http.params import encode_cursor
from service.settings import Settings
from tests.service.conftest import (
    BBC,
    Api,
    Apps,
    announcement,
    occurrence,
    statement,
    unique,
)
from tests.service.test_http_api import assert_problem

# The change each event of a record makes (a correction: by the fields it changed).
CHANGE_OF = {
    "Recorded": "added",
    "SourceAdded": "sourced",
    "TopicsTagged": "tagged",
    "TopicsUntagged": "tagged",
    "Retracted": "retracted",
}


def changes(api: Api, params: dict[str, Any]) -> dict[str, Any]:
    response = api.client.get("/changes", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["x-timeline-position"] == str(body["to_position"])
    return body


def written(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def slug() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def test_each_change_of_a_record_is_listed_at_its_position(api: Api) -> None:
    start = api.services.timeline.head_position()
    quote = unique("said, then changed")
    made = written(api.post("/statements", statement(quote=quote)))
    base = f"/statements/{made['id']}"
    other = {"publisher": "Reuters", "url": f"https://example.org/{uuid.uuid4().hex}"}
    steps: list[tuple[dict[str, Any], str]] = [
        ({"changes": {"location": "Brussels"}, "reason": "placed"}, "corrections"),
        ({"source": other}, "sources"),
        ({"add": ["sanctions"]}, "tags"),
        ({"remove": ["sanctions"]}, "tags"),
        ({"changes": {"quote": f"{quote}!", "channel": "interview"}, "reason": "r"}, "corrections"),
        ({"changes": {"sources": [BBC]}, "reason": "one source was wrong"}, "corrections"),
        ({"changes": {"topics": ["territory", "crimea"]}, "reason": "r"}, "corrections"),
        ({"reason": "misattributed"}, "retraction"),
    ]
    answers = [made] + [written(api.post(f"{base}/{path}", body)) for body, path in steps]
    end = answers[-1]["position"]
    page = changes(api, {"from_position": start, "to_position": end})
    assert (page["from_position"], page["to_position"], page["next_cursor"]) == (start, end, None)
    expected = [
        ("added", [], 1),
        ("corrected", ["location"], 2),
        ("sourced", ["sources"], 3),
        ("tagged", ["topics"], 4),
        ("tagged", ["topics"], 5),
        ("corrected", ["channel", "quote"], 6),
        ("sourced", ["sources"], 7),  # a correction of the sources alone
        ("tagged", ["topics"], 8),  # and of the topics alone
        ("retracted", [], 8),  # the last version, as it stood before the retraction
    ]
    got = [
        (i["position"], i["recorded_at"], i["change"], i["kind"], i["id"], i["fields"])
        for i in page["items"]
    ]
    assert got == [
        (a["position"], a["recorded_at"], change, "statement", made["id"], fields)
        for a, (change, fields, _) in zip(answers, expected, strict=True)
    ]
    # Each item is the record's item after the change; a retraction's, the one before it.
    items = [i["item"] for i in page["items"]]
    assert [i["version"] for i in items] == [version for *_, version in expected]
    assert items[1]["location"] == "Brussels" and "location" not in items[0]
    assert items[2]["sources"][-1]["url"] == other["url"]
    assert items[3]["topics"] == ["territory", "sanctions"] and items[4]["topics"] == ["territory"]
    assert items[-1] == items[-2]
    # A span that starts inside: only what came after its start.
    later = changes(api, {"from_position": answers[5]["position"], "to_position": end})
    assert [i["position"] for i in later["items"]] == [a["position"] for a in answers[6:]]


def test_a_span_is_given_by_instants_as_as_of_reads_them(api: Api) -> None:
    first = written(api.post("/statements", statement(quote=unique("first"))))
    second = written(api.post("/statements", statement(quote=unique("second"))))
    third = written(api.post("/occurrences", occurrence(title=unique("third"))))
    span = {"from_position": first["position"], "to_position": third["position"]}
    by_positions = changes(api, span)
    assert [i["id"] for i in by_positions["items"]] == [second["id"], third["id"]]
    # The instants they were recorded at: after the first, up to the third.
    by_instants = changes(api, {"from": first["recorded_at"], "to": third["recorded_at"]})
    assert by_instants == by_positions
    # The same instant in another offset, and one end of each kind.
    moment = datetime.fromisoformat(third["recorded_at"].replace("Z", "+00:00"))
    east = moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    assert changes(api, {"from": first["recorded_at"], "to": east}) == by_positions
    mixed = {"from_position": first["position"], "to": third["recorded_at"]}
    assert changes(api, mixed) == by_positions
    # An instant before the log is its start; the end defaults to where the read models are.
    whole = changes(api, {"from": "2000-01-01T00:00:00Z", "to": third["recorded_at"], "limit": 1})
    assert (whole["from_position"], whole["to_position"]) == (0, third["position"])
    api.read("/timeline", {"limit": 1})  # the read models have reached every write
    now = changes(api, {"from_position": second["position"]})
    assert now["to_position"] >= third["position"]
    assert now["items"][0]["id"] == third["id"]


def test_an_end_the_read_models_have_not_read_to_is_waited_for(
    durable_store: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    apps = Apps(tmp_path, request)
    try:
        settings = Settings(database_url=apps.url(durable_store), wait_timeout=30, pool_size=6)
        services = build_services(settings)
        key = services.keys.create("writer", "write")
        assert load_files(services.timeline, seed_files(), Author("seed")).rejected == []
        services.models.catch_up()
        # The read models are not run: a statement is written that they have not read.
        with TestClient(create_app(settings, run_projections=False, built=services)) as client:
            auth = {"Authorization": f"Bearer {key}"}
            made = written(client.post("/statements", json=statement(), headers=auth))
            span = {"from_position": made["position"] - 1, "to": made["recorded_at"]}
            # It is waited for, and then listed, as every later answer lists it.
            later = threading.Timer(0.5, services.models.catch_up)
            later.start()
            try:
                waited = client.get("/changes", params=span)
            finally:
                later.join()
            assert waited.status_code == 200, waited.text
            assert [i["id"] for i in waited.json()["items"]] == [made["id"]]
            assert client.get("/changes", params=span).content == waited.content
    finally:
        apps.close()


def test_filters_keep_the_changes_of_their_records(api: Api) -> None:
    before_topics = api.services.timeline.head_position()
    parent, child = slug(), slug()
    written(api.post("/topics", {"id": parent, "label": "Parent"}))
    written(api.post("/topics", {"id": child, "label": "Child", "parent": parent}))
    start = api.services.timeline.head_position()
    said = written(api.post("/statements", statement(quote=unique("q"), topics=[child])))
    happened = written(api.post("/occurrences", occurrence(title=unique("o"))))
    fixed = written(
        api.post(
            f"/statements/{said['id']}/corrections",
            {"changes": {"location": "Kyiv"}, "reason": "r"},
        )
    )
    source = {"source": {"publisher": "AP", "url": f"https://example.org/{uuid.uuid4().hex}"}}
    sourced = written(api.post(f"/occurrences/{happened['id']}/sources", source))
    span = {"from_position": start, "to_position": sourced["position"]}

    def positions(**filters: str) -> list[int]:
        return [i["position"] for i in changes(api, {**span, **filters})["items"]]

    assert positions() == [w["position"] for w in (said, happened, fixed, sourced)]
    assert positions(kind="occurrence") == [happened["position"], sourced["position"]]
    assert positions(kind="statement") == [said["position"], fixed["position"]]
    assert positions(change="added") == [said["position"], happened["position"]]
    assert positions(change="corrected") == [fixed["position"]]
    assert positions(change="sourced") == [sourced["position"]]
    assert positions(change="retracted") == positions(change="tagged") == []
    # A topic with the topics below it; an actor however the record names it.
    assert positions(topic=parent) == positions(topic=child) == positions(kind="statement")
    assert positions(actor="mark-rutte") == positions(kind="statement")  # its speaker
    assert positions(actor="donald-trump") == positions(kind="occurrence")  # a participant
    assert positions(topic="negotiations", actor="donald-trump") == positions(kind="occurrence")
    assert positions(topic=parent, change="corrected") == [fixed["position"]]
    # The tree as it stood at the span's end: moved away since, the child is not below.
    moved = written(api.post(f"/topics/{child}/changes", {"parent": "international-relations"}))
    after_move = {"from_position": start, "to_position": moved["position"]}
    assert changes(api, {**after_move, "topic": parent})["items"] == []
    assert len(changes(api, {**after_move, "topic": child})["items"]) == 2
    # A topic or an actor unknown at the span's end.
    assert_problem(api.client.get("/changes", params={"topic": "no-such-topic"}), 404, "topic")
    assert_problem(api.client.get("/changes", params={"actor": "no-such-actor"}), 404, "actor")
    early: dict[str, str | int] = {"to_position": before_topics, "topic": parent}
    assert_problem(api.client.get("/changes", params=early), 404, "topic")


def test_pages_hold_every_change_once_in_position_order(api: Api) -> None:
    written(api.post("/statements", statement(quote=unique("paged"))))
    end = api.services.timeline.head_position()
    whole = changes(api, {"to_position": end, "limit": 500})
    assert whole["next_cursor"] is None and len(whole["items"]) > 30
    positions = [i["position"] for i in whole["items"]]
    assert positions == sorted(set(positions))
    for kind in ("added", "retracted"):  # a filter pages alike
        everything = changes(api, {"to_position": end, "change": kind, "limit": 500})["items"]
        assert everything == [i for i in whole["items"] if i["change"] == kind]
    paged: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"to_position": end, "limit": 7, **({"cursor": cursor} if cursor else {})}
        page = changes(api, params)
        assert len(page["items"]) <= 7
        paged += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == whole["items"]


def test_every_event_of_a_record_is_one_change_and_nothing_else_is(api: Api) -> None:
    made = written(api.post("/announcements", announcement(summary=unique("said"))))
    written(api.post(f"/announcements/{made['id']}/retraction", {"reason": "r"}))
    end = api.services.timeline.head_position()
    events: list[dict[str, Any]] = []
    while True:
        after = events[-1]["position"] if events else 0
        page = api.client.get("/events", params={"after": after, "limit": 500}).json()
        if not page["events"]:
            break
        events += page["events"]
    listed = {i["position"]: i for i in changes(api, {"to_position": end, "limit": 500})["items"]}
    expected = {
        e["position"]: (e["type"].rsplit(".", 1)[-1], e["aggregate_id"])
        for e in events
        if e["position"] <= end and e["type"].rsplit(".", 1)[-1] in {*CHANGE_OF, "Corrected"}
    }
    assert set(listed) == set(expected)
    for position, (event, id) in expected.items():
        item = listed[position]
        assert item["id"] == id == item["item"]["id"]
        if event == "Corrected":
            assert item["change"] in ("corrected", "sourced", "tagged")
        else:
            assert item["change"] == CHANGE_OF[event]
        # The kind of change agrees with the fields it names.
        fields = {"sourced": ["sources"], "tagged": ["topics"]}.get(item["change"])
        if item["change"] in ("added", "retracted"):
            assert item["fields"] == []
        elif fields is not None:
            assert item["fields"] == fields
        else:
            assert item["fields"] and item["fields"] not in (["sources"], ["topics"])


def test_bad_parameters_are_problems_naming_them(api: Api) -> None:
    head = api.services.timeline.head_position()

    def refused(status: int, field: str, **params: Any) -> None:
        assert_problem(api.client.get("/changes", params=params), status, field)

    at = "2025-02-20T00:00:00Z"
    refused(400, "from", **{"from": at, "from_position": 1})
    refused(400, "to", to=at, to_position=1)
    refused(400, "from", **{"from": "2025-02-20"})  # a day is not an instant
    refused(400, "from", **{"from": "yesterday"})  # as as_of answers it
    refused(400, "to", to="2025-02-20T00:00:00")  # without its offset
    refused(422, "to", to="2025-02-20T00:00:00+15:00")
    refused(422, "from", **{"from": "2025-02-21T00:00:00Z", "to": at})
    refused(422, "from_position", from_position=3, to_position=2)
    refused(422, "from_position", from_position=head + 1)  # after the end: now
    refused(422, "to_position", to_position=head + 1000)
    refused(422, "from_position", from_position=-1)
    refused(400, "to_position", to_position="1e2")
    refused(422, "to_position", to_position=2**62)
    refused(422, "limit", limit=0)
    refused(422, "limit", limit=501)
    refused(400, "cursor", cursor="not a cursor")
    refused(400, "cursor", cursor=encode_cursor("a string"))
    refused(400, "cursor", cursor=encode_cursor(-1))
    refused(400, "kind", kind="opinion")
    refused(400, "change", change="edited")
    refused(400, "topic", topic="Not A Slug")
    refused(400, "actor", actor="")
