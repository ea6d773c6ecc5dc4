"""A runner builds its next batch while the last one is written (decision 010): what it
stores must be what one batch at a time would store, and a write that fails must take the
batch built on it down with it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain.application import Timeline
from domain.writers import Author
from projections.sqlview import SqlView
from projections.timeline import TimelineProjection
from projections.workers import ReadModels, Runner
from service.files.backfill import load, load_files, seed_files
from tests.projections.workers_support import in_sql


def _changes() -> list[tuple[int, bytes]]:
    """A correction of every seed record, a source on each, and a retraction of every
    third: a record's changes follow each other, so that in batches of three one often
    lands in the batch after another."""
    keys = [
        (json.loads(line)["type"], json.loads(line)["key"])
        for path in seed_files()
        if path.name.startswith("3-")
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    lines: list[dict[str, Any]] = []
    for n, (kind, key) in enumerate(keys):
        target = {"kind": kind, "key": key}
        change = {"location": f"Place {n}"}
        lines.append({"type": "correction", "target": target, "changes": change, "reason": "x"})
        lines.append(
            {
                "type": "source",
                "target": target,
                "source": {"publisher": "Wire", "url": f"https://example.org/{n}"},
            }
        )
        if n % 3 == 0:
            lines.append({"type": "retraction", "target": target, "reason": "withdrawn"})
    return [(n, json.dumps(line).encode()) for n, line in enumerate(lines, start=1)]


def _history(timeline: Timeline) -> None:
    load_files(timeline, seed_files(), Author("seed"))
    report = load(timeline, _changes(), Author("editor"))
    assert not report.rejected, report.rejected[:3]


def _stored(view: SqlView) -> list[tuple[Any, ...]]:
    """Every row version and link, by entity and position (row ids come from a
    sequence, so they are left out)."""
    p = view.prefix
    rows = view.query(
        f"SELECT kind, ref, from_pos, to_pos, first_pos, body, state FROM {p}_rows "
        "ORDER BY kind, ref, from_pos"
    )
    links = view.query(
        f"SELECT r.kind, r.ref, r.from_pos, l.rel, l.value, l.from_pos, l.to_pos "
        f"FROM {p}_links l JOIN {p}_rows r ON r.row_id = l.row_id ORDER BY 1, 2, 3, 4, 5"
    )
    return [*rows, ("links",), *links]


def _reference(timeline: Timeline, read_models: ReadModels) -> list[tuple[Any, ...]]:
    """The same log applied in one batch, written in place, in a generation of its own."""
    view = in_sql(read_models.make_view(9))
    view.drop_tables()
    view.create_tables()
    view.pipelined = False
    Runner(timeline, TimelineProjection(view), batch_size=100_000).catch_up()
    return _stored(view)


def test_batches_of_three_built_while_the_last_is_written_store_what_one_batch_does(
    timeline: Timeline, read_models: ReadModels
) -> None:
    _history(timeline)
    # Applied three events at a time: a record changed in one batch changes again in the
    # next, while the first is still being written.
    runner = read_models.runner()
    runner.batch_size = 3
    log = timeline.recorder.select_notifications(start=1, limit=100_000)
    assert runner.catch_up() == len(log)
    view = in_sql(read_models.view())
    assert view.position() == timeline.head_position()
    assert _stored(view) == _reference(timeline, read_models)


def test_a_failed_write_drops_the_batch_built_on_it_and_the_next_step_resumes(
    timeline: Timeline, read_models: ReadModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    _history(timeline)
    runner = read_models.runner()
    runner.batch_size = 10
    view = in_sql(runner.view)
    commit = view.commit
    calls = {"n": 0}

    def failing_second(*args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("connection lost mid-commit")
        commit(*args)

    monkeypatch.setattr(view, "commit", failing_second)
    # The first batch is stored; the second one's write fails. On a pipelined view it
    # fails behind the step that handed it over, and the next step, having built the
    # third batch on it, finds out.
    runner.step()
    if view.pipelined:
        runner.step()
    with pytest.raises(RuntimeError, match="connection lost"):
        runner.step()
    runner.flush()
    log = timeline.recorder.select_notifications(start=1, limit=100_000)
    assert view.position() == log[9].id
    # The next run starts again from what is stored and ends where one batch would.
    assert runner.catch_up() == len(log) - 10
    assert _stored(view) == _reference(timeline, read_models)
