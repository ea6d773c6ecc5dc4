"""Backups that keep history: `export --format events` writes the whole log, and `restore`
loads it into an empty store with the same positions, ids, versions, recorded times and
read models, so that every answer as of an earlier point is the same as before."""

from __future__ import annotations

import gzip
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import Notification, StoredEvent
from litestar.testing import TestClient
from typer.testing import CliRunner

from domain.application import Timeline
from domain.ids import record_id
from domain.writers import Author, writing_as
from projections.workers import ReadModels
from service import cli
from service.files.backfill import REVIEW_FILE, load_files, seed_files
from service.files.backup import BackupRefused, export_events, read_backup, restore_events
from service.http.app import create_app, wire
from service.settings import Settings
from service.store.commits import StoreTimeline
from service.store.database import Store, open_timeline, parse_url
from service.store.keys import open_keys
from service.store.readmodels import open_read_models

EDITOR = Author("editor")
RUTTE = record_id("statement", "rutte-not-another-square-mile")
PEKAR = record_id("statement", "pekar-cold-anger")


class Opened:
    """A store of one kind, its write model and read models; closed at teardown."""

    def __init__(self, kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.kind, self.tmp_path, self.request = kind, tmp_path, request
        self.timelines: list[Timeline] = []
        self.read_models: list[ReadModels] = []

    def url(self) -> str:
        if self.kind == "memory":
            return "memory://"
        if self.kind == "sqlite":
            return f"sqlite:///{self.tmp_path}/store-{uuid.uuid4().hex[:8]}"
        database: str = self.request.getfixturevalue("postgres_database")
        return f"{database}?schema=backup_{uuid.uuid4().hex[:12]}"

    def store(self, url: str | None = None) -> tuple[Store, StoreTimeline]:
        store = parse_url(url or self.url(), pool_size=5)
        timeline = open_timeline(store)
        self.timelines.append(timeline)
        return store, timeline

    def models(self, store: Store, timeline: Timeline) -> ReadModels:
        models = open_read_models(store, timeline)
        self.read_models.append(models)
        return models

    def close(self) -> None:
        for models in self.read_models:
            models.close()
        for timeline in self.timelines:
            timeline.close()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opened]:
    opened = Opened(str(request.param), tmp_path, request)
    yield opened
    opened.close()


@pytest.fixture(params=["sqlite", "postgres"])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opened]:
    opened = Opened(str(request.param), tmp_path, request)
    yield opened
    opened.close()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _history(timeline: Timeline) -> list[tuple[int, str]]:
    """The seed and its review, then corrections, a retraction, a new source, topic moves
    and an actor's roles: the position and an instant after each step."""
    with writing_as(EDITOR):
        marks: list[tuple[int, str]] = []

        def mark() -> None:
            marks.append((timeline.head_position(), _now()))

        assert load_files(timeline, seed_files(), Author("seed")).rejected == []
        mark()
        assert load_files(timeline, [REVIEW_FILE], Author("demo-review")).rejected == []
        mark()
        timeline.correct("statement", RUTTE, {"location": "NATO headquarters"}, "place")
        timeline.retract("statement", PEKAR, "not a statement of record")
        timeline.add_source(
            "statement", RUTTE, {"publisher": "Wire", "url": "https://example.org/rutte"}
        )
        mark()
        timeline.move_topic("crimea", "international-relations")
        timeline.assume_role("mark-rutte", {"title": "Secretary General", "since": "2024-10"})
        mark()
        timeline.move_topic("crimea", "territory")
        timeline.end_role("mark-rutte", "Secretary General", "2025-02")
        timeline.correct("statement", RUTTE, {"occurred_at": "2025-02-12"}, "day")
        mark()
        return marks


def _events(timeline: Timeline) -> list[tuple[Any, ...]]:
    """Every event as stored, with its position and its recorded time."""
    notes = timeline.recorder.select_notifications(start=1, limit=10**6)
    return [(*_row(n), timeline.mapper.to_domain_event(n).timestamp) for n in notes]  # type: ignore[attr-defined]


