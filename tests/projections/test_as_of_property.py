"""Every read model, asked `as_of_position=P`, answers as the events up to P say.

A property test writes random histories through the use cases — records given out of
occurred order, at every precision, corrections that move them in time or change who and
what they are about, retractions, sources, tags, a topic tree that changes — projects them
(in batches of random size, sometimes in between writes), then compares each read model at
several positions with `model.fold` of the stored events up to that position.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.application import Author, Timeline, Written
from domain.errors import TimelineError
from domain.when import parse_when
from projections.actors import profile
from projections.models import ReadModels
from projections.postgres import PostgresRows, make_pool
from projections.rows import RowsView
from projections.sqlite import ThreadLease
from projections.timeline import TimelineQuery
from projections.timeline import record as record_at
from projections.timeline import timeline as timeline_at
from projections.topics import topic_tree
from projections.whosaid import who_said_what
from service.readmodels import open_read_models
from service.store import Store, open_timeline
from tests.conftest import make_store
from tests.projections.model import World, fold

BY = Author(writer="property")
ACTORS = [
    ("ana", "Ana Ames", "person"),
    ("bo", "Bo Berg", "person"),
    ("cyland", "Cyland", "state"),
    ("dee-org", "Dee Organisation", "organization"),
]
SLUGS = [slug for slug, _, _ in ACTORS]
TOPICS = [  # defined first, in this order
    ("world", None),
    ("europe", "world"),
    ("ukraine", "europe"),
    ("trade", None),
    ("tariffs", "trade"),
]
LATE_TOPIC = "energy"  # may be defined during the history
ALL_TOPICS = [slug for slug, _ in TOPICS] + [LATE_TOPIC]
KINDS = ("statement", "announcement", "occurrence")
# Several precisions and offsets; some start at the same UTC instant (ties go by first
# position), some cross a day or year boundary once in UTC.
OCCURRED = [
    "0476-09-04",
    "2013-12-31T23:30:00-05:00",
    "2014",
    "2014-03",
    "2014-03-18",
    "2014-03-18T12:00:00+03:00",
    "2019",
    "2019-07",
    "2019-07-01",
    "2019-06-30T22:00:00-02:00",
    "2019-07-01T00:00Z",
    "2025-02",
    "2025-02-12",
    "2025-02-12T15:30:00-05:00",
    "2025-02-12T20:30Z",
    "2025-02-12T20:30:00.250+00:00",
    "2025-02-13T01:30:00+05:30",
]
BOUNDS = sorted(
    {parse_when(w).start for w in OCCURRED}
    | {parse_when(w).end for w in OCCURRED}
    | {datetime(2014, 3, 18, 12, tzinfo=UTC), datetime(2025, 2, 12, 20, 30, 0, 100_000, UTC)}
)
URLS = ["https://example.org/a", "https://example.org/b", "https://example.org/c"]


# Stores: a fresh one for each example ------------------------------------------------------


@contextmanager
def fresh_store(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, batch_size: int
) -> Iterator[tuple[Timeline, ReadModels]]:
    """A new, empty store of that kind with its read models, closed afterwards."""
    directory = tmp_path / uuid.uuid4().hex[:8]
    store = make_store(kind, directory, request)
    app = open_timeline(store)
    models = _read_models(store, app)
    models.batch_size = batch_size
    try:
        yield app, models
    finally:
        models.close()
        app.close()


def _read_models(store: Store, app: Timeline) -> ReadModels:
    if store.kind != "postgres":
        return open_read_models(store, app)
    # As open_read_models does, without its LISTEN thread (which would hold a connection
    # for each example): this test projects with catch_up() only.
    conninfo = psycopg.conninfo.make_conninfo(
        store.conninfo(), options=f"-c search_path={store.env['POSTGRES_SCHEMA']}"
    )
    pool = make_pool(conninfo, size=2)
    lock = threading.Lock()

    def view(name: str, generation: int) -> RowsView:
        return PostgresRows(pool, name, generation)

    models = ReadModels(app, view, lambda _: ThreadLease(lock))
    models.on_close.append(pool.close)
    return models


# Histories -----------------------------------------------------------------------------


@dataclass
class History:
    """What was written: each stored write's position, and the records by kind."""

    app: Timeline
    models: ReadModels
    positions: list[int] = field(default_factory=list)
    records: list[tuple[str, UUID]] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    refused: int = 0

    def keep(self, written: Written) -> None:
        if not written.duplicate:
            self.positions.append(written.position)


