"""Old stored events are upcast when read."""

from __future__ import annotations

import json

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from domain.application import Author, Timeline
from domain.ids import record_id
from domain.records import Statement, fingerprint
from tests.domain.conftest import statement


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
    old = StoredEvent(
        originator_id=record_id("statement", "v1-statement"),
        originator_version=1,
        topic=get_topic(Statement.Recorded),
        state=json.dumps(state).encode(),
    )
    world.recorder.insert_events([old])
    # Read today, it carries the fingerprint the current class expects...
    record = world.get_record("statement", record_id("statement", "v1-statement"))
    assert record.fingerprint == fingerprint(content)
    # ...so sending the same statement again is recognised as a duplicate.
    again = world.record("statement", {**statement(), "key": "v1-statement"}, author)
    assert again.duplicate