def _questions(marks: list[tuple[int, str]]) -> list[tuple[str, dict[str, Any]]]:
    """What the API is asked, at every mark by position and by instant, and now."""
    paths: list[tuple[str, dict[str, Any]]] = [
        ("/timeline", {"limit": 500}),
        ("/timeline", {"limit": 500, "topic": "negotiations"}),
        ("/timeline", {"limit": 500, "q": "Putin"}),
        ("/topics/negotiations/who-said-what", {}),
        ("/topics", {}),
        ("/actors/mark-rutte", {}),
        (f"/statements/{RUTTE}/history", {}),
        (f"/statements/{RUTTE}", {}),
    ]
    asked = list(paths)
    for position, instant in marks:
        asked += [(path, {**params, "as_of_position": position}) for path, params in paths]
        asked += [(path, {**params, "as_of": instant}) for path, params in paths]
        asked.append(("/changes", {"from_position": 0, "to_position": position, "limit": 500}))
        asked.append(("/changes", {"to": instant, "limit": 500}))
    return asked


def _answers(
    store: Store,
    timeline: StoreTimeline,
    models: ReadModels,
    asked: list[tuple[str, dict[str, Any]]],
) -> list[tuple[int, Any]]:
    services = wire(Settings(database_url=store.url), store, timeline, models)
    with TestClient(create_app(built=services, run_projections=False)) as client:
        return [(r.status_code, r.json()) for r in (client.get(p, params=q) for p, q in asked)]


def test_a_restored_store_has_every_event_and_answers_as_before_at_every_point(
    stores: Opened,
) -> None:
    # A history with corrections, retractions, sources, topic moves and roles...
    source, timeline = stores.store()
    marks = _history(timeline)
    models = stores.models(source, timeline)
    models.catch_up()
    # ...written out whole...
    backup = io.BytesIO()
    summary = export_events(timeline, backup)
    events = _events(timeline)
    assert (summary.count, summary.head) == (len(events), marks[-1][0])
    asked = _questions(marks)
    before = _answers(source, timeline, models, asked)  # (closes the store)
    # ...and restored into an empty store of the same kind.
    target, restored = stores.store()
    backup.seek(0)
    assert restore_events(restored, read_backup(backup)) == summary
    again = stores.models(target, restored)
    again.catch_up()
    # Every event: position, id, version, topic, state and recorded time.
    assert _events(restored) == events
    # Every answer, now and as of each point, by position and by instant.
    after = _answers(target, restored, again, asked)
    assert [status for status, _ in before] == [200] * len(asked)
    for question, old, new in zip(asked, before, after, strict=True):
        assert new == old, question


def _seeded_backup(timeline: Timeline) -> io.BytesIO:
    """The seed loaded into `timeline`, and its backup."""
    load_files(timeline, seed_files(), Author("seed"))
    backup = io.BytesIO()
    export_events(timeline, backup)
    return backup


def test_a_store_that_holds_an_event_is_refused_and_left_as_it_was(stores: Opened) -> None:
    _, timeline = stores.store()
    backup = _seeded_backup(timeline)
    _, other = stores.store()
    with writing_as(EDITOR):
        other.register_actor({"id": "someone", "name": "Someone", "kind": "person"})
    backup.seek(0)
    with pytest.raises(BackupRefused, match="holds events"):
        restore_events(other, read_backup(backup))
    assert other.head_position() == 1


