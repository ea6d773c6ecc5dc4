"""The projections under faults: a held write transaction, 20,000 events through worker
kills and a PostgreSQL crash, a worker paused for 30 s.

Workers are `timeline project` processes (`tests/projections/workers_support.Workers`);
the crash test runs on a throwaway cluster it stops with `pg_ctl stop -m immediate`.
Every process is ours, on 127.0.0.1, and is killed when its test ends.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from domain.application import Timeline
from domain.ids import record_id
from domain.writers import writing_as
from service.store.database import open_timeline, parse_url
from service.store.readmodels import open_read_models
from tests.chaos.conftest import Figures
from tests.chaos.support import api_server, make_key, ms, server_errors, time_figures
from tests.clusters import Cluster, throwaway_cluster
from tests.projections.workers_support import (
    AUTHOR,
    NAMES,
    PgStore,
    Workers,
    body,
    current_refs,
    digest,
    fresh_schema,
    head,
    integrity_problems,
    open_batches,
    positions,
    seed,
    sessions,
    wait_until,
)

RECORD_KINDS = ("statement", "announcement", "occurrence")
Conn = psycopg.Connection[tuple[Any, ...]]


def _seeded_schema(url: str) -> PgStore:
    """A schema of its own, with the workload's actors and topics in its log."""
    pg = fresh_schema(url)
    app = pg.timeline()
    try:
        seed(app)
    finally:
        app.close()
    return pg


def _at(conn: Conn, position: int) -> bool:
    return min(positions(conn).values()) >= position


# 1. A held transaction ----------------------------------------------------------------

HOLD = 5.0  # seconds the holder keeps its insert uncommitted


@dataclass
class Timed:
    started: float
    ended: float = 0.0
    position: int = 0
    error: str | None = None


def _hold(pg: PgStore, conn: Conn, outcome: str, tag: str) -> dict[str, Any]:
    """One writer inserts an event as the library does (table lock, notify, insert) and
    keeps its transaction open for HOLD seconds, then commits or rolls back, while two
    other writers try to go on and a sampler watches the worker's positions."""
    app = pg.timeline()
    # Later writers wait for the table lock longer than the hold (the default is 5 s).
    later = [open_timeline(parse_url(f"{pg.url}&lock_timeout=15", pool_size=6)) for _ in "ab"]
    # The holder's event: made by the write model, stored by hand in an open transaction.
    unit = app.unit()  # never committed: its event is stored by hand
    with writing_as(AUTHOR):
        held_id = unit.record("statement", body("statement", f"held-{tag}", 1)).id
    (event,) = unit.events()
    stored = app.mapper.to_stored_event(event)
    holder = pg.connect()
    holder.autocommit = False
    samples: list[tuple[float, int, int]] = []  # (time, slowest read model, head)
    sampling = threading.Event()
    probe = pg.connect()

    def sample() -> None:
        while not sampling.is_set():
            samples.append((time.monotonic(), min(positions(probe).values()), head(probe)))
            time.sleep(0.02)

    writes: list[Timed] = []

    def write_on(w: int, timeline: Timeline) -> None:
        for n in range(5):
            t = Timed(time.monotonic())
            writes.append(t)
            try:
                with writing_as(AUTHOR):
                    written = timeline.record(
                        "statement", body("statement", f"later-{tag}-{w}-{n}", n)
                    )
                t.position = written.position
            except Exception as e:  # reported below
                t.error = repr(e)
            t.ended = time.monotonic()

    try:
        before = head(conn)
        wait_until("the worker is at the head", lambda: _at(conn, before), 20)
        holder.execute("SET LOCAL lock_timeout = '5s'")
        holder.execute("LOCK TABLE timeline_events IN EXCLUSIVE MODE")
        holder.execute("NOTIFY timeline_events")
        row = holder.execute(
            "INSERT INTO timeline_events (originator_id, originator_version, topic, state) "
            "VALUES (%s, %s, %s, %s) RETURNING notification_id",
            (stored.originator_id, stored.originator_version, stored.topic, stored.state),
        ).fetchone()
        assert row is not None
        hole = int(row[0])
        held_at = time.monotonic()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        writers = [
            threading.Thread(target=write_on, args=(w, t), daemon=True) for w, t in enumerate(later)
        ]
        for t in writers:
            t.start()
        time.sleep(HOLD - (time.monotonic() - held_at))
        during = list(samples)
        if outcome == "commit":
            holder.commit()
        else:
            holder.rollback()
        ended = time.monotonic()
        if outcome == "commit":  # the worker reaches the held event
            wait_until("the held event is projected", lambda: _at(conn, hole), 10, every=0.01)
            reached_after = time.monotonic() - ended
        for t in writers:
            t.join(30)
        final = max(w.position for w in writes) if writes else hole
        if outcome != "commit":  # the worker passes its empty place to the later writes
            wait_until("the later writes are projected", lambda: _at(conn, final), 10, every=0.01)
            reached_after = time.monotonic() - ended
        wait_until("the worker reaches the head", lambda: _at(conn, head(conn)), 10)
        sampling.set()
        sampler.join(5)
        stored_ids = {
            int(r[0])
            for r in conn.execute(
                "SELECT notification_id FROM timeline_events WHERE notification_id >= %s",
                (hole,),
            ).fetchall()
        }
        return {
            "hole": hole,
            "held_id": held_id,
            "during": during,
            "writes": writes,
            "ended": ended,
            "held_for": ended - held_at,
            "reached_after": reached_after,
            "stored_ids": stored_ids,
        }
    finally:
        sampling.set()
        if not holder.closed:
            holder.rollback()
            holder.close()
        probe.close()
        for timeline in [app, *later]:
            timeline.close()


