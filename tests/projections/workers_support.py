"""Helpers for the projection-worker robustness tests: worker processes, a workload,
PostgreSQL probes (tracking, leases, open write transactions) and digests of read models.

Every process here is started by the tests, on 127.0.0.1, and killed by `Workers` on exit.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg

from domain.application import Timeline
from domain.ids import record_id
from domain.usecases import Written
from domain.writers import Author, writing_as
from projections.sqlview import NAME, SqlView
from projections.view import TimelineView
from projections.workers import ReadModels
from service.store.commits import StoreTimeline
from service.store.database import Store, open_timeline, parse_url

NAMES = (NAME,)  # the one projection's tables, status and lease (decision 008)
TIMELINE_SCRIPT = str(Path(sys.executable).with_name("timeline"))
AUTHOR = Author("robustness")
ACTORS = [
    ("ann-envoy", "Ann Envoy", "person"),
    ("bo-minister", "Bo Minister", "person"),
    ("cy-leader", "Cy Leader", "person"),
    ("north-state", "North State", "state"),
]
TOPICS = [
    ("negotiations", "Negotiations", None),
    ("territory", "Territory", "negotiations"),
    ("sanctions", "Sanctions", None),
    ("energy", "Energy", "sanctions"),
]
CONFLICT_WARNING = "another worker applied this batch"


# Waiting -------------------------------------------------------------------------------

# How long to wait for another process (or a thread it wakes) before giving up. Only a
# safety net: every wait ends as soon as its condition holds, or as soon as a process it
# waits on has died; a loaded two-core machine can take many seconds to start a Python
# process and catch up a store, so it is generous.
PATIENCE = 120.0


def wait_until(
    what: str,
    check: Callable[[], bool],
    timeout: float = PATIENCE,
    every: float = 0.02,
    *,
    seen: Callable[[], object] | None = None,
    processes: Sequence[Worker | subprocess.Popen[Any]] = (),
) -> float:
    """Seconds until `check()` held. Past `timeout`, or once one of `processes` (those
    that must make it hold) has exited, an AssertionError says what was awaited, for how
    long, what `seen()` showed last, and how each process is (a worker's log tail too)."""
    started = time.monotonic()
    deadline = started + timeout
    while not check():
        dead = [p for p in processes if _exit_code(p) is not None]
        if dead or time.monotonic() > deadline:
            waited = time.monotonic() - started
            why = "a process it waits on has exited" if dead else "gave up"
            raise AssertionError(
                f"{why} after {waited:.1f}s (of {timeout:.0f}s): waiting until {what}"
                + ("" if seen is None else f"\nlast seen: {_safely(seen)}")
                + "".join(f"\n{_describe(p)}" for p in processes)
            )
        time.sleep(every)
    return time.monotonic() - started


def _exit_code(process: Worker | subprocess.Popen[Any]) -> int | None:
    return (process.proc if isinstance(process, Worker) else process).poll()


def _describe(process: Worker | subprocess.Popen[Any]) -> str:
    code = _exit_code(process)
    state = "running" if code is None else f"exited with status {code}"
    if not isinstance(process, Worker):
        return f"process {process.pid} ({str(process.args)[:200]}): {state}"
    return f"--- worker {process.name}: {state}; its log ends ---\n{process.log_text()[-3000:]}"


def _safely(seen: Callable[[], object]) -> str:
    try:
        return str(seen())
    except Exception as e:  # what was seen could not be read: say so, not instead
        return f"(could not be read: {e!r})"


def in_sql(view: TimelineView) -> SqlView:
    """The view as the SQL it stores, for a test that reads its tables."""
    assert isinstance(view, SqlView)
    return view


def view_reached(models: ReadModels, position: int, timeout: float = PATIENCE) -> float:
    """Seconds until the view reached the position (AssertionError after the timeout)."""
    return wait_until(
        f"the view reached {position}",
        lambda: models.view().position() >= position,
        timeout,
        seen=lambda: f"at {models.view().position()}",
    )


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by the nearest-rank rule."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"n={len(ms)} p50={statistics.median(ms):.1f}ms p99={percentile(ms, 99):.1f}ms "
        f"max={max(ms):.1f}ms"
    )