def _damaged(backup: bytes) -> dict[str, bytes]:
    lines = backup.splitlines(keepends=True)
    event = json.loads(lines[5])
    event["state"] = event["state"].replace("seed", "seeD")
    header = json.loads(lines[0])
    return {
        "truncated": b"".join(lines[:-1]),
        "cut mid-line": backup[: len(backup) // 2],
        "a line lost": b"".join(lines[:5] + lines[6:]),
        "a state changed": b"".join([*lines[:5], json.dumps(event).encode() + b"\n", *lines[6:]]),
        "another version": b"".join(
            [json.dumps({**header, "version": 2}).encode() + b"\n", *lines[1:]]
        ),
        "not a backup": b'{"type":"actor","id":"x","name":"X","kind":"person"}\n',
        "empty": b"",
        "text after the end": backup + lines[1],
    }


def test_a_truncated_or_corrupted_file_is_refused_and_writes_nothing(stores: Opened) -> None:
    _, timeline = stores.store()
    backup = _seeded_backup(timeline)
    _, empty = stores.store()
    for damage, data in _damaged(backup.getvalue()).items():
        with pytest.raises(BackupRefused):
            restore_events(empty, read_backup(io.BytesIO(data)))
        assert empty.head_position() == 0, damage
    # The whole file still restores into it, and the next event follows the last one.
    summary = restore_events(empty, read_backup(io.BytesIO(backup.getvalue())))
    assert _events(empty) == _events(timeline)
    with writing_as(EDITOR):
        written = empty.correct("statement", RUTTE, {"location": "Mons"}, "city")
    assert written.position == summary.head + 1


def test_a_store_whose_states_are_compressed_travels_in_base64() -> None:
    # A store configured to compress its events' states: they are not text.
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.popo",
        "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
    }
    timeline = open_timeline(Store("memory://", "memory", env))
    backup = _seeded_backup(timeline)
    event = json.loads(backup.getvalue().splitlines()[1])
    assert "state" not in event
    assert event["recorded_at"].startswith(str(datetime.now(UTC).year))
    # Restored into a store configured alike, every event is the same.
    restored = open_timeline(Store("memory://", "memory", env))
    restore_events(restored, read_backup(io.BytesIO(backup.getvalue())))
    assert _events(restored) == _events(timeline)


def _cli(args: list[str], url: str, stdin: bytes | None = None) -> Any:
    env = {"TIMELINE_DATABASE_URL": url, "TIMELINE_POOL_SIZE": "5"}
    return CliRunner().invoke(cli.app, args, env=env, input=stdin)


def test_the_commands_round_trip_through_a_gzip_file_and_through_stdout(
    durable: Opened, tmp_path: Path
) -> None:
    # A store with history, and its read models caught up.
    url = durable.url()
    source, timeline = durable.store(url)
    marks = _history(timeline)
    models = durable.models(source, timeline)
    models.catch_up()
    events = _events(timeline)
    # An API key of the store, which a backup does not hold.
    open_keys(source, timeline).create("backup-probe-key", "admin")
    asked = _questions(marks[-2:])
    before = _answers(source, timeline, models, asked)  # (closes the store)
    # To a gzip file, and back into an empty store: its read models are built.
    path = tmp_path / "log.ndjson.gz"
    exported = _cli(["export", "--format", "events", "-o", str(path)], url)
    assert exported.exit_code == 0, exported.output
    lines = gzip.decompress(path.read_bytes()).splitlines()
    assert json.loads(lines[0])["head"] == marks[-1][0]
    assert json.loads(lines[-1])["count"] == len(lines) - 2
    target_url = durable.url()
    restored = _cli(["restore", str(path)], target_url)
    assert restored.exit_code == 0, restored.output
    assert f"up to position {marks[-1][0]}" in restored.output
    target, again = durable.store(target_url)
    assert _events(again) == events
    again_models = durable.models(target, again)
    assert open_keys(target, again).list() == []
    assert b"backup-probe-key" not in gzip.decompress(path.read_bytes())
    assert _answers(target, again, again_models, asked) == before
    # A second restore into it is refused, with a message and a non-zero status.
    refused = _cli(["restore", str(path)], target_url)
    assert refused.exit_code == 2
    assert "holds events" in refused.output
    # Through stdout and stdin.
    piped = _cli(["export", "--format", "events", "-o", "-"], url)
    assert piped.exit_code == 0
    third_url = durable.url()
    assert _cli(["restore", "-"], third_url, stdin=piped.stdout_bytes).exit_code == 0
    _, third = durable.store(third_url)
    assert _events(third) == events
    # A truncated file, plain or gzip: refused, and nothing restored.
    cut = tmp_path / "cut.ndjson"
    cut.write_bytes(b"\n".join(lines[:-1]) + b"\n")
    cut_gzip = tmp_path / "cut.ndjson.gz"
    cut_gzip.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    fourth_url = durable.url()
    for damaged, says in ((cut, "truncated"), (cut_gzip, "cannot be read to its end")):
        truncated = _cli(["restore", str(damaged)], fourth_url)
        assert truncated.exit_code == 2
        assert says in truncated.output
        assert "nothing was restored" in truncated.output
    _, fourth = durable.store(fourth_url)
    assert fourth.head_position() == 0