def setup_world(h: History) -> None:
    for slug, name, kind in ACTORS:
        h.keep(h.app.register_actor({"id": slug, "name": name, "kind": kind}, BY))
    for slug, parent in TOPICS:
        h.keep(h.app.define_topic({"id": slug, "label": slug.title(), "parent": parent}, BY))
        h.topics.append(slug)


def some(data: st.DataObject, values: list[str], lo: int = 0, hi: int = 2) -> list[str]:
    return data.draw(st.lists(st.sampled_from(values), min_size=lo, max_size=hi, unique=True))


def new_record(data: st.DataObject, h: History, n: int) -> None:
    kind = data.draw(st.sampled_from(KINDS), label="kind")
    body: dict[str, Any] = {
        "key": f"k{n}",
        "occurred_at": data.draw(st.sampled_from(OCCURRED), label="occurred_at"),
        "topics": some(data, h.topics),
        "sources": [{"publisher": "Example", "url": f"https://example.org/r{n}"}],
    }
    if data.draw(st.booleans(), label="location"):
        body["location"] = "Kyiv"
    if kind == "statement":
        # The speaker may mention themselves: a record still concerns them once.
        body |= {
            "speaker": data.draw(st.sampled_from(SLUGS), label="speaker"),
            "quote": f"quote {n}",
            "channel": "speech",
            "mentions": some(data, SLUGS),
        }
    elif kind == "announcement":
        body |= {
            "by": some(data, SLUGS, 1),
            "summary": f"summary {n}",
            "channel": "written-statement",
            "mentions": some(data, SLUGS),
        }
    else:
        body |= {"title": f"title {n}", "kind": "meeting", "participants": some(data, SLUGS)}
        if data.draw(st.booleans(), label="ended"):
            body["ended_at"] = "2030"
    written = h.app.record(kind, body, BY)
    h.keep(written)
    h.records.append((kind, written.id))


def changes_for(data: st.DataObject, kind: str, h: History) -> dict[str, Any]:
    fields = ["occurred_at", "topics", "location"]
    fields += {
        "statement": ["speaker", "mentions", "quote"],
        "announcement": ["by", "mentions"],
        "occurrence": ["participants", "title"],
    }[kind]
    changes: dict[str, Any] = {}
    for name in some(data, fields, 1, 3):
        if name == "occurred_at":
            changes[name] = data.draw(st.sampled_from(OCCURRED), label="moved to")
        elif name in ("topics", "mentions", "participants"):
            changes[name] = some(data, h.topics if name == "topics" else SLUGS)
        elif name == "by":
            changes[name] = some(data, SLUGS, 1)
        elif name == "speaker":
            changes[name] = data.draw(st.sampled_from(SLUGS), label="speaker")
        elif name == "location":
            changes[name] = data.draw(st.sampled_from([None, "Brussels"]), label="location")
        else:
            changes[name] = f"corrected {name}"
    return changes


OPERATIONS = [
    "record",
    "record",
    "record",
    "correct",
    "correct",
    "retract",
    "add_source",
    "tag",
    "untag",
    "move_topic",
    "relabel_topic",
    "define_topic",
    "add_alias",
    "catch_up",
]