# Stores --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PgStore:
    """A fresh schema in the test database: its URL for workers, and a Store for the test."""

    url: str
    schema: str
    store: Store

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        conninfo = psycopg.conninfo.make_conninfo(
            self.store.conninfo(), options=f"-c search_path={self.schema}"
        )
        return psycopg.connect(conninfo, autocommit=True)

    def timeline(self, pool_size: int = 6) -> StoreTimeline:
        """A write model of its own (a small pool: one writer thread each)."""
        return open_timeline(parse_url(self.url, pool_size=pool_size))


def fresh_schema(database_url: str) -> PgStore:
    schema = f"w_{uuid.uuid4().hex[:12]}"
    url = f"{database_url}?schema={schema}"
    return PgStore(url, schema, parse_url(url, pool_size=6))


# Worker processes ----------------------------------------------------------------------


@dataclass
class Worker:
    """One `timeline project` process; its PostgreSQL sessions carry its name."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL this process (by its own pid) and reap it."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM (a graceful stop) and wait; SIGKILL if it does not end in time."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not stop within {timeout}s") from None


class Workers:
    """Starts `timeline project` processes; every one is killed and reaped on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Worker] = []
        self._files: list[IO[bytes]] = []

    def start(self, url: str, name: str, *args: str) -> Worker:
        log = self.log_dir / f"{name}.log"
        out = log.open("ab")
        self._files.append(out)
        env = {
            **os.environ,
            "TIMELINE_DATABASE_URL": url,
            "PGAPPNAME": name,  # libpq names every session of the process after it
            "PYTHONUNBUFFERED": "1",
        }
        proc = subprocess.Popen(  # our own console script
            [TIMELINE_SCRIPT, "project", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = Worker(name, proc, log)
        self.started.append(worker)
        return worker

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for worker in self.started:
                with suppress(ProcessLookupError, subprocess.TimeoutExpired):
                    worker.kill()
        finally:
            for f in self._files:
                f.close()

    def logs(self) -> str:
        return "\n".join(f"--- {w.name} ---\n{w.log_text()[-3000:]}" for w in self.started)


# PostgreSQL probes ---------------------------------------------------------------------


def positions(conn: psycopg.Connection[tuple[Any, ...]]) -> dict[str, int]:
    """Each read model's tracking position (0 before its first batch)."""
    out = {}
    for name in NAMES:
        table = f"rm_{name}_g1_tracking"
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
        found = None
        if row and row[0]:
            found = conn.execute(f"SELECT max(notification_id) FROM {table}").fetchone()
        out[name] = int(found[0]) if found and found[0] is not None else 0
    return out


def head(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    found = conn.execute("SELECT coalesce(max(notification_id), 0) FROM timeline_events").fetchone()
    assert found is not None
    return int(found[0])


def lease_holders(conn: psycopg.Connection[tuple[Any, ...]], schema: str) -> dict[str, str]:
    """Which session (by application name) holds each read model's advisory lease."""
    found = conn.execute(
        "SELECT k.name, a.application_name FROM unnest(%s::text[]) AS k(name) "
        "JOIN pg_locks l ON l.locktype = 'advisory' AND l.granted "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext("
        "  'timeline-projection:' || current_database() || '.' || %s || ':' || k.name"
        ")::bigint "
        "JOIN pg_stat_activity a ON a.pid = l.pid",
        (list(NAMES), schema),
    ).fetchall()
    return {str(name): str(app) for name, app in found}


def open_batches(conn: psycopg.Connection[tuple[Any, ...]], app_name: str) -> list[str]:
    """The statements of the process's open write transactions on read-model tables:
    non-empty while it is in the middle of applying a batch."""
    found = conn.execute(
        "SELECT query FROM pg_stat_activity WHERE application_name = %s "
        "AND backend_xid IS NOT NULL AND query ~ %s AND query !~* %s",
        (app_name, r"rm_\w+_g\d+_(rows|links|tracking)|rm_clock", r"^\s*(CREATE|DROP)"),
    ).fetchall()
    return [str(q) for (q,) in found]


def sessions(conn: psycopg.Connection[tuple[Any, ...]], app_name: str) -> int:
    found = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app_name,)
    ).fetchone()
    assert found is not None
    return int(found[0])


# Read-model checks ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Digest:
    rows: int
    links: int
    sha256: str


def digest(conn: psycopg.Connection[tuple[Any, ...]], name: str) -> Digest:
    """An ordered digest of a read model's row versions and their links, by entity and
    position (never by row_id, which comes from a sequence)."""
    p = f"rm_{name}_g1"
    h = hashlib.sha256()
    rows = conn.execute(
        f"SELECT kind, ref, from_pos, to_pos, first_pos, start_at, end_at, body, state "
        f"FROM {p}_rows ORDER BY kind, ref, from_pos"
    ).fetchall()
    for row in rows:
        h.update(repr(row).encode())
    h.update(b"\x00links\x00")
    links = conn.execute(
        f"SELECT r.kind, r.ref, r.from_pos, l.rel, l.value FROM {p}_links l "
        f"JOIN {p}_rows r ON r.row_id = l.row_id ORDER BY 1, 2, 3, 4, 5"
    ).fetchall()
    for link in links:
        h.update(repr(link).encode())
    return Digest(len(rows), len(links), h.hexdigest())


def integrity_problems(conn: psycopg.Connection[tuple[Any, ...]], name: str) -> list[str]:
    """Duplicated versions, broken version chains, links without a row or out of step
    with it: [] when sound."""
    p = f"rm_{name}_g1"
    problems = []
    for label, sql in [
        (
            "duplicate (kind, ref, from_pos)",
            f"SELECT kind, ref, from_pos, count(*) FROM {p}_rows "
            f"GROUP BY kind, ref, from_pos HAVING count(*) > 1",
        ),
        (
            "a version not closed by the next one",
            f"SELECT kind, ref, from_pos, to_pos, nxt FROM (SELECT kind, ref, from_pos, to_pos, "
            f"lead(from_pos) OVER (PARTITION BY kind, ref ORDER BY from_pos) AS nxt "
            f"FROM {p}_rows) v WHERE nxt IS NOT NULL AND to_pos IS DISTINCT FROM nxt",
        ),
        (
            "a link without its row",
            f"SELECT l.row_id FROM {p}_links l LEFT JOIN {p}_rows r ON r.row_id = l.row_id "
            f"WHERE r.row_id IS NULL",
        ),
        (
            "a link whose order or positions are not its row's",
            f"SELECT l.row_id FROM {p}_links l JOIN {p}_rows r ON r.row_id = l.row_id "
            "WHERE (l.start_at, l.first_pos, l.from_pos) IS DISTINCT FROM "
            "(r.start_at, r.first_pos, r.from_pos) OR l.to_pos IS DISTINCT FROM r.to_pos",
        ),
    ]:
        found = conn.execute(sql).fetchall()
        if found:
            problems.append(f"{name}: {label}: {found[:5]} ({len(found)} in all)")
    return problems


def current_refs(
    conn: psycopg.Connection[tuple[Any, ...]], name: str, kinds: Sequence[str]
) -> list[str]:
    """The refs of the current record rows, one per row (duplicates kept)."""
    found = conn.execute(
        f"SELECT ref FROM rm_{name}_g1_rows WHERE to_pos IS NULL AND kind = ANY(%s)",
        (list(kinds),),
    ).fetchall()
    return [str(r) for (r,) in found]


# A workload ----------------------------------------------------------------------------


def seed(app: Timeline) -> int:
    """A few actors and a small topic tree; the head position after them."""
    with writing_as(AUTHOR):
        last = 0
        for slug, name, kind in ACTORS:
            last = app.register_actor({"id": slug, "name": name, "kind": kind}).position
        for slug, label, parent in TOPICS:
            last = app.define_topic({"id": slug, "label": label, "parent": parent}).position
        return last


def body(kind: str, key: str, n: int) -> dict[str, Any]:
    """A valid record of a kind; `n` varies who, when and what."""
    actors = [a for a, _, _ in ACTORS]
    topics = [t for t, _, _ in TOPICS]
    common: dict[str, Any] = {
        "key": key,
        "occurred_at": f"20{10 + n % 15}-{1 + n % 12:02d}-{1 + n % 28:02d}",
        "topics": [topics[n % len(topics)]],
        "sources": [{"publisher": "Example", "url": f"https://example.org/{key}"}],
    }
    if kind == "statement":
        return {
            **common,
            "speaker": actors[n % len(actors)],
            "quote": f"words number {key}",
            "channel": "press-conference",
            "mentions": [actors[(n + 1) % len(actors)]],
        }
    if kind == "announcement":
        return {
            **common,
            "by": [actors[n % len(actors)], actors[(n + 2) % len(actors)]],
            "summary": f"announcement {key}",
            "channel": "social-media",
        }
    return {
        **common,
        "title": f"meeting {key}",
        "kind": "meeting",
        "participants": [actors[n % len(actors)], actors[(n + 3) % len(actors)]],
    }


@dataclass
class Mixed:
    """One writer's mix of every kind of change, on records of its own (no conflicts)."""

    writer: int
    app: Timeline
    ops: int
    written: list[Written] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    records: list[tuple[str, str]] = field(default_factory=list)  # (kind, key)
    retracted: set[int] = field(default_factory=set)

    def run(self, stop: threading.Event | None = None) -> None:
        with writing_as(AUTHOR):
            try:
                for j in range(self.ops):
                    if stop is not None and stop.is_set():
                        return
                    self.written.append(self.step(j))
            except BaseException as e:  # reported by the test
                self.errors.append(e)

    def step(self, j: int) -> Written:
        app, w = self.app, self.writer
        live = [i for i in range(len(self.records)) if i not in self.retracted]
        if j % 5 == 4 and live:
            i = live[(j * 7) % len(live)]
            kind, key = self.records[i]
            rid = record_id(kind, key)
            action = (j // 5) % 6
            if action == 0:
                return app.correct(kind, rid, {"location": f"City {w}-{j}"}, "checked")
            if action == 1:
                return app.tag(kind, rid, [TOPICS[(j + 1) % len(TOPICS)][0]])
            if action == 2:
                source = {"publisher": "Other", "url": f"https://example.net/{w}/{j}"}
                return app.add_source(kind, rid, source)
            if action == 3:
                current = app.get_record(kind, rid).content.get("topics", [])
                if current:
                    return app.untag(kind, rid, current[:1])
                return app.correct(kind, rid, {"location": f"Town {w}-{j}"}, "checked")
            if action == 4:
                self.retracted.add(i)
                return app.retract(kind, rid, "withdrawn")
            if w == 0:  # one writer also changes actors and topics
                slug = ACTORS[j % len(ACTORS)][0]
                if j % 2:
                    return app.add_alias(slug, f"Alias {j}")
                return app.relabel_topic(TOPICS[j % len(TOPICS)][0], f"Label {j}")
        kind = ("statement", "announcement", "occurrence")[j % 3]
        key = f"w{w}-{j}"
        self.records.append((kind, key))
        return app.record(kind, body(kind, key, w * 1000 + j))


@contextmanager
def writers(apps: Sequence[Timeline], ops: int) -> Iterator[list[Mixed]]:
    """Run one `Mixed` writer per app in threads; joined (and stopped) on exit."""
    stop = threading.Event()
    mixes = [Mixed(i, app, ops) for i, app in enumerate(apps)]
    threads = [
        threading.Thread(target=m.run, args=(stop,), name=f"writer-{i}", daemon=True)
        for i, m in enumerate(mixes)
    ]
    for t in threads:
        t.start()
    try:
        yield mixes
    finally:
        stop.set()
        for t in threads:
            t.join(60)


def write_model_mismatches(
    conn: psycopg.Connection[tuple[Any, ...]], app: Timeline, mixes: Sequence[Mixed]
) -> list[str]:
    """Where the timeline read model disagrees with the write model: per record, one row
    version per event but the retraction, and the current content (none if retracted)."""
    rows: dict[str, tuple[int, str | None]] = {}
    for ref, versions, current in conn.execute(
        "SELECT ref, count(*), max(CASE WHEN to_pos IS NULL THEN state END) "
        "FROM rm_timeline_g1_rows WHERE kind NOT IN ('actor', 'topic') GROUP BY ref"
    ).fetchall():
        rows[str(ref)] = (int(versions), current)
    out = []
    for mix in mixes:
        for kind, key in mix.records:
            rid = record_id(kind, key)
            record = app.get_record(kind, rid)
            versions, current = rows.get(str(rid), (0, None))
            want_versions = record.version - (1 if record.retracted else 0)
            content = None if current is None else json.loads(current)["content"]
            want_content = None if record.retracted else record.content
            if (versions, content) != (want_versions, want_content):
                out.append(
                    f"{kind} {key}: {versions} versions (want {want_versions}), "
                    f"current {content} (want {want_content})"
                )
    return out
