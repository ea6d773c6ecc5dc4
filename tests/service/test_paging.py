"""Every list that can grow pages alike, on every store: `limit` (1 to 500, 50 by default)
and the `cursor` of the page before, which carries the position the walk's first page
answered as of. So a walk, at a fixed point or "now", is the whole list at that point,
once and in order, even while records, actors and topics are written between its pages.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from service.http.params import decode_cursor, encode_cursor
from tests.service.conftest import BBC, Api, unique
from tests.service.test_http_api import assert_problem

Walk = tuple[list[dict[str, Any]], set[str], list[str]]


def slug(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def said(api: Api, speaker: str, topic: str, day: int) -> str:
    """A statement of `speaker` on `topic`, on a day of February 2025; its id."""
    body = {
        "speaker": speaker,
        "quote": unique("Paged"),
        "occurred_at": f"2025-02-{day:02d}",
        "channel": "interview",
        "topics": [topic],
        "sources": [BBC],
    }
    response = api.post("/statements", body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture(scope="module")
def story(api: Api) -> dict[str, Any]:
    """A topic of its own with three speakers (4, 3 and 1 records, one of them an
    announcement by two), and a statement corrected three times."""
    topic = slug("topic")
    assert api.post("/topics", {"id": topic, "label": "Paged topic"}).status_code == 201
    speakers = [slug("speaker") for _ in range(3)]
    for n, who in enumerate(speakers):
        body = {"id": who, "name": f"Speaker {n}", "kind": "person"}
        assert api.post("/actors", body).status_code == 201
    for day, n in ((3, 0), (1, 0), (7, 1), (2, 0), (5, 2), (4, 1)):
        said(api, speakers[n], topic, day)
    by_two: dict[str, Any] = {
        "by": speakers[:2],
        "summary": unique("Joint"),
        "occurred_at": "2025-02-06",
        "channel": "written-statement",
        "topics": [topic],
        "sources": [BBC],
    }
    assert api.post("/announcements", by_two).status_code == 201
    corrected = said(api, speakers[2], "negotiations", 9)
    for place in ("Kyiv", "Munich", "Riyadh"):
        change = {"changes": {"location": place}, "reason": "r"}
        assert api.post(f"/statements/{corrected}/corrections", change).status_code == 200
    return {"topic": topic, "speakers": speakers, "corrected": corrected}


def lists(story: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every paged list, with the params that make it this story's."""
    return {
        "timeline": ("/timeline", {"topic": story["topic"]}),
        "who-said-what": (f"/topics/{story['topic']}/who-said-what", {}),
        "actors": ("/actors", {}),
        "topics": ("/topics", {}),
        "history": (f"/statements/{story['corrected']}/history", {}),
    }


def entries(name: str, body: dict[str, Any]) -> list[Any]:
    """What a page lists (who-said-what: each speaker's slice of records)."""
    if name == "who-said-what":
        return [(s["actor"]["id"], s["offset"], s["records"]) for s in body["speakers"]]
    items: list[Any] = body["items"]
    return items


def whole(name: str, pages: list[dict[str, Any]]) -> list[Any]:
    """The list the pages make together. A speaker of who-said-what continued from the
    page before starts at the offset where it stopped there."""
    if name != "who-said-what":
        return [item for page in pages for item in entries(name, page)]
    speakers: list[dict[str, Any]] = []
    for page in pages:
        for s in page["speakers"]:
            last = speakers[-1] if speakers else None
            if last is not None and last["actor"] == s["actor"]:
                assert s["offset"] == len(last["records"]) > 0, s
                last["records"] += s["records"]
            else:
                assert s["offset"] == 0, s
                speakers.append({**s, "records": list(s["records"])})
    return speakers


