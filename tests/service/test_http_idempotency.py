"""The same record sent again is a duplicate, whatever the order of its lists of slugs
(topics, mentions, participants, by: sets), but not of its sources; a key is taken as
given, so one with white space around it is refused, by the API and the backfill alike."""

from __future__ import annotations

from typing import Any

import pytest

from tests.service.conftest import BBC, NDJSON, Api, announcement, occurrence, statement, unique
from tests.service.test_http_api import PLURAL, assert_problem, assert_written, ndjson

REUTERS = {"publisher": "Reuters", "url": "https://www.reuters.com/example"}
# A body of each kind whose every unordered list has two items.
SETS: dict[str, dict[str, Any]] = {
    "statement": statement(
        topics=["territory", "negotiations"], mentions=["vladimir-putin", "donald-trump"]
    ),
    "announcement": announcement(
        by=["kremlin", "vladimir-putin"],
        topics=["negotiations", "ceasefire"],
        mentions=["donald-trump", "volodymyr-zelensky"],
    ),
    "occurrence": occurrence(
        participants=["donald-trump", "vladimir-putin"], topics=["negotiations", "territory"]
    ),
}
UNORDERED = ("topics", "mentions", "participants", "by")


def reversed_sets(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v[::-1] if k in UNORDERED else v for k, v in body.items()}


def fresh(kind: str, **more: Any) -> dict[str, Any]:
    """The kind's body, with text no other test writes (so a new derived key)."""
    text = "quote" if kind == "statement" else "title" if kind == "occurrence" else "summary"
    return {**SETS[kind], text: unique(f"the same {kind} again"), **more}


@pytest.mark.parametrize("kind", list(PLURAL))
def test_a_record_sent_again_with_its_sets_in_another_order_is_a_duplicate(
    api: Api, kind: str
) -> None:
    path = f"/{PLURAL[kind]}"
    # Under a derived key: created, then the same with every set reversed is a duplicate.
    body = fresh(kind)
    first = assert_written(api.post(path, body), 201, duplicate=False)
    again = assert_written(api.post(path, reversed_sets(body)), 200, duplicate=True)
    assert (again["id"], again["version"]) == (first["id"], 1)
    # Under a client's key: the same.
    keyed = fresh(kind, key=unique("sets"), sources=[BBC, REUTERS])
    first = assert_written(api.post(path, keyed), 201, duplicate=False)
    again = assert_written(api.post(path, reversed_sets(keyed)), 200, duplicate=True)
    assert again["id"] == first["id"]
    head = api.services.timeline.head_position()
    # Sources keep their order (the first is the one cited): reversed, other content.
    assert_problem(api.post(path, {**keyed, "sources": [REUTERS, BBC]}), 409, "key")
    assert api.services.timeline.head_position() == head


@pytest.mark.parametrize("key", ["k ", " k", "k\n", "\u00a0k", "k\u3000"])
def test_a_key_with_white_space_around_it_is_refused_by_the_api_and_the_backfill(
    api: Api, key: str
) -> None:
    stored = unique("spaced")  # a record under the key without the space
    create = api.post("/statements", fresh("statement", key=stored))
    assert_written(create, 201, duplicate=False)
    spaced = key.replace("k", stored)
    head = api.services.timeline.head_position()
    # The API: 422 naming the key.
    assert_problem(api.post("/statements", fresh("statement", key=spaced)), 422, "key")
    # The backfill: the record line and a correction naming it, each rejected by number.
    lines = [
        {"type": "statement", **fresh("statement", key=spaced)},
        {
            "type": "correction",
            "target": {"kind": "statement", "key": spaced},
            "changes": {"location": "Brussels"},
            "reason": "place",
        },
    ]
    sent = api.post("/admin/backfill", content=ndjson(lines), content_type=NDJSON, who="admin")
    assert sent.status_code == 200, sent.text
    report = sent.json()
    assert report["accepted"] == 0
    assert [(r["line"], r["error"].split(":")[0]) for r in report["rejected"]] == [
        (1, "key"),
        (2, "target.key"),
    ]
    # Nothing was stored.
    assert api.services.timeline.head_position() == head
