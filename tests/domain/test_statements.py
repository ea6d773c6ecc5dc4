"""The life of a statement, told on every store."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from domain.application import Timeline
from domain.errors import (
    ConcurrentWrite,
    InvalidInput,
    InvalidTime,
    KeyConflict,
    RuleViolation,
    StaleVersion,
    TimelineError,
    UnknownReference,
)
from domain.ids import record_id
from domain.writers import Author, NoWriter, writing_as
from tests.domain.conftest import BBC, statement


def test_a_statement_is_recorded_corrected_sourced_and_retracted(
    world: Timeline, author: Author
) -> None:
    # Rutte's words are recorded, with a key of our own.
    written = world.record("statement", statement(key="rutte-square-mile"))
    assert (written.version, written.duplicate) == (1, False)
    assert written.id == record_id("statement", "rutte-square-mile")
    # The place is confirmed later: a correction names the field and the reason.
    corrected = world.correct("statement", written.id, {"location": "Brussels"}, "confirmed")
    assert corrected.version == 2 and corrected.position > written.position
    # A second outlet corroborates it.
    other = {"publisher": "Reuters", "url": "https://www.reuters.com/example"}
    sourced = world.add_source("statement", written.id, other)
    assert sourced.version == 3
    # Then it turns out to be misattributed and is retracted.
    retracted = world.retract("statement", written.id, "misattributed")
    assert retracted.version == 4
    # The history keeps every step, each with who wrote it.
    events: list[Any] = list(world.history(written.id))
    assert [type(e).__name__ for e in events] == [
        "Recorded",
        "Corrected",
        "SourceAdded",
        "Retracted",
    ]
    assert all(e.writer == "tester" for e in events)
    corrected_event = events[1]
    assert corrected_event.changes == {"location": "Brussels"}
    assert corrected_event.reason == "confirmed"
    # The stored record reflects it all.
    record = world.get_record("statement", written.id)
    assert record.content["location"] == "Brussels"
    assert [s["url"] for s in record.content["sources"]] == [BBC["url"], other["url"]]
    assert record.retracted == "misattributed"


def test_a_retracted_record_cannot_be_corrected_again(world: Timeline, author: Author) -> None:
    written = world.record("statement", statement())
    world.retract("statement", written.id, "wrong speaker")
    head = world.head_position()
    with pytest.raises(RuleViolation, match="retracted"):
        world.correct("statement", written.id, {"location": "Brussels"}, "late")
    # Retracting again stores nothing and answers the record as it is.
    again = world.retract("statement", written.id, "again")
    assert again.duplicate
    assert again.version == 2
    assert world.head_position() == head


def test_the_same_correction_source_or_retraction_again_is_a_duplicate(
    world: Timeline, author: Author
) -> None:
    written = world.record("statement", statement())
    world.correct("statement", written.id, {"location": "Brussels"}, "confirmed")
    other = {"publisher": "Reuters", "url": "https://www.reuters.com/example"}
    world.add_source("statement", written.id, other)
    world.retract("statement", written.id, "misattributed")
    head = world.head_position()
    # An import run again sends each of them again: nothing new is stored, nothing refused.
    assert world.correct("statement", written.id, {"location": "Brussels"}, "confirmed").duplicate
    assert world.add_source("statement", written.id, dict(other)).duplicate
    assert world.retract("statement", written.id, "misattributed").duplicate
    assert world.head_position() == head


def test_the_same_statement_twice_is_a_duplicate_and_stores_nothing(
    world: Timeline, author: Author
) -> None:
    first = world.record("statement", statement())
    head = world.head_position()
    # Sent again without a key: the derived key finds it.
    again = world.record("statement", statement())
    assert again.duplicate and again.id == first.id and again.version == 1
    assert world.head_position() == head
    # Still a duplicate after a correction: the key remembers the first content.
    world.correct("statement", first.id, {"location": "Brussels"}, "confirmed")
    assert world.record("statement", statement()).duplicate


def test_the_same_key_with_other_content_is_a_conflict(world: Timeline, author: Author) -> None:
    world.record("statement", statement(key="k1"))
    head = world.head_position()
    with pytest.raises(KeyConflict) as caught:
        world.record("statement", statement(key="k1", summary="something else"))
    assert caught.value.field == "key"
    assert world.head_position() == head


def test_two_writers_who_loaded_the_same_version_cannot_both_save(
    world: Timeline, author: Author
) -> None:
    written = world.record("statement", statement())
    # Both writers hold version 1 of the record.
    first = world.get_record("statement", written.id)
    second = world.get_record("statement", written.id)
    first.correct(changes={"location": "Brussels"}, reason="a")
    second.correct(changes={"location": "Kyiv"}, reason="b")
    world.save_atomically([first])
    with pytest.raises(ConcurrentWrite):
        world.save_atomically([second])
    assert world.get_record("statement", written.id).content["location"] == "Brussels"


def test_racing_correctors_get_one_version_each_or_a_conflict(
    world: Timeline, author: Author
) -> None:
    written = world.record("statement", statement())
    threads, barrier = 8, threading.Barrier(8)
    outcomes: list[str] = []

    def correct(n: int) -> None:
        barrier.wait()
        try:
            with writing_as(author):  # each thread names its writer
                world.correct("statement", written.id, {"location": f"place {n}"}, "race")
            outcomes.append("won")
        except ConcurrentWrite:
            outcomes.append("conflict")

    workers = [threading.Thread(target=correct, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    # Every attempt ended one way or the other, and versions never repeat.
    assert len(outcomes) == threads and "won" in outcomes
    versions = [e.originator_version for e in world.history(written.id)]
    assert versions == list(range(1, len(versions) + 1))
    assert len(versions) == 1 + outcomes.count("won")


def test_a_stale_expected_version_is_refused(world: Timeline, author: Author) -> None:
    written = world.record("statement", statement())
    world.correct("statement", written.id, {"location": "Brussels"}, "place")
    with pytest.raises(StaleVersion) as caught:
        world.retract("statement", written.id, "x", expected_version=1)
    assert caught.value.current == 2


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        (statement(speaker="nobody-known"), UnknownReference, "speaker"),
        (statement(mentions=["ghost"]), UnknownReference, "mentions[0]"),
        (statement(topics=["no-such-topic"]), UnknownReference, "topics[0]"),
        (statement(topics=["territory", "no-such-topic"]), UnknownReference, "topics[1]"),
        (statement(occurred_at="2025-02-13T10:00:00"), InvalidTime, "occurred_at"),
        (statement(occurred_at="2025-02-30"), InvalidTime, "occurred_at"),
        (statement(occurred_at=20250213), InvalidTime, "occurred_at"),
        (statement(quote="grab another\x00square mile"), InvalidInput, "quote"),
        (statement(quote="lone \ud800 surrogate"), InvalidInput, "quote"),
        (statement(quote=None, summary=None), InvalidInput, "quote"),
        (statement(channel="telepathy"), InvalidInput, "channel"),
        (statement(sources=[]), InvalidInput, "sources"),
        (
            statement(sources=[{"publisher": "BBC", "url": "not a url"}]),
            InvalidInput,
            "sources[0].url",
        ),
        (statement(colour="red"), InvalidInput, "colour"),
        (statement(topics=["Bad Slug"]), InvalidInput, "topics[0]"),
    ],
)
def test_bad_records_are_refused_with_the_field_named_and_nothing_stored(
    world: Timeline, author: Author, body: dict[str, Any], error: type[TimelineError], field: str
) -> None:
    head = world.head_position()
    with pytest.raises(error) as caught:
        world.record("statement", body)
    assert caught.value.field == field
    assert world.head_position() == head


def test_a_correction_that_breaks_a_rule_stores_nothing(world: Timeline, author: Author) -> None:
    written = world.record("statement", statement())
    head = world.head_position()
    for changes, field in [
        ({"speaker": "ghost"}, "speaker"),
        ({"occurred_at": "2025-02-13T09:00"}, "changes.occurred_at"),
        ({"location": "Brussels\x00"}, "changes.location"),
        ({"quote": None}, "changes.quote"),  # neither quote nor summary would remain
        ({"key": "other"}, "changes.key"),
        ({}, "changes"),
        ({"channel": "press-conference"}, "changes"),  # changes nothing
    ]:
        with pytest.raises((InvalidInput, UnknownReference)) as caught:
            world.correct("statement", written.id, changes, "why")
        assert caught.value.field == field, changes
    assert world.head_position() == head


def test_a_correction_may_move_a_record_in_occurred_time(world: Timeline, author: Author) -> None:
    written = world.record("statement", statement())
    world.correct("statement", written.id, {"occurred_at": "2025-02-12"}, "it was Wednesday")
    assert world.get_record("statement", written.id).content["occurred_at"] == "2025-02-12"


def test_adding_a_source_already_there_stores_nothing(world: Timeline, author: Author) -> None:
    written = world.record("statement", statement())
    head = world.head_position()
    again = world.add_source("statement", written.id, dict(BBC))
    assert again.duplicate and again.version == 1
    assert world.head_position() == head


def test_topics_are_tagged_and_untagged(world: Timeline, author: Author) -> None:
    written = world.record("statement", statement())
    world.tag("statement", written.id, ["negotiations"])
    assert world.get_record("statement", written.id).content["topics"] == [
        "territory",
        "negotiations",
    ]
    world.untag("statement", written.id, ["territory"])
    assert world.get_record("statement", written.id).content["topics"] == ["negotiations"]
    with pytest.raises(UnknownReference) as caught:
        world.tag("statement", written.id, ["negotiations", "ghost-topic"])
    assert caught.value.field == "topics[1]"


def test_every_event_carries_the_import_batch(world: Timeline) -> None:
    # An import names its writer and batch once; the use case takes neither.
    with writing_as(Author(writer="admin-script", batch_id="batch-2025-02")):
        written = world.record("statement", statement())
    event: Any
    (event,) = world.history(written.id)
    assert (event.writer, event.batch_id) == (
        "admin-script",
        "batch-2025-02",
    )


def test_a_change_with_no_writer_named_fails_and_stores_nothing(world: Timeline) -> None:
    head = world.head_position()
    # Outside `writing_as` no event can be made: there is no default writer.
    with pytest.raises(NoWriter):
        world.record("statement", statement())
    with pytest.raises(NoWriter):
        world.register_actor({"id": "ghost", "name": "Ghost", "kind": "person"})
    assert world.head_position() == head
    # The writer named last is the one an event carries, and it ends with its block.
    with writing_as(Author("outer")):
        with writing_as(Author("inner", batch_id="b")):
            inner = world.record("statement", statement(key="inner"))
        outer = world.record("statement", statement(key="outer"))
    events: list[Any] = [*world.history(inner.id), *world.history(outer.id)]
    assert [(e.writer, e.batch_id) for e in events] == [("inner", "b"), ("outer", None)]
    with pytest.raises(NoWriter):
        world.retract("statement", inner.id, "no writer")


def test_several_aggregates_save_atomically(world: Timeline, author: Author) -> None:
    written = world.record("statement", statement())
    stale = world.get_record("statement", written.id)
    world.correct("statement", written.id, {"location": "Brussels"}, "first")
    head = world.head_position()
    fresh = world.get_actor("mark-rutte")
    fresh.add_alias(alias="Rutte")
    stale.retract(reason="stale")
    # One of the two is stale: neither is stored.
    with pytest.raises(ConcurrentWrite):
        world.save_atomically([fresh, stale])
    assert world.head_position() == head
    assert world.get_actor("mark-rutte").aliases == []
