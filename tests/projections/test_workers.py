"""The projection workers under load and faults: concurrent writers, SIGKILL mid-batch,
a hot standby taking over, a poison event, and read-your-writes latency.

Workers run as `timeline project` processes (or `ReadModels.start()` in this process)
against a fresh PostgreSQL schema (or SQLite file) per test; every process is ours, on
127.0.0.1, bounded in time and killed in `finally`. Figures are printed (`pytest -s`).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import Tracking

from domain.application import Timeline
from domain.ids import record_id
from domain.records import Record
from domain.writers import writing_as
from projections.timeline import TimelineProjection
from projections.workers import ReadModels, Status
from service.store.database import open_timeline, parse_url
from service.store.readmodels import open_read_models
from tests.conftest import make_store
from tests.projections.workers_support import (
    AUTHOR,
    CONFLICT_WARNING,
    NAMES,
    PATIENCE,
    TOPICS,
    Worker,
    Workers,
    body,
    current_refs,
    digest,
    fresh_schema,
    head,
    in_sql,
    integrity_problems,
    lease_holders,
    open_batches,
    percentile,
    positions,
    seed,
    sessions,
    summary,
    view_reached,
    wait_until,
    write_model_mismatches,
    writers,
)

RUNS = 5
RECORDS_PER_WRITER = int(os.environ.get("TIMELINE_TEST_RECORDS_PER_WRITER", "500"))
RECORD_KINDS = ("statement", "announcement", "occurrence")


@pytest.fixture(autouse=True)
def _writer() -> Iterator[None]:
    """The writer of this module's own writes (the writers' threads name theirs)."""
    with writing_as(AUTHOR):
        yield


# 1. Concurrent writers ------------------------------------------------------------------


# The full size (make chaos): 10,000 records per writer, each writer a process's worth of
# 8 threads sharing transactions by group commit, so that 4 committers race at once.
SIZES = [
    pytest.param(RECORDS_PER_WRITER, 1, id="small"),
    pytest.param(10_000, 8, id="10k-per-writer", marks=pytest.mark.chaos),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("per_writer", "threads"), SIZES)
@pytest.mark.parametrize("run", range(RUNS))
def test_four_writers_race_a_following_worker_and_every_record_is_projected_exactly_once(
    run: int, per_writer: int, threads: int, postgres_database: str, tmp_path: Path
) -> None:
    pg = fresh_schema(postgres_database)
    # The store gets its actors and topics; four writers open their own write models
    # (one after another: the library's table creation is not safe to run concurrently).
    main = pg.timeline()
    apps = [pg.timeline() for _ in range(4)]
    if threads > 1:
        for app in apps:
            app.enable_group_commit()
    seed(main)
    conn = pg.connect()
    try:
        with Workers(tmp_path) as workers:
            # A worker process follows the head of the log.
            worker = workers.start(pg.url, f"follow-{run}")
            _projected(conn, "the worker has projected the seed", worker)
            # Four writers each record N statements or occurrences, tagging every tenth.
            done = [threading.Event() for _ in apps]
            errors: list[BaseException] = []
            workers_threads = [
                threading.Thread(
                    target=_write_records,
                    args=(app, i, errors, done[i], per_writer, threads),
                    daemon=True,
                )
                for i, app in enumerate(apps)
            ]
            started = time.monotonic()
            for t in workers_threads:
                t.start()
            # While they write, the worker keeps up: sample how far behind it is.
            lags = []
            while not all(d.is_set() for d in done) and time.monotonic() - started < 2 * PATIENCE:
                lags.append(head(conn) - min(positions(conn).values()))
                time.sleep(0.05)
            for t in workers_threads:
                t.join(PATIENCE)
                assert not t.is_alive(), "a writer is still writing"
            writing = time.monotonic() - started
            assert errors == []
            # Once they finish, the worker reaches the head in every read model.
            final = head(conn)
            catch_up = _projected(conn, "every read model is at the head", worker, final)
            assert worker.alive(), workers.logs()
            assert positions(conn) == dict.fromkeys(NAMES, final)
            # The timeline holds every record once: none skipped, none duplicated.
            expected = {
                str(record_id(_kind(j), f"w{i}-{j}")) for i in range(4) for j in range(per_writer)
            }
            refs = current_refs(conn, "timeline", RECORD_KINDS)
            skipped = expected - set(refs)
            duplicates = [r for r, n in Counter(refs).items() if n > 1]
            assert (len(skipped), len(duplicates), len(refs)) == (0, 0, len(expected))
            # The said kinds are exactly the statements (who said what reads those).
            statements = {
                str(record_id("statement", f"w{i}-{j}"))
                for i in range(4)
                for j in range(per_writer)
                if _kind(j) == "statement"
            }
            assert set(current_refs(conn, "timeline", ("statement", "announcement"))) == statements
            # Every tagged record has exactly two versions, chained; nothing is unsound.
            versions = Counter(
                ref
                for (ref,) in conn.execute(
                    "SELECT ref FROM rm_timeline_g1_rows WHERE kind <> 'actor' AND kind <> 'topic'"
                ).fetchall()
            )
            tagged = {
                str(record_id(_kind(j), f"w{i}-{j}"))
                for i in range(4)
                for j in range(0, per_writer, 10)
            }
            assert {r for r, n in versions.items() if n == 2} == tagged
            assert max(versions.values()) == 2
            assert [p for n in NAMES for p in integrity_problems(conn, n)] == []
            assert CONFLICT_WARNING not in worker.log_text()
            print(
                f"\n[writers run {run}] {final} events by 4 writers in {writing:.2f}s "
                f"({final / writing:.0f}/s); worker lag while writing: max {max(lags or [0])} "
                f"events, last {lags[-1] if lags else 0}; caught up {catch_up:.2f}s after the "
                f"last write; skipped 0, duplicates 0"
            )
    finally:
        conn.close()
        for app in [main, *apps]:
            app.close()


def _kind(j: int) -> str:
    return "statement" if j % 2 == 0 else "occurrence"


def _write_records(
    app: Timeline,
    writer: int,
    errors: list[BaseException],
    done: threading.Event,
    per_writer: int,
    threads: int,
) -> None:
    def write(share: int) -> None:
        with writing_as(AUTHOR):
            for j in range(share, per_writer, threads):
                kind = _kind(j)
                n = writer * 7 + j
                written = app.record(kind, body(kind, f"w{writer}-{j}", n))
                if j % 10 == 0:  # a topic it does not have yet: a second version
                    app.tag(kind, written.id, [TOPICS[(n + 1) % len(TOPICS)][0]])

    def guarded(share: int) -> None:
        try:
            write(share)
        except BaseException as e:
            errors.append(e)

    try:
        sharing = [threading.Thread(target=guarded, args=(t,)) for t in range(threads)]
        for t in sharing:
            t.start()
        for t in sharing:
            t.join()
    finally:
        done.set()


def _at(conn: psycopg.Connection[tuple[Any, ...]], position: int) -> bool:
    return min(positions(conn).values()) >= position


def _where(conn: psycopg.Connection[tuple[Any, ...]]) -> str:
    return f"read models at {positions(conn)}, the log's head at {head(conn)}"


def _projected(
    conn: psycopg.Connection[tuple[Any, ...]],
    what: str,
    worker: Worker,
    position: int | None = None,
) -> float:
    """Seconds until every read model reached `position` (None: the head as it stands
    at each look); fails at once, with its log, if the worker exits."""
    return wait_until(
        what,
        lambda: _at(conn, head(conn) if position is None else position),
        seen=lambda: _where(conn),
        processes=[worker],
    )


# 2. SIGKILL mid-batch -------------------------------------------------------------------


@pytest.mark.postgres
def test_a_worker_killed_mid_batch_resumes_and_its_views_match_a_fresh_rebuild(
    postgres_database: str, tmp_path: Path
) -> None:
    pg = fresh_schema(postgres_database)
    main = pg.timeline(pool_size=8)
    apps = [pg.timeline() for _ in range(4)]
    seed(main)
    conn = pg.connect()
    ops = 800  # per writer: ~3200 events of every kind
    planned = head(conn) + 4 * ops
    kills: list[tuple[float, dict[str, int], list[str]]] = []
    try:
        with Workers(tmp_path) as workers:
            # A worker with small batches projects the seed.
            worker = workers.start(pg.url, "batch-0", "--batch-size", "50")
            _projected(conn, "the worker has projected the seed", worker)
            # Four writers write a few thousand events of every kind.
            with writers(apps, ops) as mixes:
                # Twice (from 20%, then from 55% of the way, never past 90%): when the
                # worker is inside a batch's write transaction, kill -9 it, then start a
                # new one, as a supervisor would.
                targets = [0.2, 0.55]
                deadline = time.monotonic() + PATIENCE
                resumed_from = 0  # a new worker is killed only once it applies batches
                while len(kills) < len(targets) and time.monotonic() < deadline:
                    reached = min(positions(conn).values())
                    progress = reached / planned
                    target = targets[len(kills)]
                    if not target <= progress <= 0.9 or reached <= resumed_from:
                        if progress > 0.9:
                            break
                        time.sleep(0.005)
                        continue
                    in_batch = open_batches(conn, worker.name)
                    if not in_batch:
                        time.sleep(0.002)
                        continue
                    before = positions(conn)
                    worker.kill()
                    kills.append((progress, before, in_batch))
                    # Its sessions end; what it committed stays, the open batch is gone.
                    wait_until(
                        "the killed worker's sessions end",
                        lambda name=worker.name: sessions(conn, name) == 0,  # type: ignore[misc]
                        seen=lambda name=worker.name: f"{sessions(conn, name)} sessions",  # type: ignore[misc]
                    )
                    after = positions(conn)
                    assert all(after[n] >= before[n] for n in NAMES), (before, after)
                    resumed_from = max(after.values())
                    worker = workers.start(pg.url, f"batch-{len(kills)}", "--batch-size", "50")
                wait_until(
                    "the writers have finished",
                    lambda: not any(m.ops > len(m.written) and not m.errors for m in mixes),
                    seen=lambda: [f"{len(m.written)}/{m.ops}" for m in mixes],
                )
            assert [e for m in mixes for e in m.errors] == []
            assert kills, "the worker was never caught inside a batch between 10% and 90%"
            # The last worker catches up with every read model, then stops cleanly.
            final = head(conn)
            _projected(conn, "every read model is at the head", worker, final)
            assert worker.terminate() == 0, workers.logs()
            assert CONFLICT_WARNING not in workers.logs()
        incremental = {name: digest(conn, name) for name in NAMES}
        problems = [p for n in NAMES for p in integrity_problems(conn, n)]
        # With the workers gone, each read model is rebuilt in place from position 0.
        models = open_read_models(pg.store, main)
        try:
            for name in NAMES:
                lease = models.make_lease()
                assert lease.acquire(), f"a worker still holds {name}"
                try:
                    models.rebuild()
                finally:
                    lease.release()
        finally:
            models.close()
        rebuilt = {name: digest(conn, name) for name in NAMES}
        assert positions(conn) == dict.fromkeys(NAMES, final)
        # Killed and resumed, the views are what a clean rebuild makes of the same log,
        # and the timeline agrees with the write model record by record.
        assert problems == []
        assert incremental == rebuilt
        mismatches = write_model_mismatches(conn, main, mixes)
        assert mismatches == [], f"{len(mismatches)} records differ: {mismatches[:3]}"
        assert [p for n in NAMES for p in integrity_problems(conn, n)] == []
        for progress, before, in_batch in kills:
            print(
                f"\n[sigkill] killed at {progress:.0%} (positions {before}) inside "
                f"{[q.split(' (')[0][:60] for q in in_batch]}"
            )
        print(
            f"[sigkill] {final} events; digests equal after {len(kills)} kill(s): "
            + ", ".join(f"{n}={d.rows} rows/{d.links} links" for n, d in rebuilt.items())
        )
    finally:
        conn.close()
        for app in [main, *apps]:
            app.close()


# 3. Hot standby -------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_hot_standby_applies_nothing_until_the_leader_is_killed_then_takes_over_in_seconds(
    postgres_database: str, tmp_path: Path
) -> None:
    pg = fresh_schema(postgres_database)
    app = pg.timeline(pool_size=8)
    writer = pg.timeline()
    seed(app)
    conn = pg.connect()
    probe = pg.connect()
    samples: list[dict[str, int]] = []
    standby_batches: list[str] = []
    sampling = threading.Event()

    def sample() -> None:
        # Tracking positions, and any write transaction the standby opens, every 20 ms.
        while not sampling.is_set():
            samples.append(positions(probe))
            standby_batches.extend(open_batches(probe, "standby"))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        with Workers(tmp_path) as workers:
            # The leader starts first and takes every read model's lease.
            leader = workers.start(pg.url, "leader")
            _projected(conn, "the leader has projected the seed", leader)
            wait_until(
                "the leader holds the four leases",
                lambda: lease_holders(conn, pg.schema) == dict.fromkeys(NAMES, "leader"),
                seen=lambda: lease_holders(conn, pg.schema),
                processes=[leader],
            )
            # A second worker starts on the same store and waits as a hot standby.
            standby = workers.start(pg.url, "standby")
            wait_until(
                "the standby is up", lambda: "projecting" in standby.log_text(), processes=[standby]
            )
            time.sleep(1.5)  # it has tried (and failed) to take the leases at least once
            sampler.start()
            # Writes go on; only the leader applies them.
            for n in range(200):
                writer.record("statement", body("statement", f"before-{n}", n))
            before_kill = head(conn)
            _projected(conn, "the leader keeps up", leader, before_kill)
            assert lease_holders(conn, pg.schema) == dict.fromkeys(NAMES, "leader")
            assert standby_batches == []
            # kill -9 the leader, write at once, and time until every view has the write.
            leader.kill()
            written = writer.record("statement", body("statement", "after-kill", 1))
            takeover = wait_until(
                "the standby projects a write made after the kill",
                lambda: _at(conn, written.position),
                every=0.01,
                seen=lambda: _where(conn),
                processes=[standby],
            )
            # The standby now holds every lease, and follows each new write promptly.
            assert lease_holders(conn, pg.schema) == dict.fromkeys(NAMES, "standby")
            follow = []
            for n in range(20):
                w = writer.record("occurrence", body("occurrence", f"after-{n}", n))
                follow.append(
                    wait_until(
                        "the new leader follows",
                        lambda p=w.position: _at(conn, p),  # type: ignore[misc]
                        every=0.005,
                        seen=lambda: _where(conn),
                        processes=[standby],
                    )
                )
            sampling.set()
            sampler.join(5)
            assert standby.alive(), workers.logs()
            logs = workers.logs()
        # Tracking only ever moved forward; no batch was applied twice.
        for name in NAMES:
            seen = [s[name] for s in samples]
            assert seen == sorted(seen), f"{name} tracking went back"
        assert CONFLICT_WARNING not in logs
        assert [p for n in NAMES for p in integrity_problems(conn, n)] == []
        final = head(conn)
        assert positions(conn) == dict.fromkeys(NAMES, final)
        assert len(current_refs(conn, "timeline", RECORD_KINDS)) == 221
        print(
            f"\n[standby] takeover: a write made at the kill was in every view "
            f"{takeover:.2f}s after it; then following: {summary(follow)}; "
            f"{len(samples)} samples, tracking monotonic, standby write transactions "
            f"before the kill: 0"
        )
        assert takeover < 5.0
    finally:
        sampling.set()
        conn.close()
        probe.close()
        app.close()
        writer.close()


# 4. A poison event ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_poison_event_halts_the_projection_there_and_it_resumes_there_once_fixed(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store(kind, tmp_path, request)
    app = open_timeline(store)
    seed(app)
    # Twenty records; the projection will choke on the eleventh.
    written = [app.record("statement", body("statement", f"r{n}", n)) for n in range(20)]
    poison = written[10]
    faulty = {poison.id}

    folds = TimelineProjection.__dict__["process_event"]  # the handlers, by event class

    def process_event(self: TimelineProjection, event: Any, tracking: Tracking) -> None:
        if isinstance(event, Record.Recorded) and event.originator_id in faulty:
            raise ValueError(f"cannot digest {event.originator_id}")
        folds.__get__(self, TimelineProjection)(event, tracking)

    monkeypatch.setattr(TimelineProjection, "process_event", process_event)
    models = open_read_models(store, app)
    try:
        # The worker starts and halts at the poison event, keeping what came before it.
        models.start()
        wait_until(
            "the projection has failed",
            lambda: _status(models).state == "failed",
            seen=lambda: _status(models),
        )
        status = _status(models)
        assert status.error is not None and "ValueError" in status.error
        assert str(poison.id) in status.error
        assert status.error_position == poison.position
        # It kept the events before the poison one in the same batch, and nothing after.
        assert status.position == written[9].position == poison.position - 1
        # Every answer reads from where it halted.
        assert models.view().position() == poison.position - 1
        # Writes go on; the projection stays where it halted.
        later = app.record("occurrence", body("occurrence", "later", 3))
        time.sleep(0.3)
        assert models.view().position() == poison.position - 1
        assert _status(models).state == "failed"
        # The fault is fixed and the workers are started again: the projection resumes at
        # the poison event and reaches the head.
        models.stop()
        faulty.clear()
        models.start()
        view_reached(models, later.position)
        # The worker says "running" once it holds its lease again (a moment after start).
        wait_until(
            "running again",
            lambda: _status(models).state == "running",
            seen=lambda: _status(models),
        )
        status = _status(models)
        assert (status.state, status.position, status.error) == ("running", later.position, None)
        rows = in_sql(models.view()).query(
            "SELECT from_pos FROM rm_timeline_g1_rows WHERE ref = %s", (str(poison.id),)
        )
        assert rows == [(poison.position,)]
        print(
            f"\n[poison {kind}] halted at event {poison.position} "
            f"(kept up to {poison.position - 1}); resumed to {later.position}"
        )
    finally:
        models.close()
        app.close()


def _status(models: ReadModels) -> Status:
    return models.status()


# 5. Read your writes --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_write_is_readable_in_its_view_within_milliseconds_and_ignored_events_do_not_stall(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = make_store(kind, tmp_path, request)
    app = open_timeline(store)
    seed(app)
    models = open_read_models(store, app)
    try:
        models.start()
        view_reached(models, app.head_position())
        # Two hundred times: write a statement, then wait for the timeline to have it.
        latencies = []
        for n in range(200):
            written = app.record("statement", body("statement", f"ryw-{n}", n))
            started = time.monotonic()
            view_reached(models, written.position)
            latencies.append(time.monotonic() - started)
        # Who said what ignores occurrences, yet waiting for one returns as promptly.
        ignored = []
        for n in range(20):
            written = app.record("occurrence", body("occurrence", f"ign-{n}", n))
            started = time.monotonic()
            view_reached(models, written.position)
            ignored.append(time.monotonic() - started)
        print(f"\n[read-your-writes {kind}] timeline: {summary(latencies)}")
        print(f"[read-your-writes {kind}] who_said_what, ignored occurrences: {summary(ignored)}")
        # Loose bounds only: a write wakes the workers at once, far below the poll
        # interval (0.5s on SQLite, 5s on PostgreSQL) that a lost wake-up would cost.
        assert percentile(ignored, 50) < 0.2
        assert percentile(latencies, 50) < 0.05
        assert percentile(latencies, 99) < 0.25
    finally:
        models.close()
        app.close()


# 6. Wake-ups from other threads -----------------------------------------------------------


def test_a_flood_of_wake_ups_while_the_workers_start_crashes_no_thread(tmp_path: Path) -> None:
    store = parse_url(f"sqlite:///{tmp_path}/store")
    app = open_timeline(store)
    seed(app)
    failures: list[BaseException] = []
    try:
        for cycle in range(20):
            models = open_read_models(store, app)
            flooding = threading.Event()

            def flood(models: ReadModels = models, flooding: threading.Event = flooding) -> None:
                # What the PostgreSQL listener does on a busy store: wake_all() per
                # notification, from its own thread, at any moment.
                while not flooding.is_set():
                    try:
                        models.wake_all()
                    except Exception as e:  # reported below
                        failures.append(e)
                        return

            waker = threading.Thread(target=flood, daemon=True)
            try:
                waker.start()
                # The workers start (each registers its runner) under the flood.
                models.start()
                written = app.record("statement", body("statement", f"flood-{cycle}", cycle))
                view_reached(models, written.position)
            finally:
                flooding.set()
                waker.join(5)
                models.close()
            assert failures == [], f"cycle {cycle}: {failures[0]!r}"
        print("\n[wake-ups] 20 starts under a flood of wake_all(): no thread failed")
    finally:
        app.close()


# 7. Closing -------------------------------------------------------------------------------


@pytest.mark.postgres
def test_closed_read_models_leave_no_postgres_session_behind(
    postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg = fresh_schema(postgres_database)
    conn = pg.connect()
    # Every session this test opens carries its own application name.
    name = f"close-{pg.schema}"
    monkeypatch.setenv("PGAPPNAME", name)
    try:
        for cycle in range(3):
            # Open the write model and the read models, run the workers, read a write.
            app = open_timeline(pg.store)
            if cycle == 0:
                seed(app)
            models = open_read_models(pg.store, app)
            try:
                models.start()
                written = app.record("statement", body("statement", f"c{cycle}", cycle))
                view_reached(models, written.position)
                assert sessions(conn, name) > 0
            finally:
                # Close both: their pools, leases and listener go with them.
                models.close()
                app.close()
            # PostgreSQL ends a closed connection's session on its own time.
            wait_until(
                f"no session is left after close() (cycle {cycle})",
                lambda: sessions(conn, name) == 0,
                seen=lambda: f"{sessions(conn, name)} sessions still open",
            )
    finally:
        conn.close()


# 8. Waiting on a worker -------------------------------------------------------------------


def test_a_wait_on_a_worker_that_has_died_fails_at_once_saying_what_it_saw(
    tmp_path: Path,
) -> None:
    with Workers(tmp_path) as workers:
        # A worker whose store is misconfigured: it says so and exits. (One whose server is
        # away waits for it: tests/chaos/test_projection_faults.py.)
        worker = workers.start("mysql://127.0.0.1/none", "lost")
        # A wait on it ends when it exits, not at the deadline...
        with pytest.raises(AssertionError) as failed:
            wait_until(
                "the lost worker projects",
                lambda: False,
                seen=lambda: "no read model",
                processes=[worker],
            )
    # ...and says what it waited for, what it saw, and the worker's state and log.
    message = str(failed.value)
    assert "a process it waits on has exited" in message
    assert "waiting until the lost worker projects" in message
    assert "last seen: no read model" in message
    assert f"worker lost: exited with status {worker.proc.returncode}" in message
    assert "error:" in message.split("its log ends ---", 1)[1]
