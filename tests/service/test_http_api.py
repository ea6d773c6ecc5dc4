"""The HTTP contract (README, "The API in brief"), endpoint by endpoint, on every store.

Each test tells one story through the API; reads after writes pass `min_position`, so
no test sleeps. Actors and topics come from the seed (or a backfill), so a failure of
one write endpoint does not hide the behaviour of the others.
"""

from __future__ import annotations

import json
import re
import time
import uuid
import warnings
from typing import Any

import httpx
import psycopg
import pytest
from litestar.testing import TestClient
from psycopg import sql

from service.http.app import build_services, create_app
from service.settings import Settings
from service.store.database import parse_url
from tests.projections.workers_support import wait_until
from tests.service.conftest import (
    BBC,
    KEY_NAMES,
    NDJSON,
    Api,
    ApiFactory,
    announcement,
    occurrence,
    statement,
    unique,
)

PROBLEM = "application/problem+json"
PLURAL = {"statement": "statements", "announcement": "announcements", "occurrence": "occurrences"}
BODIES = {"statement": statement, "announcement": announcement, "occurrence": occurrence}
WRITTEN_KEYS = {"id", "version", "position", "recorded_at", "duplicate"}
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> None:
    """An RFC 9457 answer with the given status, naming `field` when one is given."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    if field is not None:
        fields = [e["field"] for e in body["errors"]]
        assert any(f == field or f.startswith((f"{field}.", f"{field}[")) for f in fields), (
            field,
            body,
        )
        assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])


def assert_written(response: httpx.Response, status: int, *, duplicate: bool) -> dict[str, Any]:
    """A write's answer: {id, version, position, recorded_at, duplicate} and its ETag."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == WRITTEN_KEYS
    assert body["duplicate"] is duplicate
    assert ISO_UTC.match(body["recorded_at"]), body
    assert response.headers["etag"] == f'"{body["version"]}"'
    assert int(response.headers["x-timeline-position"]) == body["position"]
    return body


def fresh(kind: str, **overrides: Any) -> dict[str, Any]:
    """A valid body of a kind that no other test writes (its derived key is new)."""
    text = {"quote" if kind == "statement" else "summary": unique(f"a {kind}")}
    if kind == "occurrence":
        text["title"] = unique("an occurrence")
    return BODIES[kind](**{**text, **overrides})


def within(item: dict[str, Any], day: str) -> bool:
    """Whether an item's occurred time overlaps a day (a year or month may)."""
    start = str(item["occurred_at"])
    if item["occurred_precision"] in ("year", "month"):
        return start[:7] <= day[:7]
    return start.startswith(day)


def create(api: Api, kind: str, **overrides: Any) -> dict[str, Any]:
    """Record a new record of a kind: 201, version 1."""
    created = api.post(f"/{PLURAL[kind]}", fresh(kind, **overrides))
    return assert_written(created, 201, duplicate=False)