def operate(data: st.DataObject, h: History, n: int) -> None:
    op = data.draw(st.sampled_from(OPERATIONS), label="operation")
    if op == "record" or (not h.records and op in ("correct", "retract", "add_source", "tag")):
        new_record(data, h, n)
        return
    if op in ("correct", "retract", "add_source", "tag", "untag"):
        if not h.records:
            return
        kind, id = data.draw(st.sampled_from(h.records), label="record")
        if op == "correct":
            written = h.app.correct(kind, id, changes_for(data, kind, h), "fix", BY)
        elif op == "retract":
            written = h.app.retract(kind, id, "wrong", BY)
        elif op == "add_source":
            url = data.draw(st.sampled_from(URLS), label="url")
            written = h.app.add_source(kind, id, {"publisher": "More", "url": url}, BY)
        elif op == "tag":
            written = h.app.tag(kind, id, some(data, h.topics, 1), BY)
        else:
            written = h.app.untag(kind, id, some(data, ALL_TOPICS, 1), BY)
    elif op == "move_topic":
        slug = data.draw(st.sampled_from(h.topics), label="topic")
        parent = data.draw(st.sampled_from([None, *h.topics]), label="parent")
        written = h.app.move_topic(slug, parent, BY)
    elif op == "relabel_topic":
        slug = data.draw(st.sampled_from(h.topics), label="topic")
        written = h.app.relabel_topic(slug, f"Label {n}", BY)
    elif op == "define_topic":
        parent = data.draw(st.sampled_from([None, *h.topics]), label="parent")
        written = h.app.define_topic({"id": LATE_TOPIC, "label": "Energy", "parent": parent}, BY)
        if LATE_TOPIC not in h.topics:
            h.topics.append(LATE_TOPIC)
    elif op == "add_alias":
        slug = data.draw(st.sampled_from(SLUGS), label="actor")
        written = h.app.add_alias(slug, f"Alias {n}", BY)
    else:
        h.models.catch_up()
        return
    h.keep(written)


# Comparing ---------------------------------------------------------------------------


def items(view: RowsView, query: TimelineQuery) -> list[dict[str, Any]]:
    return [json.loads(i) for i in timeline_at(view, query).items]


def check_timeline(
    models: ReadModels, world: World, at: int | None, windows: list[tuple[Any, Any]]
) -> None:
    view = models.view("timeline")

    def same(expected: list[dict[str, Any]], query: TimelineQuery) -> None:
        got = items(view, query)
        assert [i["id"] for i in got] == [i["id"] for i in expected], query
        assert got == expected, query

    same(world.timeline(), TimelineQuery(at=at, limit=1000))
    for topic in ALL_TOPICS:
        same(world.timeline(topic=topic), TimelineQuery(topic=topic, at=at, limit=1000))
    for actor in SLUGS:
        same(world.timeline(actor=actor), TimelineQuery(actor=actor, at=at, limit=1000))
    for kind in KINDS:
        same(world.timeline(kind=kind), TimelineQuery(kind=kind, at=at, limit=1000))
    for since, until in windows:
        same(
            world.timeline(since=since, until=until),
            TimelineQuery(since=since, until=until, at=at, limit=1000),
        )
        same(
            world.timeline(topic="world", actor="ana", since=since, until=until),
            TimelineQuery(topic="world", actor="ana", since=since, until=until, at=at, limit=1000),
        )
    # Pages of three, by keyset, cover the same answer once.
    paged: list[dict[str, Any]] = []
    after = None
    while True:
        page = timeline_at(view, TimelineQuery(at=at, limit=3, after=after))
        paged += [json.loads(i) for i in page.items]
        if page.next is None:
            break
        after = page.next
    assert paged == world.timeline()
    # One record at a time, retracted ones included.
    for ref, rec in world.records.items():
        found = record_at(view, rec.kind, ref, at)
        assert (None if found is None else json.loads(found)) == world.record(ref)


def check_others(
    models: ReadModels, world: World, at: int | None, windows: list[tuple[Any, Any]]
) -> None:
    said = models.view("who_said_what")
    for topic in ALL_TOPICS:
        assert who_said_what(said, topic, None, None, at) == world.who_said_what(topic), topic
    for since, until in windows:
        got = who_said_what(said, "world", since, until, at)
        assert got == world.who_said_what("world", since, until), (since, until)
    assert topic_tree(models.view("topics"), at) == world.topic_tree()
    for slug in SLUGS:
        assert profile(models.view("actors"), slug, at) == world.profile(slug), slug