def test_a_held_transaction_is_never_passed_and_blocks_nothing_for_ever(
    postgres_database: str, tmp_path: Path, figures: Figures
) -> None:
    pg = fresh_schema(postgres_database)
    main = pg.timeline(pool_size=8)
    seed(main)
    conn = pg.connect()
    found: dict[str, dict[str, Any]] = {}
    try:
        with Workers(tmp_path) as workers:
            worker = workers.start(pg.url, "follow-held")
            wait_until("the worker has projected the seed", lambda: _at(conn, head(conn)), 120)
            for outcome in ("commit", "rollback"):
                found[outcome] = _hold(pg, conn, outcome, uuid.uuid4().hex[:6])
            assert worker.alive(), workers.logs()
        for outcome, f in found.items():
            hole, writes = f["hole"], f["writes"]
            # While the insert is uncommitted, no read model passes its position, and no
            # later write commits: the library's table lock makes them wait (commit order
            # is position order), so there is never a committed event after the hole.
            assert f["during"], outcome
            assert all(slowest < hole and top < hole for _, slowest, top in f["during"])
            assert len(writes) == 10 and [w.error for w in writes] == [None] * 10, writes
            assert all(w.ended >= f["ended"] - 0.05 for w in writes), outcome
            assert all(w.position > hole for w in writes), outcome
            # Once it ends, the read models have the event (or pass its empty place) at once.
            assert f["reached_after"] <= 2.0, (outcome, f["reached_after"])
        # Committed: the held event is stored and projected where it was inserted.
        commit, rollback = found["commit"], found["rollback"]
        assert commit["hole"] in commit["stored_ids"]
        refs = current_refs(conn, "timeline", RECORD_KINDS)
        assert str(commit["held_id"]) in refs
        # Rolled back: its position stays empty for ever, and nothing waits for it.
        assert rollback["hole"] not in rollback["stored_ids"]
        assert str(rollback["held_id"]) not in refs
        assert [r for r, n in Counter(refs).items() if n > 1] == []
        assert [p for n in NAMES for p in integrity_problems(conn, n)] == []
        figures(
            hold_s=HOLD,
            **{
                f"{o}_{k}": v
                for o, f in found.items()
                for k, v in {
                    "projected_after_end_ms": ms(f["reached_after"]),
                    "later_writes": len(f["writes"]),
                    "later_writes_committed_during_hold": sum(
                        w.ended < f["ended"] - 0.05 for w in f["writes"]
                    ),
                    "later_write_max_wait_ms": ms(max(w.ended - w.started for w in f["writes"])),
                    "samples_during_hold": len(f["during"]),
                    "passed_the_hole": 0,
                }.items()
            },
        )
    finally:
        conn.close()
        main.close()


# 2. 20,000 events through three worker kills and a PostgreSQL crash -------------------

EVENTS = int(os.environ.get("TIMELINE_CHAOS_EVENTS", "20000"))
WRITERS = 4
UNIT = 4  # records created per transaction; every fifth event is a correction
CRASH = 6.0  # seconds the server is down: longer than the pools' 5 s wait for a connection