def test_every_export_format_writes_to_stdout(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store"
    assert _cli(["seed"], url).exit_code == 0
    for fmt in ("ndjson", "csv", "timelinejs", "events"):
        result = _cli(["export", "--format", fmt, "-o", "-"], url)
        assert result.exit_code == 0, (fmt, result.output)
        to_file = _cli(["export", "--format", fmt, "-o", str(tmp_path / fmt)], url)
        assert to_file.exit_code == 0
        if fmt != "events":  # (an events file says when it was made)
            assert result.stdout_bytes == (tmp_path / fmt).read_bytes(), fmt


def test_the_memory_store_cannot_be_restored_by_the_command(tmp_path: Path) -> None:
    path = tmp_path / "log.ndjson"
    assert _cli(["export", "--format", "events", "-o", str(path)], "memory://").exit_code == 0
    result = _cli(["restore", str(path)], "memory://")
    assert result.exit_code == 2
    assert "one process" in result.output


def _copies(timeline: Timeline, events: int) -> int:
    """The seed's events, copied under new ids until the log holds `events`: a large log
    in seconds (a real history is made at a few thousand events a second)."""
    seed = open_timeline(parse_url("memory://"))
    load_files(seed, seed_files(), Author("seed"))
    notes = seed.recorder.select_notifications(start=1, limit=1000)
    written = 0
    for copy in range(events // len(notes) + 1):
        batch = [
            StoredEvent(
                uuid.uuid5(uuid.NAMESPACE_URL, f"{n.originator_id}/{copy}"),
                n.originator_version,
                n.topic,
                n.state,
            )
            for n in notes[: events - written]
        ]
        for start in range(0, len(batch), 5000):
            timeline.recorder.insert_events(batch[start : start + 5000])
        written += len(batch)
    return written


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_hundred_thousand_events_round_trip(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    stores = Opened(kind, tmp_path, request)
    try:
        # A log of 100,000 events, through a file into an empty store...
        _, timeline = stores.store()
        assert _copies(timeline, 100_000) == 100_000
        backup = tmp_path / "log.ndjson"
        with backup.open("wb") as out:
            assert export_events(timeline, out).count == 100_000
        _, restored = stores.store()
        with backup.open("rb") as lines:
            assert restore_events(restored, read_backup(lines)).count == 100_000
        # ...holds every event at its position, compared a page at a time.
        after = 0
        while page := timeline.recorder.select_notifications(
            start=after, limit=5000, inclusive_of_start=False
        ):
            again = restored.recorder.select_notifications(
                start=after, limit=5000, inclusive_of_start=False
            )
            assert [_row(n) for n in again] == [_row(n) for n in page]
            after = page[-1].id
        assert after == restored.head_position() == 100_000
    finally:
        stores.close()


def _row(n: Notification) -> tuple[Any, ...]:
    return (n.id, n.originator_id, n.originator_version, n.topic, n.state)
