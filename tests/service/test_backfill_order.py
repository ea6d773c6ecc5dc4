"""The order a backfill applies its lines in: each record followed by the lines of the
same file that change it, so that a record and its changes share a batch (decision 011);
changes of stored records, and changes with a target that is not valid, after all
records."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any
from uuid import UUID

from domain.application import Timeline
from domain.ids import record_id
from domain.writers import Author
from service.files.backfill import Sorter, load, open_lines
from tests.service.test_backfill import BBC, ndjson, statement


def change(kind: str, target: dict[str, str], **body: Any) -> dict[str, Any]:
    return {"type": kind, "target": {"kind": "statement", **target}, **body}


def correction(key: str, location: str) -> dict[str, Any]:
    return change("correction", {"key": key}, changes={"location": location}, reason="placed")


ACTORS = [{"type": "actor", "id": "mark-rutte", "name": "Mark Rutte", "kind": "person"}]
TOPICS = [{"type": "topic", "id": "territory", "label": "Territory"}]
SOURCE = {"publisher": "Reuters", "url": "https://www.reuters.com/example"}


def file_lines() -> list[dict[str, Any]]:
    """Line n of the file is item n - 1."""
    return [
        correction("b", "Kyiv"),  # 1: before its record
        statement("a", "2025-02-13"),  # 2
        correction("a", "Brussels"),  # 3
        change("correction", {"kind": "speech", "key": "a"}, changes={}, reason="x"),  # 4
        statement("b", "2025-02-12"),  # 5
        change("source", {"id": str(record_id("statement", "a"))}, source=SOURCE),  # 6: by id
        correction("stored", "Paris"),  # 7: a record of an earlier import
        correction("a", "Munich"),  # 8: a's second correction, after the first
        *ACTORS,  # 9
        *TOPICS,  # 10
        statement("c", "2025-02-11"),  # 11: no changes
    ]


def test_each_record_is_read_back_with_its_changes_and_the_rest_after_all_records(
    tmp_path: Path,
) -> None:
    path = ndjson(tmp_path / "f.ndjson", file_lines())
    with Sorter() as sorter:
        for number, raw in open_lines(path):
            sorter.add(number, raw, json.loads(raw))
        order = [number for number, _ in sorter.entries()]
    assert order == [9, 10, 2, 3, 6, 8, 5, 1, 11, 4, 7]


def test_a_record_and_its_changes_are_stored_at_consecutive_positions(
    timeline: Timeline, tmp_path: Path
) -> None:
    by = Author("importer")
    earlier = ndjson(tmp_path / "earlier.ndjson", [*ACTORS, *TOPICS, statement("stored", "2024")])
    assert load(timeline, open_lines(earlier), by).rejected == []
    path = ndjson(tmp_path / "f.ndjson", file_lines())
    # Batches of 3 lines: the actor, the topic and `a`; `a`'s three changes; `b`, its
    # correction and `c`; the rest. (A batch stores each aggregate's events together, so
    # a record's changes are next to it when they share its batch or follow it.)
    report = load(timeline, open_lines(path), by, batch_size=3)
    # The bad target is refused by name; every other line is applied, the actors and
    # topics again as duplicates.
    assert [(r.line, r.error.split(":")[0]) for r in report.rejected] == [(4, "target.kind")]
    assert (report.accepted, report.duplicates) == (8, 2)
    positions: dict[UUID | str, list[int]] = defaultdict(list)
    for note in timeline.recorder.select_notifications(start=0, limit=100):
        positions[note.originator_id].append(note.id)
    a, b, stored = (record_id("statement", k) for k in ("a", "b", "stored"))
    assert positions[a] == list(range(positions[a][0], positions[a][0] + 4))
    assert positions[b] == [positions[a][-1] + 1, positions[a][-1] + 2]
    assert positions[stored][-1] == timeline.head_position()  # after all records
    # A record's changes apply in the order of the file.
    assert timeline.get_record("statement", a).content["location"] == "Munich"
    assert timeline.get_record("statement", b).content["location"] == "Kyiv"
    assert [s["url"] for s in timeline.get_record("statement", a).content["sources"]] == [
        BBC["url"],
        SOURCE["url"],
    ]


def test_a_batch_that_meets_a_stored_line_is_done_again_with_the_one_built_on_it(
    timeline: Timeline, tmp_path: Path
) -> None:
    # Batches are built while the one before is stored; the second batch holds `r4`,
    # stored already, so its optimistic save fails after the third was built on it.
    records = [statement(f"r{n}", "2025-02-13") for n in range(9)]
    lines = [*ACTORS, *TOPICS]
    for n, record in enumerate(records):
        lines += [record, correction(f"r{n}", f"City {n}")]
    by = Author("importer")
    earlier = ndjson(tmp_path / "earlier.ndjson", [*ACTORS, *TOPICS, records[4]])
    assert load(timeline, open_lines(earlier), by).rejected == []
    head = timeline.head_position()
    report = load(timeline, open_lines(ndjson(tmp_path / "f.ndjson", lines)), by, batch_size=6)
    # Everything but the three lines stored before is added, each once.
    assert (report.accepted, report.duplicates, report.rejected) == (17, 3, [])
    # (PostgreSQL may skip positions that a failed save had drawn: events are counted.)
    added = timeline.recorder.select_notifications(start=head, limit=100, inclusive_of_start=False)
    assert len(added) == 17
    assert (report.first_position, report.last_position) == (added[0].id, added[-1].id)
    for n in range(9):
        rec = timeline.get_record("statement", record_id("statement", f"r{n}"))
        assert (rec.version, rec.content["location"]) == (2, f"City {n}")