def check(models: ReadModels, world: World, at: int | None, windows: list[tuple[Any, Any]]) -> None:
    check_timeline(models, world, at, windows)
    check_others(models, world, at, windows)


def stored_events(app: Timeline) -> list[tuple[int, Any]]:
    notes = app.recorder.select_notifications(start=1, limit=10_000)
    return [(n.id, app.mapper.to_domain_event(n)) for n in notes]


windows = st.lists(
    st.tuples(st.none() | st.sampled_from(BOUNDS), st.none() | st.sampled_from(BOUNDS)),
    min_size=1,
    max_size=2,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_read_model_as_of_a_position_answers_as_the_events_up_to_it(
    store: Store, tmp_path: Path, request: pytest.FixtureRequest, data: st.DataObject
) -> None:
    batch_size = data.draw(st.sampled_from([1, 2, 5, 500]), label="batch size")
    with fresh_store(store.kind, tmp_path, request, batch_size) as (app, models):
        h = History(app, models)
        setup_world(h)
        for n in range(data.draw(st.integers(3, 16), label="writes")):
            try:
                operate(data, h, n)
            except TimelineError:
                h.refused += 1  # the domain refused it: nothing was stored
        models.catch_up()

        events = stored_events(app)
        assert [p for p, _ in events] == sorted(h.positions)
        head = app.head_position()
        assert head == h.positions[-1]
        chosen = data.draw(
            st.lists(st.sampled_from(h.positions), min_size=1, max_size=3), label="positions"
        )
        for at in sorted({*chosen, head}):
            check(models, fold(events, at), at, data.draw(windows, label="windows"))
        check(models, fold(events), None, data.draw(windows, label="windows"))


# History stays history -----------------------------------------------------------------


def test_an_answer_as_of_a_position_never_changes_afterwards(
    timeline: Timeline, read_models: ReadModels, author: Author
) -> None:
    for slug, name, kind in ACTORS[:2]:
        timeline.register_actor({"id": slug, "name": name, "kind": kind}, author)
    timeline.define_topic({"id": "world", "label": "World"}, author)
    first = timeline.record(
        "statement",
        {
            "speaker": "ana",
            "quote": "we will talk",
            "channel": "speech",
            "occurred_at": "2025-02-12T15:30:00-05:00",
            "topics": ["world"],
            "mentions": ["bo"],
            "sources": [{"publisher": "Example", "url": URLS[0]}],
        },
        author,
    )
    second = timeline.record(
        "occurrence",
        {
            "title": "a meeting",
            "kind": "meeting",
            "occurred_at": "2019-07",
            "participants": ["ana", "bo"],
            "topics": ["world"],
            "sources": [{"publisher": "Example", "url": URLS[1]}],
        },
        author,
    )
    at = second.position
    read_models.catch_up()
    view = read_models.view("timeline")

    def answer(at: int | None) -> list[str]:
        return timeline_at(view, TimelineQuery(at=at, limit=100)).items

    then = answer(at)
    assert [json.loads(i)["id"] for i in then] == [str(second.id), str(first.id)]
    said_then = who_said_what(read_models.view("who_said_what"), "world", None, None, at)

    timeline.correct(
        "statement", first.id, {"occurred_at": "2014", "speaker": "bo"}, "misdated", author
    )
    timeline.retract("occurrence", second.id, "never happened", author)
    backfilled = timeline.record(
        "statement",
        {
            "speaker": "bo",
            "summary": "an older word",
            "channel": "interview",
            "occurred_at": "2013-12-31",
            "topics": ["world"],
            "sources": [{"publisher": "Example", "url": URLS[2]}],
        },
        author,
    )
    read_models.catch_up()

    assert answer(at) == then  # byte for byte
    assert who_said_what(read_models.view("who_said_what"), "world", None, None, at) == said_then
    now = answer(None)
    assert now != then
    assert [json.loads(i)["id"] for i in now] == [str(backfilled.id), str(first.id)]
    assert json.loads(now[1])["occurred_at"] == "2014-01-01T00:00:00.000000Z"
