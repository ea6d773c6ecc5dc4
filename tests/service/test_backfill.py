"""Backfill: bulk, idempotent, resumable imports, in any order, reported line by line."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from domain.application import Timeline
from domain.ids import record_id
from domain.writers import Author, writing_as
from projections.view import TimelineQuery
from projections.workers import ReadModels
from service.files.backfill import load, open_lines
from service.store.database import Store, open_timeline
from tests.projections.workers_support import wait_until

BBC = {"publisher": "BBC News", "url": "https://www.bbc.com/news/example"}


def ndjson(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def statement(key: str, day: str, speaker: str = "mark-rutte", **more: Any) -> dict[str, Any]:
    return {
        "type": "statement",
        "key": key,
        "speaker": speaker,
        "quote": f"words {key}",
        "occurred_at": day,
        "channel": "speech",
        "topics": ["territory"],
        "sources": [BBC],
        **more,
    }


# Records first, then the topics (child before parent) and actors they need: a file in
# any order.
OUT_OF_ORDER = [
    statement("s-2025", "2025-02-13"),
    statement("s-2014", "2014-03-18", speaker="vladimir-putin"),
    {
        "type": "correction",
        "target": {"kind": "statement", "key": "s-2014"},
        "changes": {"location": "Moscow"},
        "reason": "place confirmed",
    },
    {
        "type": "source",
        "target": {"kind": "statement", "key": "s-2025"},
        "source": {"publisher": "Reuters", "url": "https://www.reuters.com/example"},
    },
    {"type": "topic", "id": "territory", "label": "Territory", "parent": "negotiations"},
    {"type": "topic", "id": "negotiations", "label": "Negotiations"},
    {"type": "actor", "id": "mark-rutte", "name": "Mark Rutte", "kind": "person"},
    {"type": "actor", "id": "vladimir-putin", "name": "Vladimir Putin", "kind": "person"},
]


def run(timeline_: Timeline, path: Path, **options: Any) -> Any:
    return load(timeline_, open_lines(path), Author("importer", batch_id="b1"), **options)


def test_a_file_in_any_order_imports_and_a_second_run_adds_nothing(
    timeline: Timeline, tmp_path: Path
) -> None:
    path = ndjson(tmp_path / "history.ndjson", OUT_OF_ORDER)
    # Forward references are resolved: every line is accepted.
    first = run(timeline, path, batch_size=3)
    assert (first.accepted, first.duplicates, first.rejected) == (8, 0, [])
    assert first.last_position == timeline.head_position()
    rec = timeline.get_record("statement", record_id("statement", "s-2014"))
    assert rec.content["location"] == "Moscow"
    # The same file again: every line found stored, no event added.
    head = timeline.head_position()
    second = run(timeline, path)
    assert (second.accepted, second.duplicates, second.rejected) == (0, 8, [])
    assert timeline.head_position() == head
    # Each event carries the import's batch id.
    event: Any
    (event,) = [e for e in timeline.history(rec.id) if type(e).__name__ == "Recorded"]
    assert event.batch_id == "b1"


def test_a_dry_run_checks_every_line_and_writes_nothing(timeline: Timeline, tmp_path: Path) -> None:
    path = ndjson(tmp_path / "h.ndjson", [*OUT_OF_ORDER, statement("bad", "2025-02-30")])
    report = run(timeline, path, dry_run=True)
    assert report.accepted == 8
    assert [(r.line, r.key) for r in report.rejected] == [(9, "bad")]
    assert "occurred_at" in report.rejected[0].error
    assert timeline.head_position() == 0


def test_a_dry_run_in_small_batches_reports_what_the_import_then_does(
    timeline: Timeline, tmp_path: Path
) -> None:
    # Corrections and sources land in a later batch than the records they target.
    path = ndjson(tmp_path / "h.ndjson", [*OUT_OF_ORDER, statement("bad", "2025-02-30")])
    dry = run(timeline, path, dry_run=True, batch_size=2)
    assert timeline.head_position() == 0
    real = run(timeline, path, batch_size=2)
    assert (dry.accepted, dry.duplicates) == (real.accepted, real.duplicates) == (8, 0)
    assert [(r.line, r.key) for r in dry.rejected] == [(r.line, r.key) for r in real.rejected]
    assert [(r.line, r.key) for r in dry.rejected] == [(9, "bad")]


@pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)  # read in bulk
def test_a_dry_run_and_an_atomic_import_look_up_what_a_batch_creates_once(
    timeline: Timeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One read a batch of what its lines would create, not one a line: a dry run used to
    # ask the store for each new record, and ran five times slower than the import.
    lines = [*OUT_OF_ORDER, *(statement(f"extra-{n}", "2025-02-13") for n in range(20))]
    path = ndjson(tmp_path / "h.ndjson", lines)
    asked: list[object] = []
    get = timeline.repository.get

    def counted(*args: Any, **kwargs: Any) -> Any:
        asked.append(args)
        return get(*args, **kwargs)

    monkeypatch.setattr(timeline.repository, "get", counted)
    dry = run(timeline, path, dry_run=True, batch_size=10)
    atomic = run(timeline, path, atomic=True, batch_size=10)
    assert (dry.accepted, atomic.accepted, dry.rejected, atomic.rejected) == (28, 28, [], [])
    assert asked == []


def test_an_atomic_import_with_one_bad_line_writes_nothing_and_names_the_line(
    timeline: Timeline, tmp_path: Path
) -> None:
    path = ndjson(
        tmp_path / "h.ndjson", [*OUT_OF_ORDER, statement("ghost", "2025-02-13", speaker="nobody")]
    )
    report = run(timeline, path, atomic=True)
    assert report.accepted == 0
    assert [(r.line, r.key) for r in report.rejected] == [(9, "ghost")]
    assert "speaker" in report.rejected[0].error
    assert timeline.head_position() == 0
    # Without the bad line, the atomic import stores it all.
    good = ndjson(tmp_path / "good.ndjson", OUT_OF_ORDER)
    assert run(timeline, good, atomic=True).accepted == 8


def test_a_correction_by_key_from_a_later_file(timeline: Timeline, tmp_path: Path) -> None:
    run(timeline, ndjson(tmp_path / "a.ndjson", OUT_OF_ORDER))
    later = ndjson(
        tmp_path / "b.ndjson",
        [
            {
                "type": "correction",
                "target": {"kind": "statement", "key": "s-2025"},
                "changes": {"occurred_at": "2025-02-12"},
                "reason": "it was Wednesday",
            },
            {
                "type": "retraction",
                "target": {"kind": "statement", "key": "s-2014"},
                "reason": "misattributed",
            },
            {
                "type": "correction",
                "target": {"kind": "statement", "key": "never-seen"},
                "changes": {"location": "X"},
                "reason": "?",
            },
        ],
    )
    report = run(timeline, later)
    assert report.accepted == 2
    assert [(r.line, r.key) for r in report.rejected] == [(3, "never-seen")]
    rec = timeline.get_record("statement", record_id("statement", "s-2025"))
    assert rec.content["occurred_at"] == "2025-02-12"


def test_gzip_files_are_read(timeline: Timeline, tmp_path: Path) -> None:
    path = tmp_path / "h.ndjson.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(x) + "\n" for x in OUT_OF_ORDER).encode()))
    assert run(timeline, path).accepted == 8


def test_history_stays_history_after_a_backfill(
    timeline: Timeline, read_models: ReadModels, tmp_path: Path
) -> None:
    run(timeline, ndjson(tmp_path / "a.ndjson", OUT_OF_ORDER))
    read_models.catch_up()
    view = read_models.view()
    before_position = view.position()
    asked = TimelineQuery(at=before_position, limit=500)
    answer_then = view.page(asked).items
    # Years of older history arrive later, with a correction of a known record.
    older = [statement(f"old-{n}", f"{2015 + n % 9}-0{1 + n % 9}-1{n % 9}") for n in range(40)]
    older.append(
        {
            "type": "correction",
            "target": {"kind": "statement", "key": "s-2025"},
            "changes": {"location": "Brussels"},
            "reason": "place",
        }
    )
    report = run(timeline, ndjson(tmp_path / "older.ndjson", older))
    assert report.accepted == 41
    read_models.catch_up()
    # As of before the backfill: byte for byte the same answer.
    assert view.page(asked).items == answer_then
    # Now: the backfilled records are in, in occurred order.
    current = [json.loads(i) for i in view.page(TimelineQuery(limit=500)).items]
    assert len(current) == len(answer_then) + 40
    assert [c["occurred_at"] for c in current] == sorted(c["occurred_at"] for c in current)


@pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)
def test_an_import_killed_mid_way_and_run_again_stores_each_line_once(
    store: Store, tmp_path: Path
) -> None:
    lines = list(OUT_OF_ORDER[4:]) + [
        statement(f"k-{n}", f"2020-01-{1 + n % 28:02d}") for n in range(3000)
    ]
    path = ndjson(tmp_path / "big.ndjson", lines)
    env = {
        **os.environ,
        "TIMELINE_DATABASE_URL": store.url
        + (f"?schema={store.env['POSTGRES_SCHEMA']}" if store.kind == "postgres" else ""),
    }
    command = [
        sys.executable,
        "-m",
        "service.cli",
        "backfill",
        str(path),
        "--batch-size",
        "100",
        "--report",
        str(tmp_path / "report.json"),
    ]
    # The first import is killed with SIGKILL part of the way through.
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    timeline_ = open_timeline(store)
    try:
        wait_until(
            "the first import has stored 600 events",
            lambda: timeline_.head_position() >= 600,
            seen=lambda: f"{timeline_.head_position()} events stored",
            processes=[first],
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        stored_before = len(timeline_.recorder.select_notifications(start=1, limit=10**6))
        assert 0 < stored_before < len(lines)
        # Run again: it finds what was stored, adds the rest, nothing twice.
        subprocess.run(
            command,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=300,
        )
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["rejected"] == []
        assert report["accepted"] + report["duplicates"] == len(lines)
        assert report["duplicates"] >= stored_before - 10  # whole batches were stored
        # One event per line, no more (positions may have gaps: count the events).
        events = timeline_.recorder.select_notifications(start=1, limit=10 * len(lines))
        assert len(events) == len(lines)
        assert len({(e.originator_id, e.originator_version) for e in events}) == len(lines)
    finally:
        timeline_.close()


@pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)
def test_a_correction_line_that_loses_races_to_an_api_client_is_applied_again(
    store: Store, timeline: Timeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(timeline, ndjson(tmp_path / "a.ndjson", OUT_OF_ORDER))
    target = record_id("statement", "s-2025")
    # Another process, an API client, corrects the same record...
    client = open_timeline(store)
    save = timeline.save
    rivals: list[str] = []

    def loses_to_the_client(*objs: Any, **kwargs: Any) -> Any:
        # ...just before each of the import's first four saves (the batch's, its two
        # tries as a unit of work, and the line's own), so that each of them fails.
        if len(rivals) < 4:
            rivals.append(f"Place {len(rivals)}")
            with writing_as(Author("api")):  # the client's write, in the saving thread
                client.correct("statement", target, {"location": rivals[-1]}, "moved")
        return save(*objs, **kwargs)

    monkeypatch.setattr(timeline, "save", loses_to_the_client)
    try:
        later = {
            "type": "correction",
            "target": {"kind": "statement", "key": "s-2025"},
            "changes": {"summary": "Rutte on territory"},
            "reason": "summarised",
        }
        report = run(timeline, ndjson(tmp_path / "b.ndjson", [later]))
    finally:
        client.close()
    # The line has no expected version: it is read again and applied, not rejected.
    assert (report.accepted, report.rejected) == (1, []), report.rejected
    assert len(rivals) == 4
    # The record holds the client's last correction and the import's.
    rec = timeline.get_record("statement", target)
    assert (rec.content["location"], rec.content["summary"]) == ("Place 3", "Rutte on territory")
