"""Rebuilding the view: in place from position 0, or beside the live one with
readers switched only once the new one has caught up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg

from domain.application import Timeline
from domain.writers import Author
from projections.view import TimelineQuery
from projections.workers import ReadModels
from service.files.backfill import load, load_files, seed_files
from service.store.database import open_timeline, parse_url
from tests.projections.workers_support import wait_until


def _ids(models: ReadModels) -> list[str]:
    page = models.view().page(TimelineQuery(limit=500))
    return [json.loads(item)["id"] for item in page.items]


def test_an_in_place_rebuild_gives_the_same_answers(
    timeline: Timeline, read_models: ReadModels
) -> None:
    load_files(timeline, seed_files(), Author("seed"))
    read_models.catch_up()
    before = _ids(read_models)
    # Rebuilt from position 0, the view reaches the head with the same answer.
    applied = read_models.rebuild()
    assert applied == timeline.head_position()
    assert read_models.view().position() == timeline.head_position()
    assert _ids(read_models) == before
    assert read_models.view().status()[0] == "running"


def test_a_rebuild_beside_switches_readers_without_a_moment_without_answers(
    timeline: Timeline, read_models: ReadModels
) -> None:
    load_files(timeline, seed_files(), Author("seed"))
    read_models.catch_up()
    expected = _ids(read_models)
    old_generation = read_models.view().generation
    # A reader asks again and again while the new generation is built and switched in.
    answers: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            answers.append(len(_ids(read_models)))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        read_models.rebuild_beside()
    finally:
        done.set()
        reader.join()
    # Every answer was whole, and readers now use the new generation.
    assert answers
    assert set(answers) == {len(expected)}
    view = read_models.view()
    assert view.generation == old_generation + 1
    assert view.generation_in_use() == old_generation + 1
    assert _ids(read_models) == expected


def test_the_rebuild_command_at_its_fewest_connections_waits_out_a_held_lock(
    postgres_database: str, tmp_path: Path
) -> None:
    # A history of records and their corrections (a batch of corrections reads rows while
    # the batch before it is written).
    url = f"{postgres_database}?schema=rebuild_{uuid.uuid4().hex[:12]}"
    app = open_timeline(parse_url(url))
    try:
        load_files(app, seed_files(), Author("seed"))
        lines = [
            json.dumps(line).encode()
            for n in range(3000)
            for line in (
                {**RECORD, "key": f"r{n}", "quote": f"words {n}"},
                {
                    "type": "correction",
                    "target": {"kind": "statement", "key": f"r{n}"},
                    "changes": {"location": f"City {n}"},
                    "reason": "placed",
                },
            )
        ]
        assert load(app, enumerate(lines, start=1), Author("importer")).rejected == []
        head = app.head_position()
    finally:
        app.close()
    env = {
        **os.environ,
        "TIMELINE_DATABASE_URL": url,
        "TIMELINE_POOL_SIZE": "5",
        "TIMELINE_BATCH_SIZE": "50",
    }
    rebuild = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "rebuild"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    store = parse_url(url)
    try:
        with psycopg.connect(store.conninfo(), autocommit=True) as conn:
            conn.execute(f"SET search_path = {store.env['POSTGRES_SCHEMA']}")
            # Once the rebuild has written a batch, another session locks its links for
            # 7 s (as maintenance would), longer than a connection was once waited for.
            wait_until("the rebuild wrote a batch", lambda: _tracked(conn) > 0, 120)
            with conn.transaction():
                conn.execute("LOCK TABLE rm_timeline_g1_links IN ACCESS EXCLUSIVE MODE")
                held_at = _tracked(conn)
                time.sleep(7)
            out, _ = rebuild.communicate(timeout=300)
    finally:
        if rebuild.poll() is None:
            rebuild.kill()
            rebuild.communicate()
    assert 0 < held_at < head, "the rebuild ended before the lock was taken"
    # The rebuild waited, then went on to the head.
    assert rebuild.returncode == 0, out
    assert f"at position {head}" in out


def _tracked(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """The rebuilt view's position (0 before its tables are made, or while the rebuild
    drops and makes them again)."""
    try:
        found = conn.execute("SELECT max(notification_id) FROM rm_timeline_g1_tracking").fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(found[0]) if found and isinstance(found[0], int) else 0


RECORD = {
    "type": "statement",
    "speaker": "mark-rutte",
    "occurred_at": "2025-02-13",
    "channel": "speech",
    "topics": ["negotiations"],
    "sources": [{"publisher": "BBC News", "url": "https://www.bbc.com/news/x"}],
}