def walk(
    api: Api,
    path: str,
    params: dict[str, Any],
    limit: int,
    between: Callable[[], None],
    *,
    waits: bool = True,
) -> Walk:
    """Every page of a list from its first, calling `between` after each page; the
    positions the pages said they answered as of; and each page's Cache-Control.
    `waits`: each page waits for the writes before it (`min_position`, which /changes
    does not take)."""
    pages: list[dict[str, Any]] = []
    seen: set[str] = set()
    caching: list[str] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        page = api.read(path, query) if waits else api.client.get(path, params=query)
        assert page.status_code == 200, page.text
        pages.append(page.json())
        seen.add(page.headers["x-timeline-position"])
        caching.append(page.headers["cache-control"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return pages, seen, caching
        assert len(pages) < 100
        between()


def writer(api: Api, story: dict[str, Any]) -> Callable[[], None]:
    """Writes to every list: a record of the topic by its first speaker, dated first and
    last, a new actor and a new topic whose ids sort first, and a correction."""
    days = itertools.cycle(range(1, 29))

    def write() -> None:
        said(api, story["speakers"][0], story["topic"], next(days))
        for what in ("actors", "topics"):
            label = {"name": "Early", "kind": "person"} if what == "actors" else {"label": "E"}
            created = api.post(f"/{what}", {"id": slug("a0"), **label})
            assert created.status_code == 201, created.text
        body = {"changes": {"location": unique("Place")}, "reason": "r"}
        corrected = api.post(f"/statements/{story['corrected']}/corrections", body)
        assert corrected.status_code == 200, corrected.text

    return write


def limit(entries: list[Any]) -> int:
    """A limit that makes three or four pages of a list (of records, for who-said-what)."""
    held = sum(len(s["records"]) if "records" in s else 1 for s in entries)
    return max(1, held // 3)


def all_at_once(api: Api, name: str, path: str, params: dict[str, Any], at: int) -> list[Any]:
    answer = api.read(path, {**params, "limit": 500, "as_of_position": at})
    assert answer.status_code == 200, answer.text
    assert answer.json()["next_cursor"] is None
    return whole(name, [answer.json()])


@pytest.mark.parametrize("name", ["timeline", "who-said-what", "actors", "topics", "history"])
def test_a_walk_at_a_fixed_position_is_the_whole_list_once_while_writes_go_on(
    api: Api, story: dict[str, Any], name: str
) -> None:
    path, params = lists(story)[name]
    # The list as it stands at a position, in one answer...
    at = api.position
    expected = all_at_once(api, name, path, params, at)
    assert len(expected) >= 3
    # ...is what two at a time give, while all the lists grow between the pages.
    size = limit(expected)
    pages, seen, caching = walk(
        api, path, {**params, "as_of_position": at}, size, writer(api, story)
    )
    assert len(pages) >= 3
    assert whole(name, pages) == expected
    assert seen == {str(at)} and set(caching) == {"public, max-age=31536000, immutable"}
    # The same walk later: the same pages.
    assert walk(api, path, {**params, "as_of_position": at}, size, lambda: None)[0] == pages


@pytest.mark.parametrize("name", ["timeline", "who-said-what", "actors", "topics", "history"])
def test_a_walk_read_now_answers_every_page_as_of_its_first(
    api: Api, story: dict[str, Any], name: str
) -> None:
    path, params = lists(story)[name]
    # Read now, while the lists grow between its pages...
    size = limit(all_at_once(api, name, path, params, api.position))
    pages, seen, caching = walk(api, path, params, size, writer(api, story))
    # ...every page says and answers the position of the first: the walk is the list as
    # it stood then, each entry once, none written later.
    assert len(seen) == 1 and len(pages) >= 3
    # (So a page after the first never changes: it may be kept. A history's events that
    # the read models had not read yet gain their positions later.)
    later = "no-cache" if name == "history" else "public, max-age=31536000, immutable"
    assert caching == ["no-cache"] + [later] * (len(pages) - 1)
    at = int(seen.pop())
    assert at < api.position
    assert whole(name, pages) == all_at_once(api, name, path, params, at)
    # (Who-said-what's first speaker has more records now than at the walk's point.)
    if name == "who-said-what":
        now = api.read(path, {"limit": 500}).json()["speakers"]
        assert now[0]["count"] > whole(name, pages)[0]["count"]


def test_who_said_what_pages_count_records_through_the_speakers_in_order(
    api: Api, story: dict[str, Any]
) -> None:
    path = f"/topics/{story['topic']}/who-said-what"
    at = {"as_of_position": api.position}
    full = api.read(path, {**at, "limit": 500}).json()
    counts = [s["count"] for s in full["speakers"]]
    assert counts == sorted(counts, reverse=True) and sum(counts) >= 8
    for limit in range(1, sum(counts) + 1):
        pages, _, _ = walk(api, path, at, limit, lambda: None)
        # Each page holds `limit` records (the last, what is left), and the pages
        # together are the whole answer.
        held = [sum(len(s["records"]) for s in p["speakers"]) for p in pages]
        assert held[:-1] == [limit] * (len(held) - 1) and 0 < held[-1] <= limit
        assert whole("who-said-what", pages) == full["speakers"], limit
        # A speaker listed on two pages is told whole on both: its count, first and last.
        for page in pages:
            for s in page["speakers"]:
                told = next(f for f in full["speakers"] if f["actor"] == s["actor"])
                assert {**s, "records": [], "offset": 0} == {**told, "records": []}


def test_every_list_refuses_a_limit_out_of_range_and_a_cursor_it_did_not_give(
    api: Api, story: dict[str, Any]
) -> None:
    paths = {name: path for name, (path, _) in lists(story).items()}
    cursors = {}
    for name, path in paths.items():
        for wrong in (0, 501, -1):
            assert_problem(api.read(path, {"limit": wrong}), 422, "limit")
        assert_problem(api.read(path, {"limit": "ten"}), 400, "limit")
        for bad in ("nonsense!", "x" * 300, encode_cursor({"a": 1}), encode_cursor([5])):
            assert_problem(api.read(path, {"cursor": bad}), 400, "cursor")
        for shape in ([-1, 2], [2**62, 2], [5, None], [True, 2], ["5", 2]):
            assert_problem(api.read(path, {"cursor": encode_cursor(shape)}), 400, "cursor")
        first = api.read(path, {"limit": 1})
        assert first.status_code == 200, first.text
        cursors[name] = first.json()["next_cursor"]
        assert cursors[name] is not None, name
    for name, path in paths.items():
        # A cursor made by hand, past the log's head, is not one this service gave...
        forged = encode_cursor([api.position + 1000, decode_cursor(cursors[name])[1]])
        assert_problem(api.read(path, {"cursor": forged}), 400, "cursor")
        # ...nor is a cursor of another list...
        for cursor in cursors.values():
            if decode_cursor(cursor)[1] != decode_cursor(cursors[name])[1]:
                assert_problem(api.read(path, {"cursor": cursor}), 400, "cursor")
        # ...and a walk has one point: a cursor with another as_of is a 422.
        at = int(decode_cursor(cursors[name])[0])
        same = api.read(path, {"cursor": cursors[name], "as_of_position": at})
        assert same.status_code == 200, same.text
        other = api.read(path, {"cursor": cursors[name], "as_of_position": at - 1})
        assert_problem(other, 422, "cursor")


def test_a_page_is_fifty_entries_unless_asked(api: Api, story: dict[str, Any]) -> None:
    topic = story["topic"]
    for n in range(50):
        said(api, story["speakers"][2], topic, 1 + n % 28)
    for path, key in (("/timeline", "items"), (f"/topics/{topic}/who-said-what", "speakers")):
        page = api.read(path, {"topic": topic} if path == "/timeline" else {}).json()
        held = page[key] if key == "items" else [r for s in page[key] for r in s["records"]]
        assert len(held) == 50 and page["next_cursor"] is not None


def test_a_walk_of_changes_keeps_the_end_of_its_first_page(api: Api, story: dict[str, Any]) -> None:
    params = {"topic": story["topic"]}
    size = max(
        1, len(api.client.get("/changes", params={**params, "limit": 500}).json()["items"]) // 3
    )
    # Read to now, while records of the topic are written between the pages...
    pages, seen, _ = walk(api, "/changes", params, size, writer(api, story), waits=False)
    # ...every page keeps the end of the first's span, and says so.
    ends = {page["to_position"] for page in pages}
    assert len(pages) >= 3 and len(ends) == 1 and seen == {str(end) for end in ends}
    end = ends.pop()
    assert end < api.position
    # The walk is the span's changes in one answer, each once.
    query = {**params, "to_position": end, "limit": 500}
    expected = api.client.get("/changes", params=query).json()["items"]
    assert [c for page in pages for c in page["items"]] == expected
    # A cursor names its end: given with another to_position, it is a 422.
    cursor = pages[0]["next_cursor"]
    same = {**params, "cursor": cursor, "to_position": end, "limit": size}
    assert api.client.get("/changes", params=same).json() == pages[1]
    other = {**same, "to_position": end - 1}
    assert_problem(api.client.get("/changes", params=other), 422, "cursor")


def test_a_history_as_of_a_point_lists_the_events_by_then(api: Api, story: dict[str, Any]) -> None:
    path = f"/statements/{story['corrected']}/history"
    events = api.read(path, {"limit": 500}).json()["items"]
    assert len(events) >= 4
    # As of its second event, a record's history is its first two...
    second = events[1]["position"]
    then = api.read(path, {"as_of_position": second})
    assert then.json()["items"] == events[:2]
    assert then.headers["x-timeline-position"] == str(second)
    # ...and before its first, there was no such record.
    before = api.read(path, {"as_of_position": events[0]["position"] - 1})
    assert_problem(before, 404, "id")


def test_a_walk_as_of_an_instant_no_event_has_passed_keeps_its_first_position(
    api: Api, story: dict[str, Any]
) -> None:
    # An instant to come maps to a later position with each write; the walk keeps the
    # position of its first page, as a walk read now does.
    params = {"topic": story["topic"], "as_of": "2999-01-01T00:00:00Z"}
    size = limit(all_at_once(api, "timeline", "/timeline", {"topic": story["topic"]}, api.position))
    pages, seen, _ = walk(api, "/timeline", params, size, writer(api, story))
    assert len(pages) >= 3 and len(seen) == 1
    at = int(seen.pop())
    assert whole("timeline", pages) == all_at_once(
        api, "timeline", "/timeline", {"topic": story["topic"]}, at
    )
