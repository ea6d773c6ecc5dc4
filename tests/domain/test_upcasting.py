"""Old stored events are upcast when read."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from domain.application import Timeline
from domain.errors import KeyConflict
from domain.ids import record_id
from domain.records import Statement, content_print, fingerprint
from domain.writers import Author
from tests.domain.conftest import statement


def stored(key: str, state: dict[str, Any]) -> StoredEvent:
    """A Recorded event of a statement as an earlier release stored it."""
    return StoredEvent(
        originator_id=record_id("statement", key),
        originator_version=1,
        topic=get_topic(Statement.Recorded),
        state=json.dumps(state).encode(),
    )


def test_a_version_1_recorded_event_gets_its_fingerprint_on_read(
    world: Timeline, author: Author
) -> None:
    # A statement recorded by the first release, whose Recorded event had no fingerprint.
    content = dict(statement())
    content["topics"], content["mentions"] = ["territory"], ["vladimir-putin"]
    state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2025-02-13T10:00:00+00:00"},
        "originator_topic": get_topic(Statement),
        "key": "v1-statement",
        "content": content,
        "writer": "first-release",
        "batch_id": None,
    }
    world.recorder.insert_events([stored("v1-statement", state)])
    # Read today, it carries the fingerprint the current class expects...
    record = world.get_record("statement", record_id("statement", "v1-statement"))
    assert record.fingerprint == content_print(content)
    # ...so sending the same statement again is recognised as a duplicate.
    again = world.record("statement", {**statement(), "key": "v1-statement"})
    assert again.duplicate


def test_a_version_2_recorded_event_is_the_same_content_in_any_order_of_its_sets(
    world: Timeline, author: Author
) -> None:
    # A statement recorded by the release whose fingerprint read lists in order.
    content = dict(statement(topics=["territory", "negotiations"]))
    content["mentions"] = ["vladimir-putin", "donald-trump"]
    state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2025-02-13T10:00:00+00:00"},
        "originator_topic": get_topic(Statement),
        "key": "v2-statement",
        "content": content,
        "fingerprint": fingerprint(content),
        "writer": "second-release",
        "batch_id": None,
        "class_version": 2,
    }
    world.recorder.insert_events([stored("v2-statement", state)])
    head = world.head_position()
    body = {**statement(), "key": "v2-statement"}
    # The same body, its lists in the order stored: a duplicate, as it always was.
    same = {**body, "topics": content["topics"], "mentions": content["mentions"]}
    assert world.record("statement", same).duplicate
    # Its topics and mentions in another order: the same content, a duplicate too.
    other_order = {
        **body,
        "topics": ["negotiations", "territory"],
        "mentions": ["donald-trump", "vladimir-putin"],
    }
    assert world.record("statement", other_order).duplicate
    # Other topics are other content: a conflict, naming the key.
    with pytest.raises(KeyConflict) as conflict:
        world.record("statement", {**body, "topics": ["territory"]})
    assert conflict.value.field == "key"
    # The repeats stored nothing.
    assert world.head_position() == head
