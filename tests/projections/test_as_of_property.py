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
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from domain.actors import TopicTree
from domain.application import Timeline
from domain.errors import TimelineError
from domain.usecases import Written
from domain.when import parse_when
from domain.writers import Author, writing_as
from projections.postgres import PostgresView, make_pool
from projections.sqlite import ThreadLease
from projections.view import TimelineQuery, TimelineView
from projections.workers import ReadModels
from service.store.commits import StoreTimeline
from service.store.database import Store, open_timeline
from service.store.readmodels import open_read_models
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
) -> Iterator[tuple[StoreTimeline, ReadModels]]:
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

    def view(generation: int) -> TimelineView:
        return PostgresView(pool, generation)

    models = ReadModels(app, view, lambda: ThreadLease(lock))
    models.on_close.append(pool.close)
    return models


# Histories -----------------------------------------------------------------------------
# Operations are plain values (records named by an index, taken modulo those written so
# far) so that Hypothesis shrinks a failing history by dropping and simplifying them.


@dataclass(frozen=True)
class NewRecord:
    kind: str
    occurred_at: str
    topics: list[str]
    who: list[str]  # the speaker (the first), `by` or the participants
    mentions: list[str]  # may name the speaker: the record still concerns them once
    location: bool
    ended: bool


@dataclass(frozen=True)
class Correct:
    pick: int
    occurred_at: str | None  # None: unchanged
    topics: list[str] | None
    who: list[str] | None
    mentions: list[str] | None
    location: str | None  # "-": removed
    text: bool


@dataclass(frozen=True)
class Retract:
    pick: int


@dataclass(frozen=True)
class AddSource:
    pick: int
    url: str


@dataclass(frozen=True)
class Tag:
    pick: int
    topics: list[str]
    untag: bool


@dataclass(frozen=True)
class MoveTopic:
    topic: str
    parent: str | None


@dataclass(frozen=True)
class RelabelTopic:
    topic: str


@dataclass(frozen=True)
class DefineLateTopic:
    parent: str | None


@dataclass(frozen=True)
class AddAlias:
    actor: str


@dataclass(frozen=True)
class CatchUp:
    """Project what is written so far: later batches change rows stored before them."""


Operation = (
    NewRecord
    | Correct
    | Retract
    | AddSource
    | Tag
    | MoveTopic
    | RelabelTopic
    | DefineLateTopic
    | AddAlias
    | CatchUp
)


def _some(values: list[str], lo: int = 0) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), min_size=lo, max_size=2, unique=True)


_picks = st.integers(0, 40)
_topic = st.sampled_from(ALL_TOPICS)
_parent = st.none() | _topic
new_records = st.builds(
    NewRecord,
    kind=st.sampled_from(KINDS),
    occurred_at=st.sampled_from(OCCURRED),
    topics=_some(ALL_TOPICS),
    who=_some(SLUGS, 1),
    mentions=_some(SLUGS),
    location=st.booleans(),
    ended=st.booleans(),
)
record_edits: st.SearchStrategy[Operation] = st.one_of(
    st.builds(
        Correct,
        pick=_picks,
        occurred_at=st.none() | st.sampled_from(OCCURRED),
        topics=st.none() | _some(ALL_TOPICS),
        who=st.none() | _some(SLUGS, 1),
        mentions=st.none() | _some(SLUGS),
        location=st.sampled_from([None, "-", "Brussels"]),
        text=st.booleans(),
    ),
    st.builds(Retract, pick=_picks),
    st.builds(AddSource, pick=_picks, url=st.sampled_from(URLS)),
    st.builds(Tag, pick=_picks, topics=_some(ALL_TOPICS, 1), untag=st.booleans()),
)
tree_changes: st.SearchStrategy[Operation] = st.one_of(
    st.builds(MoveTopic, topic=_topic, parent=_parent),
    st.builds(DefineLateTopic, parent=_parent),
)
other_writes: st.SearchStrategy[Operation] = st.one_of(
    st.builds(RelabelTopic, topic=_topic),
    st.builds(AddAlias, actor=st.sampled_from(SLUGS)),
    st.just(CatchUp()),
)
# Of six writes, about two new records, two changes to them, one to the topic tree.
_kinds_of_write: list[st.SearchStrategy[Operation]] = [
    new_records,
    new_records,
    record_edits,
    record_edits,
    tree_changes,
    other_writes,
]
operations = st.sampled_from(_kinds_of_write).flatmap(lambda kind: kind)