def item_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_the_app_is_built_without_deprecation_warnings() -> None:
    # At 34a37ec every POST handler declared `body: bytes` (LitestarDeprecationWarning).
    services = build_services(Settings(database_url="memory://"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            create_app(services.settings, run_projections=False, built=services)
    finally:
        services.models.close()
        services.timeline.close()


def test_shutting_the_app_down_releases_its_postgres_connections(
    postgres_database: str,
) -> None:
    # At 34a37ec the read-model pool and the LISTEN thread outlived the app (about five
    # sessions per app): a database of its own shows what an app leaves behind.
    name = f"{postgres_database.rsplit('/', 1)[1]}_leak"
    admin = parse_url(postgres_database).conninfo()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        settings = Settings(database_url=f"{postgres_database.rsplit('/', 1)[0]}/{name}")
        services = build_services(settings)
        with TestClient(create_app(settings, built=services)) as client:
            assert client.get("/timeline").status_code == 200
        with psycopg.connect(admin, autocommit=True) as conn:

            def left() -> object:
                return conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
                ).fetchone()

            # PostgreSQL ends a closed connection's session on its own time.
            wait_until("no session is left on the database", lambda: left() == (0,), seen=left)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# Writes -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(PLURAL))
def test_a_record_is_created_once_a_repeat_is_a_duplicate_and_other_content_conflicts(
    api: Api, kind: str
) -> None:
    # The first write creates version 1 at a new position, under a key derived from it.
    body = fresh(kind)
    first = assert_written(api.post(f"/{PLURAL[kind]}", body), 201, duplicate=False)
    assert first["version"] == 1 and first["position"] > 0
    uuid.UUID(first["id"])
    # The same content again is answered 200 with the same id, and stores nothing.
    head = api.services.timeline.head_position()
    again = assert_written(api.post(f"/{PLURAL[kind]}", body), 200, duplicate=True)
    assert (again["id"], again["version"]) == (first["id"], 1)
    assert api.services.timeline.head_position() == head
    # A client key: created once, then the same key with other content is a 409.
    key = unique(f"{kind}-client-key").replace(" ", "-")
    keyed = create(api, kind, key=key)
    assert keyed["id"] != first["id"]
    assert_problem(api.post(f"/{PLURAL[kind]}", fresh(kind, key=key)), 409, "key")
    assert api.services.timeline.head_position() == keyed["position"]


def test_an_actor_is_registered_once_and_a_repeat_is_a_duplicate(
    api_factory: ApiFactory, durable_store: str
) -> None:
    api = api_factory(durable_store, seed=False)
    body = {"id": "mark-rutte", "name": "Mark Rutte", "kind": "person", "aliases": ["Rutte"]}
    # Registered: 201, its slug as id.
    first = assert_written(api.post("/actors", body), 201, duplicate=False)
    assert first["id"] == "mark-rutte"
    # Again: 200 duplicate; other content under the same slug: 409 naming `id`.
    assert_written(api.post("/actors", body), 200, duplicate=True)
    assert_problem(api.post("/actors", {**body, "name": "Someone Else"}), 409, "id")
    profile = api.read("/actors/mark-rutte")
    assert profile.status_code == 200 and profile.json()["aliases"] == ["Rutte"]


def test_a_topic_is_defined_once_and_a_repeat_is_a_duplicate(
    api_factory: ApiFactory, durable_store: str
) -> None:
    api = api_factory(durable_store, seed=False)
    body = {"id": "negotiations", "label": "Negotiations"}
    # Defined: 201; again: 200 duplicate; other content: 409 naming `id`.
    first = assert_written(api.post("/topics", body), 201, duplicate=False)
    assert first["id"] == "negotiations"
    assert_written(api.post("/topics", body), 200, duplicate=True)
    assert_problem(api.post("/topics", {**body, "label": "Talks"}), 409, "id")
    # A child under an unknown parent is a rule violation naming `parent`.
    assert_problem(api.post("/topics", {"id": "x", "label": "X", "parent": "nope"}), 422, "parent")


@pytest.mark.parametrize("kind", list(PLURAL))
def test_corrections_sources_tags_and_retraction_each_answer_the_new_version(
    api: Api, kind: str
) -> None:
    rec = create(api, kind)
    base = f"/{PLURAL[kind]}/{rec['id']}"
    # A correction names the fields it changes and why: version 2.
    fixed = api.post(f"{base}/corrections", {"changes": {"location": "Brussels"}, "reason": "r"})
    assert assert_written(fixed, 200, duplicate=False)["version"] == 2
    # A new source: version 3; the same source again changes nothing.
    source = {"source": {"publisher": "Reuters", "url": "https://www.reuters.com/x"}}
    assert assert_written(api.post(f"{base}/sources", source), 200, duplicate=False)["version"] == 3
    assert assert_written(api.post(f"{base}/sources", source), 200, duplicate=True)["version"] == 3
    # Tagging and untagging: one event each.
    tagged = api.post(f"{base}/tags", {"add": ["sanctions"]})
    assert assert_written(tagged, 200, duplicate=False)["version"] == 4
    untagged = api.post(f"{base}/tags", {"remove": ["sanctions"]})
    assert assert_written(untagged, 200, duplicate=False)["version"] == 5
    assert_problem(api.post(f"{base}/tags", {}), 422, "add")
    # The read model shows the corrected, re-sourced record.
    shown = api.read(base)
    assert shown.status_code == 200, shown.text
    assert shown.json()["location"] == "Brussels" and shown.json()["version"] == 5
    assert [s["url"] for s in shown.json()["sources"]] == [BBC["url"], "https://www.reuters.com/x"]
    assert shown.json()["topics"] == fresh(kind).get("topics", [])
    # A retraction: version 6; the record is gone from the current read models.
    gone = api.post(f"{base}/retraction", {"reason": "misattributed"})
    assert assert_written(gone, 200, duplicate=False)["version"] == 6
    assert_problem(api.read(base), 410, "id")
    assert rec["id"] not in item_ids(api.read("/timeline", {"kind": kind, "limit": 500}))
    # A retracted record takes no more corrections.
    assert api.post(
        f"{base}/corrections", {"changes": {"location": "X"}, "reason": "r"}
    ).status_code in (409, 422)


@pytest.mark.parametrize("kind", list(PLURAL))
def test_a_correction_replaces_the_sources(api: Api, kind: str) -> None:
    rec = create(api, kind)
    base = f"/{PLURAL[kind]}/{rec['id']}"
    sources = [{"publisher": "Reuters", "url": "https://www.reuters.com/y", "title": "Y"}, BBC]
    fixed = api.post(f"{base}/corrections", {"changes": {"sources": sources}, "reason": "r"})
    assert assert_written(fixed, 200, duplicate=False)["version"] == 2
    assert api.read(base).json()["sources"] == sources


def test_an_actor_takes_aliases_and_roles_and_a_topic_is_relabelled_and_moved(api: Api) -> None:
    # An alias: a new actor version; the same alias again is a duplicate.
    alias = api.post("/actors/mark-rutte/aliases", {"alias": "Secretary General Rutte"})
    v = assert_written(alias, 200, duplicate=False)["version"]
    again = api.post("/actors/mark-rutte/aliases", {"alias": "Secretary General Rutte"})
    assert assert_written(again, 200, duplicate=True)["version"] == v
    # A role, then its end.
    role = {"title": "Prime Minister", "organization": "nato", "since": "2010-10-14"}
    assert (
        assert_written(api.post("/actors/mark-rutte/roles", role), 200, duplicate=False)["version"]
        == v + 1
    )
    end = api.post(
        "/actors/mark-rutte/roles/end", {"title": "Prime Minister", "until": "2024-07-02"}
    )
    assert assert_written(end, 200, duplicate=False)["version"] == v + 2
    profile = api.read("/actors/mark-rutte")
    assert profile.status_code == 200, profile.text
    assert "Secretary General Rutte" in profile.json()["aliases"]
    pm = [r for r in profile.json()["roles"] if r["title"] == "Prime Minister"]
    assert len(pm) == 1 and pm[0]["until"] == "2024-07-02", profile.json()["roles"]
    assert profile.json()["version"] == v + 2
    # Ending a role the actor does not hold is a rule violation; an unknown actor a 404.
    assert_problem(
        api.post("/actors/mark-rutte/roles/end", {"title": "Pope", "until": "2025"}), 422, "title"
    )
    assert_problem(api.post("/actors/nobody-here/aliases", {"alias": "X"}), 404, "id")
    # A topic: relabelled, then moved to the top.
    changed = api.post("/topics/us-ukraine-relations/changes", {"label": "US and Ukraine"})
    assert_written(changed, 200, duplicate=False)
    moved = api.post("/topics/us-ukraine-relations/changes", {"parent": None})
    assert_written(moved, 200, duplicate=False)
    topic = api.read("/topics/us-ukraine-relations")
    assert topic.status_code == 200, topic.text
    assert (topic.json()["label"], topic.json()["parent"]) == ("US and Ukraine", None)
    # A topic cannot move below itself (a conflict with the tree as it stands); an empty
    # change says what it needs.
    assert_problem(api.post("/topics/negotiations/changes", {"parent": "territory"}), 409, "parent")
    assert_problem(api.post("/topics/negotiations/changes", {}), 422, "label")


def test_if_match_makes_a_write_conditional_on_one_version_compared_strongly(api: Api) -> None:
    rec = create(api, "statement")
    base = f"/statements/{rec['id']}"
    change = {"changes": {"location": "Brussels"}, "reason": "place confirmed"}
    # The version the client saw: the write goes through.
    ok = api.post(f"{base}/corrections", change, headers={"If-Match": '"1"'})
    assert assert_written(ok, 200, duplicate=False)["version"] == 2
    # A version overtaken by another write: 409, nothing stored, and the current
    # ETag to retry with.
    head = api.services.timeline.head_position()
    stale = api.post(f"{base}/corrections", change, headers={"If-Match": '"1"'})
    assert_problem(stale, 409, "if-match")
    assert stale.headers["etag"] == '"2"'
    assert api.services.timeline.head_position() == head
    # A version not reached yet is a 412, on actors too; a malformed If-Match is a 400.
    actor_version = api.read("/actors/donald-trump").json()["version"]
    stale_alias = api.post(
        "/actors/donald-trump/aliases",
        {"alias": "The 47th"},
        headers={"If-Match": f'"{actor_version + 5}"'},
    )
    assert_problem(stale_alias, 412)
    assert_problem(
        api.post(f"{base}/sources", {"source": BBC}, headers={"If-Match": "soon"}), 400, "if-match"
    )
    # `*` passes.
    other = {"source": {"publisher": "AP", "url": "https://apnews.com/x"}}
    anything = api.post(f"{base}/sources", other, headers={"If-Match": "*"})
    assert assert_written(anything, 200, duplicate=False)["version"] == 3
    head = api.services.timeline.head_position()
    # If-Match compares strongly (RFC 9110): a weak tag, even of the current version,
    # never matches: 412, nothing stored.
    weak = api.post(f"{base}/retraction", {"reason": "r"}, headers={"If-Match": 'W/"3"'})
    assert_problem(weak, 412, "if-match")
    # A list of versions is refused: a write is conditional on one.
    for listed in ('"3", "2"', '"3",W/"3"', '"2" , "3"'):
        both = api.post(f"{base}/retraction", {"reason": "r"}, headers={"If-Match": listed})
        assert_problem(both, 400, "if-match")
    assert api.services.timeline.head_position() == head
    # The version itself passes.
    strong = api.post(f"{base}/retraction", {"reason": "r"}, headers={"If-Match": '"3"'})
    assert assert_written(strong, 200, duplicate=False)["version"] == 4


# Reads of one record ----------------------------------------------------------------


def test_a_record_read_has_an_etag_answers_304_404_and_410_and_keeps_its_history(api: Api) -> None:
    rec = create(api, "statement")
    base = f"/statements/{rec['id']}"
    # The item: the record's fields, actors expanded, occurred time normalised.
    got = api.read(base)
    assert got.status_code == 200, got.text
    item = got.json()
    assert (item["kind"], item["id"], item["version"]) == ("statement", rec["id"], 1)
    assert item["speaker"] == {"id": "mark-rutte", "name": "Mark Rutte"}
    assert item["mentions"] == [{"id": "vladimir-putin", "name": "Vladimir Putin"}]
    assert (item["occurred_at"], item["occurred_precision"]) == (
        "2025-02-13T00:00:00.000000Z",
        "day",
    )
    assert item["recorded_at"] == rec["recorded_at"] and item["position"] == rec["position"]
    etag = got.headers["etag"]
    assert etag.startswith('"1.') and etag.endswith('"'), etag
    assert int(got.headers["x-timeline-position"]) >= rec["position"]
    # The same ETag back: 304 with no body; another one: the full answer.
    same = api.read(base, headers={"If-None-Match": etag})
    assert (same.status_code, same.content, same.headers["etag"]) == (304, b"", etag)
    assert api.read(base, headers={"If-None-Match": '"7"'}).status_code == 200
    # The wrong kind and an unknown id are 404s.
    assert_problem(api.read(f"/announcements/{rec['id']}"), 404, "id")
    assert_problem(api.read(f"/statements/{uuid.uuid4()}"), 404, "id")
    assert_problem(api.client.get(f"/statements/{uuid.uuid4()}/history"), 404, "id")
    # Corrected then retracted: 410 Gone, while the history keeps every event in order.
    api.post(f"{base}/corrections", {"changes": {"location": "Brussels"}, "reason": "r"})
    api.post(f"{base}/retraction", {"reason": "misattributed"})
    assert_problem(api.read(base), 410, "id")
    history = api.client.get(f"{base}/history")
    assert history.status_code == 200, history.text
    events = history.json()["items"]
    # (The feed names the class that defines each event: Record.Corrected, say.)
    assert [e["type"].rsplit(".", 1)[1] for e in events] == ["Recorded", "Corrected", "Retracted"]
    assert [e["aggregate_version"] for e in events] == [1, 2, 3]
    positions = [e["position"] for e in events]
    assert positions[0] == rec["position"] and positions == sorted(positions)
    assert history.json()["next_cursor"] is None
    assert events[1]["data"]["changes"] == {"location": "Brussels"}
    assert all(e["aggregate_id"] == rec["id"] for e in events)


# The timeline and the other read models --------------------------------------------


def test_the_timeline_filters_by_topic_with_descendants_actor_kind_and_window(api: Api) -> None:
    everything = api.read("/timeline", {"limit": 500}).json()["items"]
    assert len(everything) >= 30
    starts = [i["occurred_at"] for i in everything]
    assert starts == sorted(starts)
    # A topic includes its descendants: crimea is under territory, under negotiations.
    negotiations = api.read("/timeline", {"topic": "negotiations", "limit": 500}).json()["items"]
    assert any("crimea" in i["topics"] for i in negotiations)
    crimea = api.read("/timeline", {"topic": "crimea", "limit": 500}).json()["items"]
    assert {i["id"] for i in crimea} <= {i["id"] for i in negotiations}
    # An actor: as speaker, among `by`, participant or mention.
    trump = api.read("/timeline", {"actor": "donald-trump", "limit": 500}).json()["items"]
    assert trump
    for i in trump:
        actors = [
            i.get("speaker") or {},
            *i.get("by", []),
            *i.get("participants", []),
            *i.get("mentions", []),
        ]
        assert "donald-trump" in {a.get("id") for a in actors}, i
    # A kind.
    occurrences = api.read("/timeline", {"kind": "occurrence", "limit": 500}).json()["items"]
    assert occurrences and {i["kind"] for i in occurrences} == {"occurrence"}
    # A window on occurred time, any precision: 2014 only, then February 2025.
    in_2014 = api.read("/timeline", {"since": "2014", "until": "2014", "limit": 500}).json()[
        "items"
    ]
    assert in_2014 and all(i["occurred_at"].startswith("2014") for i in in_2014)
    feb = api.read("/timeline", {"since": "2025-02-13", "until": "2025-02-13", "limit": 500})
    assert feb.json()["items"] and all(within(i, "2025-02-13") for i in feb.json()["items"])
    # Filters combine.
    both = api.read("/timeline", {"kind": "statement", "actor": "mark-rutte", "topic": "territory"})
    assert all(i["kind"] == "statement" for i in both.json()["items"])
    # Bad filters: an unknown kind, a bad slug, a naive instant, too large a limit.
    assert_problem(api.read("/timeline", {"kind": "rumour"}), 400, "kind")
    assert_problem(api.read("/timeline", {"topic": "Not A Slug"}), 400, "topic")
    assert_problem(api.read("/timeline", {"since": "2025-02-12T15:30:00"}), 400, "since")
    assert_problem(api.read("/timeline", {"limit": 501}), 422, "limit")
    assert_problem(api.read("/timeline", {"cursor": "bm90LWEtY3Vyc29y"}), 400, "cursor")


def test_paging_a_long_timeline_seven_at_a_time_loses_and_repeats_nothing(api: Api) -> None:
    # 120 statements on few distinct start instants (year, month, day and instant
    # precisions that start at the same moment), so the cursor must break many ties.
    batch = uuid.uuid4().hex
    whens = [
        "2025",
        "2025-01",
        "2025-01-01",
        "2025-01-01T00:00:00Z",
        "2025-02-13",
        "2024-12-31T23:00:00-01:00",
    ]
    lines = [
        {
            "type": "statement",
            "key": f"paging-{n:03d}-{batch}",
            "speaker": "mark-rutte" if n % 2 else "donald-trump",
            "summary": f"statement number {n}",
            "occurred_at": whens[n % len(whens)],
            "channel": "interview",
            "topics": ["negotiations"],
            "sources": [BBC],
        }
        for n in range(120)
    ]
    report = api.backfill(lines)
    assert report["accepted"] == 120
    for params in ({}, {"actor": "mark-rutte"}, {"topic": "negotiations", "since": "2025"}):
        # The whole answer at once, in occurred order; then page by page with limit=7.
        items = api.read("/timeline", {**params, "limit": 500}).json()["items"]
        starts = [i["occurred_at"] for i in items]
        assert starts == sorted(starts) and len(items) < 500
        whole = [i["id"] for i in items]
        paged: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            query = {**params, "limit": 7, **({"cursor": cursor} if cursor else {})}
            page = api.read("/timeline", query)
            ids = item_ids(page)
            assert len(ids) <= 7
            paged += ids
            pages += 1
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
            assert len(ids) == 7
        assert paged == whole, params
        assert len(set(paged)) == len(paged)
        assert pages == -(-len(whole) // 7)
    assert len(item_ids(api.read("/timeline", {"limit": 500}))) >= 150


def test_who_said_what_lists_each_speaker_with_their_records_in_order(api: Api) -> None:
    got = api.read("/topics/negotiations/who-said-what", {"limit": 500})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["topic"]["id"] == "negotiations" and body["topic"]["label"]
    assert body["next_cursor"] is None
    speakers = {s["actor"]["id"]: s for s in body["speakers"]}
    for who in ("donald-trump", "volodymyr-zelensky", "pete-hegseth", "mark-rutte"):
        assert who in speakers, who
    trump = speakers["donald-trump"]
    assert trump["actor"] == {"id": "donald-trump", "name": "Donald Trump", "kind": "person"}
    dates = [r["occurred_at"] for r in trump["records"]]
    assert trump["count"] == len(dates) and dates == sorted(dates)
    assert (trump["first_at"], trump["last_at"]) == (dates[0], dates[-1])
    # A window narrows it; an unknown topic is a 404, a bad slug a 400.
    window = api.read(
        "/topics/negotiations/who-said-what",
        {"since": "2025-02-13", "until": "2025-02-13", "limit": 500},
    )
    assert window.status_code == 200
    for s in window.json()["speakers"]:
        assert all(within(r, "2025-02-13") for r in s["records"])
    assert_problem(api.read("/topics/no-such-topic/who-said-what"), 404, "id")
    assert_problem(api.read("/topics/Bad Slug/who-said-what"), 400, "id")


def test_actors_and_topics_are_listed_paged_and_profiled(api: Api) -> None:
    # Actors, five at a time, in id order, none lost or repeated.
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = api.read("/actors", {"limit": 5, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        ids += [a["id"] for a in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert ids == sorted(set(ids)) and len(ids) == 14
    # A profile: roles, aliases, counts by topic, latest records.
    trump = api.read("/actors/donald-trump")
    assert trump.status_code == 200, trump.text
    profile = trump.json()
    assert profile["name"] == "Donald Trump" and "Trump" in profile["aliases"]
    assert profile["roles"][0]["title"] == "President"
    assert profile["records"] >= 2 and profile["by_topic"] and profile["latest"]
    assert_problem(api.read("/actors/nobody-here"), 404, "id")
    assert_problem(api.read("/actors/NOT_A_SLUG"), 400, "id")
    assert_problem(api.read("/actors", {"limit": 0}), 422, "limit")
    # The topic tree, depth first, with counts; one topic; an unknown one.
    tree = api.read("/topics").json()["items"]
    by_id = {t["id"]: t for t in tree}
    assert by_id["crimea"]["parent"] == "territory" and by_id["territory"]["depth"] == 2
    assert by_id["negotiations"]["total"] >= by_id["territory"]["total"] >= by_id["crimea"]["count"]
    assert "territory" in by_id["negotiations"]["children"]
    one = api.read("/topics/crimea")
    assert one.status_code == 200 and one.json() == by_id["crimea"]
    assert_problem(api.read("/topics/no-such-topic"), 404, "id")


def test_the_event_feed_pages_by_position(api: Api) -> None:
    head = api.services.timeline.head_position()
    first = api.client.get("/events", params={"after": 0, "limit": 10})
    assert first.status_code == 200, first.text
    events = first.json()["events"]
    assert [e["position"] for e in events] == list(range(1, 11))
    assert first.json()["next_after"] == 10
    assert set(events[0]) == {
        "position",
        "type",
        "aggregate_id",
        "aggregate_version",
        "recorded_at",
        "data",
    }
    assert events[0]["type"] == "Actor.Registered" and events[0]["data"]["writer"] == "seed"
    # Following next_after reaches the head, then an empty page that stays put.
    seen = [e["position"] for e in events]
    after = first.json()["next_after"]
    while True:
        page = api.client.get("/events", params={"after": after, "limit": 25}).json()
        if not page["events"]:
            assert page["next_after"] == after
            break
        seen += [e["position"] for e in page["events"]]
        after = page["next_after"]
    # Every stored event once, in order. (Positions may skip a number: on PostgreSQL a
    # write that fails, e.g. a repeat, uses up the ids it was given.)
    stored = api.services.timeline.recorder.select_notifications(start=1, limit=100_000)
    assert seen == [n.id for n in stored] and seen[-1] == head
    assert int(first.headers["x-timeline-position"]) == head
    assert_problem(api.client.get("/events", params={"after": -1}), 422, "after")
    assert_problem(api.client.get("/events", params={"limit": 0}), 422, "limit")
    assert_problem(api.client.get("/events", params={"limit": 501}), 422, "limit")


def test_projections_health_readiness_and_metrics(api: Api) -> None:
    create(api, "statement")
    api.read("/timeline")
    # Each projection: its position, the head, the lag, and the read models it keeps (one
    # projection keeps all four).
    projections = api.client.get("/projections")
    assert projections.status_code == 200, projections.text
    items = {p["name"]: p for p in projections.json()["items"]}
    assert set(items) == {"timeline"}
    assert items["timeline"]["read_models"] == ["timeline", "who-said-what", "actors", "topics"]
    head = api.services.timeline.head_position()
    for p in items.values():
        assert (
            p["head"] == head and p["lag"] == p["head"] - p["position"] and p["state"] == "running"
        )
    assert items["timeline"]["position"] == head
    # Up (the process alone: no position), and ready at the position every read model
    # has reached.
    health = api.client.get("/health")
    assert (health.status_code, health.json()["status"]) == (200, "ok")
    assert "x-timeline-position" not in health.headers
    ready = api.client.get("/ready")
    assert (ready.status_code, ready.json()["status"]) == (200, "ok")
    assert ready.json()["checks"]["store"] == "ok"
    assert ready.headers["x-timeline-position"] == str(head)
    schema = api.client.get("/schema/openapi.json").json()["paths"]
    assert "headers" not in schema["/health"]["get"]["responses"]["200"]
    assert "X-Timeline-Position" in schema["/ready"]["get"]["responses"]["200"]["headers"]
    # Prometheus text with requests, projection positions and appends.
    metrics = api.client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert re.search(r'^timeline_http_requests_total\{.*route="/timeline".*\} \d', text, re.M)
    assert re.search(r'^timeline_projection_position\{projection="timeline"\} \d', text, re.M)
    appends = re.search(r'^timeline_appends_total\{kind="statement"\} (\d+)\.0$', text, re.M)
    assert appends and int(appends[1]) >= 1


# Consistency and time travel ---------------------------------------------------------


def test_a_read_waits_for_min_position_then_503s_and_a_position_past_the_head_is_422(
    api_factory: ApiFactory, any_store: str
) -> None:
    api = api_factory(any_store, wait_timeout=0.3)
    head = api.services.timeline.head_position()
    assert api.client.get("/timeline", params={"min_position": head}).status_code == 200
    # A position the log does not hold yet is refused at once, naming the parameter.
    for name in ("min_position", "as_of_position"):
        started = time.monotonic()
        beyond = api.client.get("/timeline", params={name: head + 1000})
        assert_problem(beyond, 422, name)
        assert f"last position is {head}" in beyond.json()["detail"]
        assert time.monotonic() - started < 0.25
    # A position the log holds but the read models have not reached: a bounded wait, then
    # 503 with Retry-After.
    api.services.models.stop()
    written = api.post("/statements", statement(key=unique("unprojected")))
    assert written.status_code == 201, written.text
    for path in ("/timeline", "/topics/negotiations/who-said-what", "/actors", "/topics"):
        started = time.monotonic()
        late = api.client.get(path, params={"min_position": written.json()["position"]})
        waited = time.monotonic() - started
        assert_problem(late, 503, "min_position")
        assert late.headers["retry-after"].isdigit()
        assert 0.25 <= waited < 5, waited
    assert_problem(api.client.get("/timeline", params={"min_position": -1}), 422, "min_position")


def test_as_of_answers_exactly_as_the_service_answered_before_a_correction(api: Api) -> None:
    rec = create(api, "statement", key=unique("rutte-square-mile"))
    base = f"/statements/{rec['id']}"
    queries: list[tuple[str, dict[str, Any]]] = [
        ("/timeline", {"topic": "territory", "limit": 500}),
        ("/timeline", {"actor": "mark-rutte"}),
        ("/topics/territory/who-said-what", {}),
        (base, {}),
        ("/actors/mark-rutte", {}),
        ("/topics", {}),
    ]
    # The answers as they stand after the first write...
    before = {(path, json.dumps(q)): api.read(path, q).content for path, q in queries}
    # ...then a correction that moves the record in occurred time, and a retraction.
    api.post(
        f"{base}/corrections",
        {"changes": {"occurred_at": "2025-02-12", "location": "Brussels"}, "reason": "r"},
    )
    api.post(f"{base}/retraction", {"reason": "r"})
    assert api.read(base).status_code == 410
    # as_of_position and as_of (the write's recorded time) give the same bytes back.
    for path, q in queries:
        earlier = before[(path, json.dumps(q))]
        by_position = api.read(path, {**q, "as_of_position": rec["position"]})
        assert by_position.status_code == 200, (path, by_position.text)
        assert by_position.content == earlier, path
        assert by_position.headers["x-timeline-position"] == str(rec["position"])
        by_time = api.read(path, {**q, "as_of": rec["recorded_at"]})
        assert by_time.content == earlier, path
    # The current answer moved on; as_of before the record existed does not know it.
    assert (
        api.read("/timeline", {"topic": "territory", "limit": 500}).content
        != before[("/timeline", json.dumps({"topic": "territory", "limit": 500}))]
    )
    assert_problem(api.read(base, {"as_of_position": rec["position"] - 1}), 404, "id")
    # Both at once, or an instant without an offset, are refused.
    both = {"as_of": rec["recorded_at"], "as_of_position": rec["position"]}
    assert_problem(api.read("/timeline", both), 400, "as_of")
    assert_problem(api.read("/timeline", {"as_of": "2025-02-20T00:00:00"}), 400, "as_of")
    assert_problem(api.read("/timeline", {"as_of": "2025-02-20"}), 400, "as_of")


def test_every_read_says_which_position_it_reflects(api: Api) -> None:
    rec = create(api, "occurrence")
    reads = [
        "/timeline",
        "/topics/negotiations/who-said-what",
        f"/occurrences/{rec['id']}",
        f"/occurrences/{rec['id']}/history",
        "/actors",
        "/actors/donald-trump",
        "/topics",
        "/topics/negotiations",
        "/events",
        "/projections",
    ]
    for path in reads:
        got = api.read(path)
        assert got.status_code == 200, (path, got.text)
        assert int(got.headers["x-timeline-position"]) >= rec["position"], path
    # So does an answer as of a position.
    old = api.read("/timeline", {"as_of_position": 3})
    assert old.headers["x-timeline-position"] == "3"


# Refusals -----------------------------------------------------------------------------


def test_bodies_that_are_not_json_too_large_or_malformed_are_refused(api: Api) -> None:
    head = api.services.timeline.head_position()
    # 415: a body of another media type.
    text = api.post("/statements", content=b"Trump said things", content_type="text/plain")
    assert_problem(text, 415, "content-type")
    # 413: over 1 MB.
    huge = json.dumps(statement(quote="x" * (1024 * 1024))).encode()
    assert_problem(api.post("/statements", content=huge), 413)
    # 400: not JSON at all, or truncated.
    assert_problem(api.post("/statements", content=b'{"speaker": "mark-rutte",'), 400, "body")
    assert_problem(api.post("/announcements", content=b"not json"), 400, "body")
    assert api.services.timeline.head_position() == head


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/statements", statement(speaker="nobody-known"), "speaker"),
        ("/statements", statement(quote=None), "quote"),
        ("/statements", statement(occurred_at="2025-02-12T15:30:00"), "occurred_at"),
        ("/statements", statement(occurred_at=20250212), "occurred_at"),
        ("/statements", statement(topics=["no-such-topic"]), "topics"),
        ("/statements", statement(mentions=["nobody-known"]), "mentions"),
        ("/statements", statement(channel="pigeon"), "channel"),
        ("/statements", statement(sources=[]), "sources"),
        ("/statements", statement(sources=[{"publisher": "X", "url": "not a url"}]), "sources"),
        ("/statements", statement(colour="red"), "colour"),
        ("/announcements", announcement(by=[]), "by"),
        ("/announcements", announcement(summary=""), "summary"),
        ("/occurrences", occurrence(kind="party"), "kind"),
        ("/occurrences", occurrence(ended_at="2025-02-12T10:00:00"), "ended_at"),
        ("/occurrences", occurrence(participants=["nobody-known"]), "participants"),
    ],
)
def test_a_rule_violation_is_a_422_problem_naming_the_field(
    api: Api, path: str, body: dict[str, Any], field: str
) -> None:
    head = api.services.timeline.head_position()
    assert_problem(api.post(path, body), 422, field)
    assert api.services.timeline.head_position() == head


def test_a_rule_violation_in_a_change_is_a_422_problem_naming_the_field(api: Api) -> None:
    rec = create(api, "statement")
    base = f"/statements/{rec['id']}"
    cases: list[tuple[str, dict[str, Any], str]] = [
        # (A reference names the field alone, a type error its path: speaker, changes.x.)
        (f"{base}/corrections", {"changes": {"speaker": "nobody-known"}, "reason": "r"}, "speaker"),
        (
            f"{base}/corrections",
            {"changes": {"occurred_at": 2025}, "reason": "r"},
            "changes.occurred_at",
        ),
        (f"{base}/corrections", {"changes": {"flavour": "x"}, "reason": "r"}, "changes.flavour"),
        (f"{base}/retraction", {"reason": ""}, "reason"),
        (f"{base}/sources", {"source": {"publisher": "X"}}, "source"),
        (f"{base}/tags", {"add": ["no-such-topic"]}, "topics"),
        ("/actors/mark-rutte/roles", {"title": "X", "since": "yesterday"}, "since"),
        ("/actors/mark-rutte/aliases", {"alias": ""}, "alias"),
    ]
    for path, body, field in cases:
        assert_problem(api.post(path, body), 422, field)
    assert api.services.timeline.head_position() == rec["position"]


def test_every_problem_names_its_type(sqlite_api: Api) -> None:
    api = sqlite_api
    rec = create(api, "statement")
    answers = [
        api.post("/statements", content=b"{", content_type="application/json"),
        api.read(f"/statements/{uuid.uuid4()}"),
        api.post("/statements", statement(key="k"), who="write"),
        api.post("/statements", statement(key="k", quote="other")),
        api.post(
            f"/statements/{rec['id']}/retraction", {"reason": "r"}, headers={"If-Match": '"9"'}
        ),
        api.post("/statements", content=b"x", content_type="text/plain"),
        api.post("/statements", statement(speaker="nobody-known")),
    ]
    statuses = [a.status_code for a in answers]
    assert statuses == [400, 404, 201, 409, 412, 415, 422]
    assert all("type" in a.json() for a in answers if a.status_code >= 400)


def test_moving_a_topic_under_an_unknown_parent_is_a_422_naming_parent(sqlite_api: Api) -> None:
    moved = sqlite_api.post("/topics/crimea/changes", {"parent": "no-such-topic"})
    assert_problem(moved, 422, "parent")
    assert "no-such-topic" in moved.json()["detail"]


def test_a_missing_required_field_is_named(sqlite_api: Api) -> None:
    api = sqlite_api
    rec = create(api, "statement")
    no_speaker = {k: v for k, v in statement().items() if k != "speaker"}
    assert_problem(api.post("/statements", no_speaker), 422, "speaker")
    no_reason = {"changes": {"location": "x"}}
    assert_problem(api.post(f"/statements/{rec['id']}/corrections", no_reason), 422, "reason")
    no_url = statement(sources=[{"publisher": "X"}])
    assert_problem(api.post("/statements", no_url), 422, "sources[0].url")


# The admin backfill ------------------------------------------------------------------


def backfill_lines(key: str) -> list[dict[str, Any]]:
    """A statement, its correction, and a line naming an unknown speaker."""
    return [
        {
            "type": "statement",
            "key": key,
            "speaker": "mark-rutte",
            "quote": "not another square mile",
            "occurred_at": "2025-02-13",
            "channel": "press-conference",
            "topics": ["territory"],
            "sources": [BBC],
        },
        {
            "type": "correction",
            "target": {"kind": "statement", "key": key},
            "changes": {"location": "Brussels"},
            "reason": "place confirmed",
        },
        {
            "type": "statement",
            "key": unique("ghost"),
            "speaker": "nobody-known",
            "quote": "boo",
            "occurred_at": "2025",
            "channel": "other",
            "topics": [],
            "sources": [BBC],
        },
    ]


def ndjson(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def test_an_admin_backfill_reports_accepted_and_rejected_lines(api: Api) -> None:
    key = unique("rutte-square-mile")
    lines = backfill_lines(key)
    body = ndjson(lines) + b"{not json}\n"
    sent = api.post("/admin/backfill", content=body, content_type=NDJSON, who="admin")
    assert sent.status_code == 200, sent.text
    report = sent.json()
    assert set(report) >= {"accepted", "duplicates", "rejected", "first_position", "last_position"}
    assert (report["accepted"], report["duplicates"]) == (2, 0)
    assert [(r["line"], r["key"]) for r in report["rejected"]] == [(3, lines[2]["key"]), (4, None)]
    assert all(r["error"] for r in report["rejected"])
    assert report["last_position"] == report["first_position"] + 1
    assert int(sent.headers["x-timeline-position"]) >= report["last_position"]
    # The import's events carry the admin key's name and one batch id.
    after = report["first_position"] - 1
    events = api.client.get("/events", params={"after": after, "limit": 2}).json()["events"]
    assert {e["data"]["writer"] for e in events} == {KEY_NAMES["admin"]}
    assert len({e["data"]["batch_id"] for e in events}) == 1 and events[0]["data"]["batch_id"]
    assert report.get("batch_id", events[0]["data"]["batch_id"]) == events[0]["data"]["batch_id"]
    # The read models see what was imported, corrected.
    api.position = report["last_position"]
    items = api.read("/timeline", {"actor": "mark-rutte", "limit": 500}).json()["items"]
    assert [i.get("location") for i in items if i["key"] == key] == ["Brussels"]
    # The same records again add nothing; NDJSON only; and only with an admin key.
    again = api.post("/admin/backfill", content=ndjson(lines[:1]), content_type=NDJSON, who="admin")
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 1)
    assert_problem(api.post("/admin/backfill", content=body, who="admin"), 415, "content-type")
    assert_problem(
        api.post("/admin/backfill", content=body, content_type=NDJSON), 403, "authorization"
    )


def test_loading_the_same_backfill_twice_adds_and_rejects_nothing(sqlite_api: Api) -> None:
    api = sqlite_api
    body = ndjson(backfill_lines(unique("twice"))[:2])
    first = api.post("/admin/backfill", content=body, content_type=NDJSON, who="admin").json()
    assert (first["accepted"], first["rejected"]) == (2, [])
    second = api.post("/admin/backfill", content=body, content_type=NDJSON, who="admin").json()
    assert (second["accepted"], second["duplicates"], second["rejected"]) == (0, 2, [])


def test_a_records_tag_changes_with_the_labels_it_shows_and_if_match_takes_it(api: Api) -> None:
    # The item shows its topics' labels, which the topic keeps: a relabel changes the
    # answer without a new version of the record, so its tag must change too.
    rec = create(api, "statement")
    base = f"/statements/{rec['id']}"
    before = api.read(base)
    topic = before.json()["topics"][0]
    assert api.post(f"/topics/{topic}/changes", {"label": unique("relabelled")}).is_success
    after = api.read(base)
    assert after.json()["version"] == before.json()["version"] == 1
    assert after.json()["topic_labels"] != before.json()["topic_labels"]
    assert after.headers["etag"] != before.headers["etag"]
    stale = api.read(base, headers={"If-None-Match": before.headers["etag"]})
    assert stale.status_code == 200
    # A write's If-Match takes the read's tag, or the version alone.
    tag = {"If-Match": after.headers["etag"]}
    corrected = api.post(
        f"{base}/corrections", {"changes": {"location": "Brussels"}, "reason": "r"}, headers=tag
    )
    assert corrected.status_code == 200, corrected.text
    stale_write = api.post(
        f"{base}/corrections", {"changes": {"location": "Ghent"}, "reason": "r"}, headers=tag
    )
    assert_problem(stale_write, 409, "if-match")