class Probe:
    """Positions and head over a connection made again after the server comes back."""

    def __init__(self, pg: PgStore) -> None:
        self.pg = pg
        self.conn: Conn | None = None

    def __call__(self, ask: Callable[[Conn], Any]) -> Any:
        try:
            if self.conn is None or self.conn.closed:
                self.conn = self.pg.connect()
            return ask(self.conn)
        except psycopg.OperationalError:
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


@dataclass
class Acked:
    """What one writer's acknowledged writes stored: (record id, position) per event."""

    writer: int
    app: Timeline
    events: int  # at least; and on until `faulted` is set
    faulted: threading.Event
    acked: list[tuple[UUID, int]] = field(default_factory=list)
    records: list[tuple[str, str]] = field(default_factory=list)
    retries: int = 0
    duplicates: int = 0  # writes answered as already stored: a retry after a lost reply
    errors: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with writing_as(AUTHOR):
            self._run()

    def _run(self) -> None:
        try:
            written, j = 0, 0
            while written < self.events or not self.faulted.is_set():
                if j % 2 == 1 and self.records:  # a correction of an earlier record
                    kind, key = self.records[(j * 7) % len(self.records)]
                    rid = record_id(kind, key)
                    change = {"location": f"City {self.writer}-{j}"}
                    w = self._again(partial(self.app.correct, kind, rid, change, "seen"))
                    if w.duplicate:
                        self.duplicates += 1
                    else:
                        self.acked.append((rid, w.position))
                    written += 1
                else:
                    keys = [
                        (RECORD_KINDS[(j + n) % 3], f"c{self.writer}-{j}-{n}") for n in range(UNIT)
                    ]
                    for rid, position in self._again(partial(self._unit, keys)):
                        self.acked.append((rid, position))
                    self.records += keys
                    written += UNIT
                j += 1
        except BaseException as e:  # reported by the test
            self.errors.append(repr(e))
        finally:
            self.done.set()

    def _unit(self, keys: list[tuple[str, str]]) -> list[tuple[UUID, int]]:
        unit = self.app.unit()
        for n, (kind, key) in enumerate(keys):
            unit.record(kind, body(kind, key, self.writer * 100 + n))
        unit.commit()
        self.duplicates += len(keys) - len(unit.recordings)
        return [(r.domain_event.originator_id, r.notification.id) for r in unit.recordings]

    def _again(self, write: Callable[[], Any]) -> Any:
        """A write retried until it is acknowledged: the same key again is a duplicate,
        the same correction again changes nothing, so a retry never stores twice."""
        deadline = time.monotonic() + 120
        while True:
            try:
                return write()
            except Exception:
                self.retries += 1
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def _batches(conn: Conn, app_name: str) -> list[str]:
    return open_batches(conn, app_name)


def _no_sessions(probe: Probe, app_name: str) -> bool:
    return bool(probe(lambda c: sessions(c, app_name)) == 0)


@pytest.mark.parametrize(
    "events", [2000, pytest.param(EVENTS, marks=pytest.mark.chaos)], ids=["2000", "20000"]
)
def test_20000_events_through_three_worker_kills_and_a_postgres_crash_equal_a_fresh_rebuild(
    tmp_path: Path, figures: Figures, events: int
) -> None:
    # (2,000 events in `make test`, 20,000 in `make chaos`.)
    with throwaway_cluster() as cluster:
        _crash_run(cluster, tmp_path, figures, events)


