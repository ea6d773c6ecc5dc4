"""Group commit: concurrent writes share transactions, and each still gets its own answer."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import Recording

from domain.application import Timeline
from domain.errors import ConcurrentWrite, KeyConflict
from domain.writers import Author, writing_as
from service.store.commits import GroupCommit, StoreTimeline
from service.store.database import open_timeline, parse_url
from tests.domain.conftest import statement


class Gate:
    """A save that records each group it is given and holds the first one until told, so
    that the others queue up behind it."""

    def __init__(self, conflict_on: object = None, error: BaseException | None = None) -> None:
        self.groups: list[list[Any]] = []
        self.release = threading.Event()
        self.conflict_on = conflict_on
        self.error = error

    def __call__(self, events: Sequence[Any]) -> list[Recording[Any]]:
        self.groups.append(list(events))
        if len(self.groups) == 1:
            self.release.wait(10)
        if self.error is not None:
            raise self.error
        if self.conflict_on in events and len(events) > 1:
            raise ConcurrentWrite("two writers changed one aggregate")
        if self.conflict_on in events:
            raise ConcurrentWrite("lost")
        return [f"recorded {e}" for e in events]  # type: ignore[misc]


def _race(group: GroupCommit, gate: Gate, writes: list[list[Any]]) -> dict[int, Any]:
    """The first write goes alone and is held; the rest queue; then all are released."""
    answers: dict[int, Any] = {}

    def write(n: int) -> None:
        try:
            answers[n] = group.save(writes[n])
        except Exception as e:
            answers[n] = e

    first = threading.Thread(target=write, args=(0,))
    first.start()
    while not gate.groups:
        threading.Event().wait(0.001)
    rest = [threading.Thread(target=write, args=(n,)) for n in range(1, len(writes))]
    for t in rest:
        t.start()
    while sum(len(w.events) for w in group._queue) < sum(map(len, writes[1:])):
        threading.Event().wait(0.001)
    gate.release.set()
    for t in [first, *rest]:
        t.join(10)
    return answers


def test_writes_that_queue_behind_a_commit_share_the_next_one() -> None:
    gate = Gate()
    group = GroupCommit(gate)
    writes = [[f"e{n}a", f"e{n}b"] if n % 3 == 0 else [f"e{n}"] for n in range(20)]
    answers = _race(group, gate, writes)
    group.close()
    # Two transactions: the first write alone, then the 19 that waited, together.
    assert [len(g) for g in gate.groups] == [2, sum(map(len, writes[1:]))]
    # Each writer gets exactly its own recordings, in its own order.
    assert answers == {n: [f"recorded {e}" for e in w] for n, w in enumerate(writes)}


def test_a_conflict_in_a_group_fails_only_its_writer() -> None:
    gate = Gate(conflict_on="e7")
    group = GroupCommit(gate)
    writes = [[f"e{n}"] for n in range(12)]
    answers = _race(group, gate, writes)
    group.close()
    # The group failed as a whole, then went writer by writer.
    assert len(gate.groups) == 2 + 11
    assert isinstance(answers.pop(7), ConcurrentWrite)
    assert answers == {n: [f"recorded e{n}"] for n in range(12) if n != 7}


def test_a_store_error_is_every_writers_answer() -> None:
    gate = Gate(error=OSError("the store is away"))
    group = GroupCommit(gate)
    answers = _race(group, gate, [[f"e{n}"] for n in range(5)])
    group.close()
    assert all(isinstance(a, OSError) for a in answers.values()) and len(answers) == 5


def test_groups_are_bounded_in_events() -> None:
    gate = Gate()
    group = GroupCommit(gate, max_events=4)
    answers = _race(group, gate, [["a"], ["b", "c"], ["d", "e"], ["f"], ["g", "h", "i"]])
    group.close()
    assert [len(g) for g in gate.groups] == [1, 4, 4]
    assert answers[4] == ["recorded g", "recorded h", "recorded i"]


@pytest.fixture
def grouped(timeline: Timeline, author: Author) -> StoreTimeline:
    """The service's timeline, committing in groups, with what `statement()` names."""
    assert isinstance(timeline, StoreTimeline)
    timeline.enable_group_commit()
    for slug, name in [("mark-rutte", "Mark Rutte"), ("vladimir-putin", "Vladimir Putin")]:
        timeline.register_actor({"id": slug, "name": name, "kind": "person"})
    timeline.define_topic({"id": "territory", "label": "Territory"})
    return timeline


def test_on_a_store_racing_writers_each_get_their_own_answer(
    grouped: StoreTimeline, author: Author
) -> None:
    """24 writers at once: 16 new statements, the same keyed statement 4 times, and 4
    corrections of one record at the same version."""
    target = grouped.record("statement", statement(key="target"))
    barrier = threading.Barrier(24)
    answers: dict[str, list[Any]] = {"new": [], "same": [], "correct": []}

    def write(kind: str, n: int) -> None:
        barrier.wait()
        try:
            with writing_as(author):  # each thread names its writer
                if kind == "new":
                    answer: Any = grouped.record("statement", statement(quote=f"words {n}"))
                elif kind == "same":
                    answer = grouped.record("statement", statement(key="same"))
                else:
                    answer = grouped.correct(
                        "statement", target.id, {"location": f"place {n}"}, "race"
                    )
        except (ConcurrentWrite, KeyConflict) as e:
            answer = e
        answers[kind].append(answer)

    jobs = [("new", n) for n in range(16)] + [("same", n) for n in range(4)]
    jobs += [("correct", n) for n in range(4)]
    threads = [threading.Thread(target=write, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # Every new statement is stored once, at its own position.
    assert len({a.position for a in answers["new"]}) == 16
    assert all(not a.duplicate and a.version == 1 for a in answers["new"])
    # The same key four times: one event, four answers naming it.
    same = answers["same"]
    assert len({a.id for a in same}) == 1 and sum(not a.duplicate for a in same) == 1
    assert len(list(grouped.history(same[0].id))) == 1
    # Corrections at one version: at least one wins, versions never repeat.
    won = [a for a in answers["correct"] if not isinstance(a, Exception)]
    assert won and all(isinstance(a, ConcurrentWrite) for a in answers["correct"] if a not in won)
    versions = [e.originator_version for e in grouped.history(target.id)]
    assert versions == list(range(1, 2 + len(won)))
    # Every write that stored something went through the committer.
    assert grouped.group is not None and grouped.group.writes >= 16 + 1 + 1


def test_the_stores_timeline_opens_the_tables_the_domains_timeline_named(
    postgres_database: str,
) -> None:
    # The library names the events table (and reads its settings) after the application:
    # the service's subclass must find the tables stored before it existed.
    assert StoreTimeline.name == Timeline.name == "Timeline"
    timeline = open_timeline(parse_url(postgres_database, schema="named_once"))
    try:
        with psycopg.connect(parse_url(postgres_database).conninfo()) as conn:
            tables = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'named_once'"
            ).fetchall()
    finally:
        timeline.close()
    assert ("timeline_events",) in tables