@dataclass
class History:
    """What was written: each stored write's position, and the records."""

    app: Timeline
    models: ReadModels
    positions: list[int] = field(default_factory=list)
    records: list[tuple[str, UUID]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def keep(self, written: Written) -> None:
        if not written.duplicate:  # a write that changes nothing stores nothing
            self.positions.append(written.position)

    def record_at(self, pick: int) -> tuple[str, UUID] | None:
        return self.records[pick % len(self.records)] if self.records else None


def setup_world(h: History) -> None:
    with writing_as(BY):
        for slug, name, kind in ACTORS:
            h.keep(h.app.register_actor({"id": slug, "name": name, "kind": kind}))
        for slug, parent in TOPICS:
            h.keep(h.app.define_topic({"id": slug, "label": slug.title(), "parent": parent}))


def new_record(h: History, op: NewRecord, n: int) -> Written:
    body: dict[str, Any] = {
        "key": f"k{n}",
        "occurred_at": op.occurred_at,
        "topics": op.topics,
        "sources": [{"publisher": "Example", "url": f"https://example.org/r{n}"}],
    }
    if op.location:
        body["location"] = "Kyiv"
    if op.kind == "statement":
        body |= {
            "speaker": op.who[0],
            "quote": f"quote {n}",
            "channel": "speech",
            "mentions": op.mentions,
        }
    elif op.kind == "announcement":
        body |= {
            "by": op.who,
            "summary": f"summary {n}",
            "channel": "written-statement",
            "mentions": op.mentions,
        }
    else:
        body |= {"title": f"title {n}", "kind": "meeting", "participants": op.who}
        if op.ended:
            body["ended_at"] = "2030"
    written = h.app.record(op.kind, body)
    h.records.append((op.kind, written.id))
    return written


def changes(kind: str, op: Correct, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if op.occurred_at is not None:
        out["occurred_at"] = op.occurred_at
    if op.topics is not None:
        out["topics"] = op.topics
    if op.who is not None:
        who = {"statement": "speaker", "announcement": "by", "occurrence": "participants"}[kind]
        out[who] = op.who[0] if kind == "statement" else op.who
    if op.mentions is not None and kind != "occurrence":
        out["mentions"] = op.mentions
    if op.location is not None:
        out["location"] = None if op.location == "-" else op.location
    if op.text:
        out[{"statement": "quote", "announcement": "summary", "occurrence": "title"}[kind]] = (
            f"corrected {n}"
        )
    return out


def apply(h: History, op: Operation, n: int) -> None:
    """Write one operation through the use cases; the domain may refuse it."""
    with writing_as(BY):
        app = h.app
        target = (
            h.record_at(op.pick) if isinstance(op, Correct | Retract | AddSource | Tag) else None
        )
        if isinstance(op, NewRecord):
            written = new_record(h, op, n)
        elif isinstance(op, CatchUp):
            h.models.catch_up()
            return
        elif isinstance(op, MoveTopic):
            written = app.move_topic(op.topic, op.parent)
        elif isinstance(op, RelabelTopic):
            written = app.relabel_topic(op.topic, f"Label {n}")
        elif isinstance(op, DefineLateTopic):
            data = {"id": LATE_TOPIC, "label": "Energy", "parent": op.parent}
            written = app.define_topic(data)
        elif isinstance(op, AddAlias):
            written = app.add_alias(op.actor, f"Alias {n}")
        elif target is None:
            return  # no record yet
        elif isinstance(op, Correct):
            written = app.correct(*target, changes(target[0], op, n), "fix")
        elif isinstance(op, Retract):
            written = app.retract(*target, "wrong")
        elif isinstance(op, AddSource):
            written = app.add_source(*target, {"publisher": "More", "url": op.url})
        elif op.untag:
            written = app.untag(*target, op.topics)
        else:
            written = app.tag(*target, op.topics)
        h.keep(written)


# Comparing ---------------------------------------------------------------------------


def items(view: TimelineView, query: TimelineQuery) -> list[dict[str, Any]]:
    return [json.loads(i) for i in view.page(query).items]


def check_timeline(
    models: ReadModels, world: World, at: int | None, windows: list[tuple[Any, Any]]
) -> None:
    view = models.view()

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
        page = view.page(TimelineQuery(at=at, limit=3, after=after))
        paged += [json.loads(i) for i in page.items]
        if page.next is None:
            break
        after = page.next
    assert paged == world.timeline()
    # One record at a time, retracted ones included.
    for ref, rec in world.records.items():
        found = view.record(rec.kind, ref, at)
        assert (None if found is None else json.loads(found)) == world.record(ref)


def check_others(
    models: ReadModels, world: World, at: int | None, windows: list[tuple[Any, Any]]
) -> None:
    said = models.view()
    for topic in ALL_TOPICS:
        assert said.who_said_what(topic, (None, None), at) == world.who_said_what(topic), topic
    for since, until in windows:
        got = said.who_said_what("world", (since, until), at)
        assert got == world.who_said_what("world", since, until), (since, until)
    assert models.view().topic_tree(at) == world.topic_tree()
    for slug in SLUGS:
        assert models.view().actor(slug, at) == world.profile(slug), slug


def check(models: ReadModels, world: World, at: int | None, windows: list[tuple[Any, Any]]) -> None:
    check_timeline(models, world, at, windows)
    check_others(models, world, at, windows)


def stored_events(app: Timeline) -> list[tuple[int, Any]]:
    notes = app.recorder.select_notifications(start=1, limit=10_000)
    return [(n.id, app.mapper.to_domain_event(n)) for n in notes]


window_lists = st.lists(
    st.tuples(st.none() | st.sampled_from(BOUNDS), st.none() | st.sampled_from(BOUNDS)),
    min_size=1,
    max_size=2,
)


@settings(
    max_examples=40,
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=st.lists(operations, min_size=8, max_size=30),
    batch_size=st.sampled_from([500, 1, 2, 5]),
    picks=st.lists(st.integers(0, 60), min_size=1, max_size=4),
    windows=window_lists,
)
def test_every_read_model_as_of_a_position_answers_as_the_events_up_to_it(
    store: Store,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    history: list[Operation],
    batch_size: int,
    picks: list[int],
    windows: list[tuple[datetime | None, datetime | None]],
) -> None:
    with fresh_store(store.kind, tmp_path, request, batch_size) as (app, models):
        h = History(app, models)
        setup_world(h)
        note(f"batch size {batch_size}; the setup stored positions {h.positions}")
        for n, op in enumerate(history):
            before = len(h.positions)
            try:
                apply(h, op, n)
            except TimelineError as e:
                h.refused.append(f"{n}: {e}")  # the domain refused it: nothing was stored
                note(f"write {n}: {op} -> refused: {e}")
                continue
            stored = h.positions[before:]
            note(f"write {n}: {op} -> " + (f"position {stored[0]}" if stored else "nothing stored"))
        models.catch_up()
        event(f"ops: {len(history) // 4 * 4}+, records written: {len(h.records) // 4 * 4}+")
        event(f"writes refused: {len(h.refused) // 2 * 2}+")

        events = stored_events(app)
        # Each write's own events (a move's tree event aside, stored just before it).
        assert [p for p, e in events if not isinstance(e, TopicTree.Event)] == sorted(h.positions)
        head = app.head_position()
        assert head == h.positions[-1]
        for at in sorted({*(h.positions[i % len(h.positions)] for i in picks), head}):
            note(f"as of position {at}, windows {windows}")
            check(models, fold(events, at), at, windows)
        note("current answers")
        check(models, fold(events), None, windows)


# History stays history -----------------------------------------------------------------


def test_an_answer_as_of_a_position_never_changes_afterwards(
    timeline: Timeline, read_models: ReadModels, author: Author
) -> None:
    for slug, name, kind in ACTORS[:2]:
        timeline.register_actor({"id": slug, "name": name, "kind": kind})
    timeline.define_topic({"id": "world", "label": "World"})
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
    )
    at = second.position
    read_models.catch_up()
    view = read_models.view()

    def answer(at: int | None) -> list[str]:
        return view.page(TimelineQuery(at=at, limit=100)).items

    then = answer(at)
    assert [json.loads(i)["id"] for i in then] == [str(second.id), str(first.id)]
    said_then = read_models.view().who_said_what("world", (None, None), at)
    tree_then = read_models.view().topic_tree(at)
    ana_then = read_models.view().actor("ana", at)

    timeline.correct("statement", first.id, {"occurred_at": "2014", "speaker": "bo"}, "misdated")
    timeline.retract("occurrence", second.id, "never happened")
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
    )
    read_models.catch_up()

    assert answer(at) == then  # byte for byte
    assert read_models.view().who_said_what("world", (None, None), at) == said_then
    assert read_models.view().topic_tree(at) == tree_then
    assert read_models.view().actor("ana", at) == ana_then
    assert read_models.view().actor("ana", None) != ana_then
    now = answer(None)
    assert now != then
    assert [json.loads(i)["id"] for i in now] == [str(backfilled.id), str(first.id)]
    assert json.loads(now[1])["occurred_at"] == "2014-01-01T00:00:00.000000Z"