def _crash_run(cluster: Cluster, tmp_path: Path, figures: Figures, events: int) -> None:
    pg = fresh_schema(cluster.url)
    main = pg.timeline(pool_size=8)
    seed(main)
    apps = [pg.timeline() for _ in range(WRITERS)]
    probe = Probe(pg)
    kills: list[dict[str, Any]] = []
    crash: dict[str, Any] = {}
    lags: list[int] = []
    with pg.connect() as first:
        planned = head(first) + events
    try:
        with Workers(tmp_path) as workers:
            worker = workers.start(pg.url, "crash-0", "--batch-size", "100")
            # The writers go on until every fault has happened (a small run would end
            # before), then stop.
            faulted = threading.Event()
            mixes = [Acked(i, app, events // WRITERS, faulted) for i, app in enumerate(apps)]
            threads = [threading.Thread(target=m.run, daemon=True) for m in mixes]
            started = time.monotonic()
            for t in threads:
                t.start()
            # Kill -9 the worker at 15%, 40% and 75% of the way (inside a batch if it can
            # be caught in one within 2 s), starting a new one each time as a supervisor
            # would; crash PostgreSQL at 55% for CRASH seconds.
            plan = [(0.15, "kill"), (0.40, "kill"), (0.55, "crash"), (0.75, "kill")]
            deadline = time.monotonic() + 600
            while not all(m.done.is_set() for m in mixes):
                assert time.monotonic() < deadline, "the writers did not finish"
                top = probe(head) or 0
                slowest = probe(lambda c: min(positions(c).values()))
                if slowest is not None:
                    lags.append(top - slowest)
                if plan and top / planned >= plan[0][0]:
                    at, what = plan.pop(0)
                    if what == "crash":
                        down = time.monotonic()
                        cluster.stop("immediate")
                        time.sleep(CRASH)
                        cluster.start()
                        crash = {"at": at, "down_s": round(time.monotonic() - down, 2)}
                    else:
                        # A worker never ends on its own, not even when the server crashed.
                        assert worker.alive(), f"{worker.name} exited:\n{workers.logs()}"
                        in_batch: list[str] = []
                        catch = time.monotonic() + 2
                        while not in_batch and time.monotonic() < catch:
                            in_batch = probe(partial(_batches, app_name=worker.name)) or []
                        worker.kill()
                        gone = partial(_no_sessions, probe, worker.name)
                        wait_until("the killed worker's sessions end", gone, 15)
                        kills.append({"at": at, "inside_a_batch": bool(in_batch)})
                        worker = workers.start(pg.url, f"crash-{len(kills)}", "--batch-size", "100")
                if not plan:
                    faulted.set()
                time.sleep(0.05)
            writing = time.monotonic() - started
            assert [e for m in mixes for e in m.errors] == []
            assert not plan, f"the run ended before {plan}"
            final = probe(head)
            caught_up = wait_until(
                "every read model at the head",
                lambda: probe(lambda c: min(positions(c).values())) == final,
                120,
            )
            assert worker.alive(), workers.logs()
            assert worker.terminate() == 0, workers.logs()
        conn = pg.connect()
        try:
            incremental = {name: digest(conn, name) for name in NAMES}
            problems = [p for n in NAMES for p in integrity_problems(conn, n)]
            refs = current_refs(conn, "timeline", RECORD_KINDS)
            versions = set(
                conn.execute(
                    "SELECT ref, from_pos FROM rm_timeline_g1_rows WHERE kind = ANY(%s)",
                    (list(RECORD_KINDS),),
                ).fetchall()
            )
            stored = int(
                conn.execute("SELECT count(*) FROM timeline_events").fetchone()[0]  # type: ignore[index]
            )
            # Each read model rebuilt in place from position 0, with the workers gone.
            rebuilding = time.monotonic()
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
            rebuild_s = time.monotonic() - rebuilding
            rebuilt = {name: digest(conn, name) for name in NAMES}
        finally:
            conn.close()
        acked = [a for m in mixes for a in m.acked]
        missing = [(str(rid), p) for rid, p in acked if (str(rid), p) not in versions]
        duplicates = [r for r, n in Counter(refs).items() if n > 1]
        assert problems == []
        assert incremental == rebuilt
        assert duplicates == []
        assert missing == [], f"{len(missing)} acknowledged writes missing: {missing[:5]}"
        assert stored >= events
        assert len(kills) == 3 and crash
        figures(
            events_stored=stored,
            events_acknowledged=len(acked),
            write_s=round(writing, 1),
            write_rate=round(stored / writing),
            writer_retries=sum(m.retries for m in mixes),
            acknowledged_as_duplicates=sum(m.duplicates for m in mixes),
            kills=kills,
            postgres_crash=crash,
            max_lag_events=max(lags or [0]),
            caught_up_after_last_write_s=round(caught_up, 2),
            rebuild_s=round(rebuild_s, 1),
            digests_equal=True,
            rows={n: d.rows for n, d in rebuilt.items()},
            duplicates=0,
            acknowledged_missing=0,
        )
    finally:
        probe.close()
        for app in [main, *apps]:
            app.close()


# 3. A worker paused for 30 s -------------------------------------------------------------

PAUSE = float(os.environ.get("TIMELINE_CHAOS_PAUSE", "30"))


def _lag(metrics: str) -> dict[str, float]:
    """`timeline_projection_lag_events` per projection, from the Prometheus text."""
    out = {}
    for line in metrics.splitlines():
        if line.startswith("timeline_projection_lag_events{"):
            labels, value = line.rsplit(" ", 1)
            out[labels.split('projection="', 1)[1].split('"', 1)[0]] = float(value)
    return out


# `make test` pauses the worker 3 s and lets /health take up to 1 s on a busy machine;
# `make chaos` pauses it 30 s and wants /health under 50 ms throughout.
@pytest.mark.parametrize(
    ("pause", "health_bound"),
    [(3.0, 1.0), pytest.param(PAUSE, 0.05, marks=pytest.mark.chaos)],
    ids=["3s", "30s"],
)
def test_a_worker_paused_30s_leaves_the_api_healthy_shows_its_lag_and_loses_nothing(
    cluster: Cluster, tmp_path: Path, figures: Figures, pause: float, health_bound: float
) -> None:
    pg = _seeded_schema(cluster.url)
    secret = make_key(pg.url, "pause-writer")
    auth = {"Authorization": f"Bearer {secret}"}
    conn = pg.connect()
    try:
        with Workers(tmp_path) as workers, api_server(pg.url, tmp_path, "pause-api") as api:
            worker = workers.start(pg.url, "paused")
            wait_until("the worker has projected the seed", lambda: _at(conn, head(conn)), 120)
            client = httpx.Client(base_url=api.base, timeout=10)
            os.kill(worker.proc.pid, signal.SIGSTOP)
            paused = time.monotonic()
            try:
                ids, health, reads, lags = [], [], [], []
                n = 0
                while time.monotonic() - paused < pause:
                    r = client.post(
                        "/statements", json=body("statement", f"paused-{n}", n), headers=auth
                    )
                    assert r.status_code == 201, r.text
                    ids.append(r.json()["id"])
                    n += 1
                    t = time.monotonic()
                    assert client.get("/health").status_code == 200
                    health.append(time.monotonic() - t)
                    t = time.monotonic()
                    assert client.get("/timeline", params={"limit": 5}).status_code == 200
                    reads.append(time.monotonic() - t)
                    lags.append(_lag(client.get("/metrics").text))
                    time.sleep(0.1)
                lag_paused = lags[-1]
                written_head = head(conn)
                behind = written_head - min(positions(conn).values())
                ready_paused = client.get("/ready").status_code
            finally:
                os.kill(worker.proc.pid, signal.SIGCONT)
            resumed = time.monotonic()
            caught_up = wait_until(
                "the lag is 0 in /metrics",
                lambda: set(_lag(client.get("/metrics").text).values()) == {0.0},
                60,
                every=0.05,
            )
            final = client.get("/metrics").text
            assert worker.alive(), workers.logs()
            client.close()
            logs = api.log_text()
        # While paused: every projection's lag in /metrics is what it has not applied.
        assert set(lag_paused) == set(NAMES) and min(lag_paused.values()) >= len(ids) - 1
        assert behind >= len(ids)
        assert ready_paused == 200  # a lag under the readiness bound
        assert max(health) < health_bound
        # After SIGCONT: lag 0, and every record written meanwhile is in the timeline.
        assert set(_lag(final).values()) == {0.0}
        refs = current_refs(conn, "timeline", RECORD_KINDS)
        assert set(ids) <= set(refs)
        assert [r for r, k in Counter(refs).items() if k > 1] == []
        assert [p for n in NAMES for p in integrity_problems(conn, n)] == []
        assert server_errors(logs) == []
        figures(
            paused_s=round(resumed - paused, 1),
            written_while_paused=len(ids),
            lag_in_metrics_at_sigcont=lag_paused,
            caught_up_after_sigcont_s=round(caught_up, 2),
            **time_figures("health_while_paused", health),
            **time_figures("read_while_paused", reads),
            lost=0,
        )
    finally:
        conn.close()


# 4. A worker started while PostgreSQL is away -------------------------------------------


def test_a_worker_started_while_postgres_is_away_waits_for_it_then_projects(
    cluster: Cluster, tmp_path: Path
) -> None:
    pg = _seeded_schema(cluster.url)
    cluster.stop("fast")
    with Workers(tmp_path) as workers:
        # Started as a supervisor would, after a crash: it waits, and says why.
        worker = workers.start(pg.url, "early")
        wait_until(
            "the worker says it waits", lambda: "waiting for the database" in worker.log_text(), 60
        )
        assert worker.alive(), workers.logs()
        cluster.start()
        conn = pg.connect()
        try:
            wait_until("the worker has projected the seed", lambda: _at(conn, head(conn)), 120)
        finally:
            conn.close()
        assert worker.terminate() == 0, workers.logs()
