"""The benchmark suite: a generated history loaded into PostgreSQL, the service
and its baselines run side by side, every scenario measured against its baseline in the
same run, the table written as JSON and Markdown.

    python -m bench.suite --smoke              # about a minute; CI runs it
    python -m bench.suite --events 1000000     # the full run: docs/benchmarks.{md,json}
    python -m bench.suite --scaling-only       # 15-17 alone: serve --workers 2, a replica

The service runs as in production: `timeline serve` (one uvicorn worker) and `timeline
project` in their own processes, loaded by wrk (`bench/load.py`) from a third. The
history is loaded with `timeline backfill` and the read models built with the rebuild
path; `bench.catchup` and `bench.backfill` are run for their own figures. Scenarios 15-17
(`bench/scaling.py`) run last, on a primary and a replica of their own.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from psycopg import sql

from bench import load, page, profile, report, scaling
from bench.baseline_app import FLAT, fill_flat
from bench.history import record_body, vocabulary
from projections.sql import RECORD_KINDS
from projections.timeline import TimelineProjection
from service.store.database import open_timeline, parse_url
from service.store.readmodels import open_read_models

ROOT = Path(__file__).resolve().parents[1]
ACTORS, TOPICS = 1000, 100
# Leaves of the generated topic tree (topic-25 and up): small enough that a window of a
# few days holds about 50 records even in a large history.
PAGE_TOPICS = [("topic-30", "2016-05-01"), ("topic-57", "2019-02-01"), ("topic-88", "2022-09-01")]
WIDE_TOPIC = "topic-1"  # a quarter of the tree below it: the timeline's descendant filter
# The history's records occur over eleven years (bench/history.py), but it is recorded in
# minutes: a day of /changes is the share of the log that one of those days holds, taken
# at three points of the log.
OCCURRED_DAYS = (date(2024, 12, 31) - date(2014, 1, 1)).days + 1
DAY_POINTS = (0.25, 0.5, 0.75)
_LIBRARY_ENV = ("PERSISTENCE_", "POSTGRES_", "SQLITE_", "TIMELINE_")
# py-spy samples the first minute of the backfill and of the rebuild only: at 100 Hz it
# takes a fifth of a core on this machine, which would slow the rest of the measured run.
PROFILE_S = 60
NAME = TimelineProjection.name  # the rebuild figures are keyed by it


@dataclass(frozen=True, slots=True)
class Config:
    events: int
    smoke: bool
    duration: int  # seconds per load run
    repeats: int
    warmup: int  # seconds of unmeasured load before each server's first runs
    connections: int
    ryw_clients: int
    module_records: int  # records for bench.catchup and bench.backfill
    url: str  # a PostgreSQL server; the suite makes (and drops) its own database
    json_path: Path
    markdown_path: Path
    keep: bool
    command: str
    profile: bool = False  # sample the processes with py-spy (bench/profile.py)
    pages_only: bool = False  # scenarios 2 and 13 alone
    scaling_only: bool = False  # scenarios 15-17 alone (bench/scaling.py)


def records_for(events: int) -> int:
    """Records whose backfill lines (a correction for every fifth) give about `events`."""
    return max(10, round((events - ACTORS - TOPICS) / 1.2))


# The history ---------------------------------------------------------------------------


def write_history(path: Path, events: int, seed: int = 7) -> int:
    """Backfill NDJSON, streamed to disk: records in random occurred order with their
    corrections, then the actors and topics they name (children before parents), so the
    loader's forward references are exercised. About one event per line."""
    rng = random.Random(seed)
    actors, topics = vocabulary(rng, ACTORS, TOPICS)
    encode = msgspec.json.Encoder().encode
    lines = 0
    with path.open("wb") as f:
        for n in range(records_for(events)):
            kind, body = record_body(rng, n, actors, topics)
            f.write(encode({"type": kind, "key": f"r{n}", **body}) + b"\n")
            lines += 1
            if n % 5 == 0:
                target = {"kind": kind, "key": f"r{n}"}
                change = {"location": f"City {n % 97}"}
                line = {"type": "correction", "target": target, "changes": change}
                f.write(encode({**line, "reason": "placed"}) + b"\n")
                lines += 1
        for slug in actors:
            f.write(encode({"type": "actor", "id": slug, "name": slug.title(), "kind": "person"}))
            f.write(b"\n")
        for i in reversed(range(len(topics))):
            parent = {"parent": topics[(i - 1) // 4]} if i else {}
            f.write(encode({"type": "topic", "id": topics[i], "label": topics[i], **parent}))
            f.write(b"\n")
    return lines + len(actors) + len(topics)


# Processes -----------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def peak_rss_mb(self) -> float:
        return vmhwm_mb(self.pid)

    def cpu_seconds(self) -> float:
        """CPU time of its process group (a server and the workers it started)."""
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            if int(fields[2]) == self.pid:  # its process group
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """Stop it and whatever it started (a server's workers): its process group."""
        if self.popen.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(5)


def vmhwm_mb(pid: int) -> float:
    """A live process's peak resident set (VmHWM), in MB; 0 once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def environment(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LIBRARY_ENV)}
    return {**env, "TIMELINE_DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(
    name: str, args: list[str], env: dict[str, str], logs: Path, port: int = 0
) -> Iterator[Proc]:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(  # noqa: S603 (our own command line)
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc = Proc(name, popen, log, f"http://127.0.0.1:{port}" if port else "")
    try:
        if port:
            deadline = time.monotonic() + 60
            while fetch(f"{proc.url}/health", quiet=True)[0] != 200:
                if popen.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
        yield proc
    finally:
        proc.stop()


def cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(  # noqa: S603 (our own command line)
        [sys.executable, "-m", "service.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"timeline {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout


def fetch(url: str, *, quiet: bool = False) -> tuple[int, dict[str, str], Any]:
    """GET a JSON answer: status, headers, decoded body."""
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310 (our own URL)
            headers = {k.lower(): v for k, v in answer.headers.items()}
            return answer.status, headers, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, None
    except OSError:
        if quiet:
            return 0, {}, None
        raise


@contextmanager
def bench_database(url: str, keep: bool) -> Iterator[str]:
    """A database of its own for this run, dropped at the end unless kept."""
    name = f"timeline_bench_{uuid.uuid4().hex[:8]}"
    admin = parse_url(url).conninfo()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{url.split('?')[0].rsplit('/', 1)[0]}/{name}"
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


# Loading and building ------------------------------------------------------------------


def backfill_file(
    env: dict[str, str], path: Path, logs: Path, *, sample: bool = False
) -> dict[str, Any]:
    """`timeline backfill FILE` as an admin runs it; its peak RSS sampled from /proc while
    it runs and taken from wait4 when it ends; with `sample`, its profile."""
    report_path = logs / "backfill-report.json"
    args = ["-m", "service.cli", "backfill", str(path), "--batch-size", "1000"]
    started = time.perf_counter()
    with (logs / "backfill.log").open("wb") as out:
        popen = subprocess.Popen(  # noqa: S603 (our own command line)
            [sys.executable, *args, "--report", str(report_path)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    peak = 0.0
    with ExitStack() as stack:
        sampler = stack.enter_context(profile.Sampler(popen.pid, PROFILE_S)) if sample else None
        while True:
            pid, status, usage = os.wait4(popen.pid, os.WNOHANG)
            if pid:
                popen.returncode = os.waitstatus_to_exitcode(status)
                break
            peak = max(peak, vmhwm_mb(popen.pid))
            time.sleep(0.2)
    seconds = time.perf_counter() - started
    if popen.returncode != 0:
        raise RuntimeError(f"backfill failed: {(logs / 'backfill.log').read_text()[-2000:]}")
    answer = json.loads(report_path.read_text())
    return {
        "lines": answer["accepted"] + answer["duplicates"] + len(answer["rejected"]),
        "accepted": answer["accepted"],
        "rejected": len(answer["rejected"]),
        "seconds": seconds,
        "peak_rss_mb": max(peak, usage.ru_maxrss / 1024),
        **({"profile": sampler.summary()} if sampler else {}),
    }


def build_read_models(database_url: str, *, sample: bool = False) -> dict[str, Any]:
    """Read the whole log (the baseline), then rebuild each projection from position 0
    as `timeline rebuild NAME` does (with `sample`, profiled); then VACUUM ANALYZE, as
    autovacuum soon would."""
    store = parse_url(database_url)
    app = open_timeline(store)
    try:
        started = time.perf_counter()
        count, after = 0, 0
        while notes := app.recorder.select_notifications(
            start=after, limit=500, inclusive_of_start=False
        ):
            for note in notes:
                app.mapper.to_domain_event(note)
            count += len(notes)
            after = notes[-1].id
        out: dict[str, Any] = {"events": count, "log_read_s": time.perf_counter() - started}
        models = open_read_models(store, app)
        try:
            started = time.perf_counter()
            with ExitStack() as stack:
                sampler = (
                    stack.enter_context(profile.Sampler(os.getpid(), PROFILE_S)) if sample else None
                )
                applied = models.rebuild()
            out[NAME] = {"events": applied, "seconds": time.perf_counter() - started}
            if sampler:
                out[NAME]["profile"] = sampler.summary()
        finally:
            models.close()
    finally:
        app.close()
    with psycopg.connect(store.conninfo(), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return out


def run_module(module: str, records: int, database_url: str, logs: Path) -> dict[str, Any]:
    """`python -m bench.catchup` / `bench.backfill` with --json; their figures as written."""
    out = logs / f"{module}.json"
    args = ["-m", module, "--records", str(records), "--url", database_url, "--json", str(out)]
    with (logs / f"{module}.log").open("wb") as log:
        done = subprocess.run(  # noqa: S603 (our own command line)
            [sys.executable, *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed: {(logs / f'{module}.log').read_text()[-2000:]}")
    found: dict[str, Any] = json.loads(out.read_text())
    return found


def run_drafts(logs: Path) -> dict[str, Any]:
    """`python -m bench.drafts` on a megabyte of text (no database)."""
    out = logs / "bench.drafts.json"
    with (logs / "bench.drafts.log").open("wb") as log:
        done = subprocess.run(  # noqa: S603 (our own command line)
            [sys.executable, "-m", "bench.drafts", "--megabytes", "1", "--json", str(out)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(
            f"bench.drafts failed: {(logs / 'bench.drafts.log').read_text()[-2000:]}"
        )
    found: dict[str, Any] = json.loads(out.read_text())
    return found


def run_backup(events: int, database_url: str, logs: Path) -> dict[str, Any]:
    """`python -m bench.backup` on PostgreSQL, in schemas of the suite's database."""
    out = logs / "bench.backup.json"
    args = ["-m", "bench.backup", "--events", str(events), "--stores", "postgres"]
    args += ["--url", database_url, "--json", str(out)]
    with (logs / "bench.backup.log").open("wb") as log:
        done = subprocess.run(  # noqa: S603 (our own command line)
            [sys.executable, *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(
            f"bench.backup failed: {(logs / 'bench.backup.log').read_text()[-2000:]}"
        )
    found: dict[str, Any] = json.loads(out.read_text())["postgres"]
    return found


# The read workload ---------------------------------------------------------------------


@dataclass
class Workload:
    timeline: list[str] = field(default_factory=list)  # paths: a leaf topic's page
    wide: list[str] = field(default_factory=list)  # the same windows on the wide topic
    who_said_what: list[str] = field(default_factory=list)
    counts: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # a day's span each
    day_events: int = 0  # events in the span of each of `changes`
    as_of: str = ""
    as_of_position: int = 0
    head: int = 0
    items: dict[str, float] = field(default_factory=dict)  # mean items per page


def _wsw_count(base: str, topic: str, since: str, until: str, as_of: str = "") -> int:
    extra = f"&as_of={as_of}" if as_of else ""
    status, _, body = fetch(
        f"{base}/topics/{topic}/who-said-what?since={since}&until={until}&limit=500{extra}"
    )
    if status != 200:
        raise RuntimeError(f"who-said-what {topic} answered {status}")
    return sum(int(s["count"]) for s in body["speakers"])


def _records(page: dict[str, Any]) -> int:
    """The records a page of who-said-what holds (a record of two speakers: twice)."""
    return sum(len(s["records"]) for s in page["speakers"])


def _window(base: str, topic: str, since: str, want: int = 50) -> str:
    """The shortest window from `since` (in days, up to 4096) holding `want` records."""
    start = date.fromisoformat(since)

    def until(days: int) -> str:
        return (start + timedelta(days=days - 1)).isoformat()

    days = 1
    while days < 4096 and _wsw_count(base, topic, since, until(days)) < want:
        days *= 2
    low = days // 2
    while days - low > 1:
        middle = (low + days) // 2
        if _wsw_count(base, topic, since, until(middle)) >= want:
            days = middle
        else:
            low = middle
    return until(days)


def _recorded_at(base: str, position: int) -> str:
    """When the first event at or after a position was recorded."""
    _, _, page = fetch(f"{base}/events?after={position - 1}&limit=1")
    return str(page["events"][0]["recorded_at"])


def calibrate(base: str) -> Workload:
    """Pages of about 50 items: leaf topics with windows sized to hold 50 records, the
    timeline also on a wide topic; an `as_of` instant at 90% of the log; the counts by
    month; and the changes of a day (its share of the log, at least 100 events) at three
    points of the log, from and to the recorded times of its first and last events, all
    of them and on the wide topic."""
    w = Workload()
    for topic, since in PAGE_TOPICS:
        until = _window(base, topic, since)
        window = f"since={since}&until={until}"
        w.who_said_what.append(f"/topics/{topic}/who-said-what?{window}")
        w.timeline.append(f"/timeline?topic={topic}&{window}&limit=50")
        w.wide.append(f"/timeline?topic={WIDE_TOPIC}&{window}&limit=50")
    _, headers, _ = fetch(f"{base}/events?limit=1")
    w.head = int(headers["x-timeline-position"])
    w.as_of_position = max(1, w.head * 9 // 10)
    w.as_of = _recorded_at(base, w.as_of_position)
    w.counts = ["/timeline/counts?bucket=month"]
    w.day_events = max(100, w.head // OCCURRED_DAYS)
    for share in DAY_POINTS:
        start = int(w.head * share)
        span = f"from={_recorded_at(base, start)}&to={_recorded_at(base, start + w.day_events)}"
        w.changes += [f"/changes?{span}", f"/changes?{span}&topic={WIDE_TOPIC}"]
    w.items = {
        "timeline": _mean_items(base, w.timeline, lambda b: len(b["items"])),
        "wide": _mean_items(base, w.wide, lambda b: len(b["items"])),
        "who_said_what": _mean_items(base, w.who_said_what, _records),
        "timeline_as_of": _mean_items(base, as_of(w.timeline, w.as_of), lambda b: len(b["items"])),
        "who_said_what_as_of": _mean_items(base, as_of(w.who_said_what, w.as_of), _records),
        "changes": _mean_items(base, w.changes, lambda b: len(b["items"])),
        "counts": _mean_items(base, w.counts, lambda b: int(b["total"])),
    }
    return w


def as_of(paths: list[str], instant: str) -> list[str]:
    return [f"{p}&as_of={instant}" for p in paths]


def _mean_items(base: str, paths: list[str], count: Callable[[Any], int]) -> float:
    return sum(count(fetch(base + p)[2]) for p in paths) / len(paths)


def flatten(database_url: str) -> None:
    """Fill the baselines' flat tables (`bench/baseline_app.py`) with the records the
    service shows now: the counts' (the kind and start of each current record of the
    timeline's rows) and the physical limit's pages (`fill_flat`)."""
    conninfo = parse_url(database_url).conninfo()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        found = conn.execute("SELECT generation FROM rm_registry WHERE name = 'timeline'")
        generation = (found.fetchone() or (1,))[0]
        rows = sql.Identifier(f"rm_timeline_g{generation}_rows")
        flat = sql.Identifier(FLAT)
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (kind text NOT NULL, start_at timestamptz NOT NULL)"
            ).format(flat)
        )
        conn.execute(sql.SQL("TRUNCATE {}").format(flat))
        conn.execute(
            sql.SQL(
                "INSERT INTO {} SELECT kind, start_at FROM {} "
                "WHERE to_pos IS NULL AND kind = ANY(%s)"
            ).format(flat, rows),
            (list(RECORD_KINDS),),
        )
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(flat))
    fill_flat(conninfo, generation)


def settle(base: str, timeout: float) -> None:
    """Wait until every read model has caught up with the log (between write runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, body = fetch(f"{base}/projections")
        if status == 200 and all(p["lag"] == 0 for p in body["items"]):
            return
        time.sleep(0.2)


def quiet(database_url: str, timeout: float = 120) -> None:
    """Wait until the database runs no statement but this one: a load run that outlasts
    its clients (a queue of slow statements, such as the counts') must not weigh on the
    next one."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            (busy,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone() or (0,)
            if not busy:
                return
            time.sleep(0.2)


# Measuring -----------------------------------------------------------------------------


@dataclass
class Runs:
    """Every load run by name, with the CPU (in cores) the server and the whole machine
    used during it: the machine's share shows what else ran."""

    wrk: load.Wrk
    results: dict[str, list[load.Result]] = field(default_factory=dict)
    server_cores: dict[str, list[float]] = field(default_factory=dict)
    machine_cores: dict[str, list[float]] = field(default_factory=dict)
    profiles: dict[str, Any] = field(default_factory=dict)

    def profile(self, name: str, server: Proc, spec: load.Load) -> None:
        """One more run, not counted, with py-spy sampling the server."""
        with profile.Sampler(server.pid, spec.duration + 5) as sampler:
            result = self.wrk.run(spec)
        self.profiles[name] = {**sampler.summary(), "rate": result.rate}
        print(f"  profiled {name}: {sampler.samples} samples", flush=True)

    def run(self, name: str, server: Proc, spec: load.Load, *, record: bool = True) -> None:
        cpu, busy = server.cpu_seconds(), busy_seconds()
        result = self.wrk.run(spec)
        seconds = result.seconds or 1.0
        cores = (server.cpu_seconds() - cpu) / seconds
        machine = (busy_seconds() - busy) / seconds
        if record:
            self.results.setdefault(name, []).append(result)
            self.server_cores.setdefault(name, []).append(cores)
            self.machine_cores.setdefault(name, []).append(machine)
        print(
            f"  {name:<44}{result.rate:>10,.0f}/s  p50 {result.p50_ms:7.1f} ms  "
            f"p99 {result.p99_ms:7.1f} ms  cores: server {cores:.2f}, wrk "
            f"{result.client_cpu:.2f}, machine {machine:.2f}",
            flush=True,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            name: [
                {**r.as_dict(), "server_cores": round(c, 3), "machine_cores": round(m, 3)}
                for r, c, m in zip(
                    results, self.server_cores[name], self.machine_cores[name], strict=True
                )
            ]
            for name, results in self.results.items()
        }


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy (all cores, from /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def page_reads(service: Proc, baseline: Proc, w: Workload) -> list[tuple[str, Proc, str]]:
    """The pages, each beside the physical limit's answer to the same paths."""
    flat = ["/flat" + p for p in w.timeline], ["/flat" + p for p in w.wide]
    return [
        ("timeline", service, load.get_paths(w.timeline)),
        ("timeline (physical limit)", baseline, load.get_paths(flat[0])),
        ("wide topic", service, load.get_paths(w.wide)),
        ("wide topic (physical limit)", baseline, load.get_paths(flat[1])),
        ("who-said-what", service, load.get_paths(w.who_said_what)),
        (
            "who-said-what (physical limit)",
            baseline,
            load.get_paths(["/flat" + p for p in w.who_said_what]),
        ),
    ]


def identical(service: Proc, baseline: Proc, w: Workload) -> None:
    """The physical limit answers each kind of page byte for byte as the service does
    (checked before every timing, on the tables just filled)."""
    for path in (w.timeline[0], w.wide[0], w.who_said_what[0]):
        with urllib.request.urlopen(service.url + path, timeout=60) as answer:  # noqa: S310
            mine = answer.read()
        with urllib.request.urlopen(f"{baseline.url}/flat{path}", timeout=60) as answer:  # noqa: S310
            theirs = answer.read()
        if mine != theirs:
            raise RuntimeError(f"the physical limit answers {path} otherwise than the service")


def measure_http(
    cfg: Config,
    runs: Runs,
    service: Proc,
    baseline: Proc,
    w: Workload,
    key: str,
    db: str,
    servers: list[Proc],
) -> None:
    """Every load run of the service and its baselines; the pages also on each of the
    other `servers` (the same app); with `pages_only`, the pages alone."""

    def spec(
        proc: Proc, script: str, connections: int = cfg.connections, threads: int = 2
    ) -> load.Load:
        return load.Load(proc.url, script, connections, threads, cfg.duration)

    reads = [
        *page_reads(service, baseline, w),
        ("timeline (baseline)", baseline, load.get_paths(w.timeline)),
        ("who-said-what (baseline)", baseline, load.get_paths(w.who_said_what)),
        ("timeline as_of", service, load.get_paths(as_of(w.timeline, w.as_of))),
        ("who-said-what as_of", service, load.get_paths(as_of(w.who_said_what, w.as_of))),
        ("20 items, no database (baseline)", baseline, load.get_paths(["/items20"])),
        ("counts by month", service, load.get_paths(w.counts)),
        ("counts by month (baseline)", baseline, load.get_paths(["/counts?bucket=month"])),
        ("changes in a day", service, load.get_paths(w.changes)),
    ]
    actors = [f"actor-{i}" for i in range(0, ACTORS, 20)]
    topics = [f"topic-{i}" for i in range(0, TOPICS, 5)]
    appends = [
        ("appends", service, "/statements"),
        ("appends: INSERT+COMMIT per request (baseline)", baseline, "/append"),
        ("appends: save() per request (baseline)", baseline, "/append-save"),
    ]
    if cfg.pages_only:
        reads = page_reads(service, baseline, w)
    if cfg.warmup:
        print("warm-up", flush=True)
        flatten(db)
        identical(service, baseline, w)
        for name, proc, script in reads:
            runs.run(name, proc, replace(spec(proc, script), duration=cfg.warmup), record=False)
        for name, proc, path in [] if cfg.pages_only else appends:
            script = load.post_statements(path, key, f"warm-{path[1:]}", actors, topics)
            runs.run(name, proc, replace(spec(proc, script), duration=cfg.warmup), record=False)
    for rep in range(cfg.repeats):
        print(f"reads, repeat {rep + 1} of {cfg.repeats}", flush=True)
        # The counts' baseline holds the records the service counts, the last repeat's
        # writes too.
        settle(service.url, 300)
        flatten(db)
        identical(service, baseline, w)
        for name, proc, script in reads:
            quiet(db)
            runs.run(name, proc, spec(proc, script))
        for server in servers:
            for name, paths in (("timeline", w.timeline), ("wide topic", w.wide)):
                quiet(db)
                runs.run(f"{name} on {server.name}", server, spec(server, load.get_paths(paths)))
            quiet(db)
            script = load.get_paths(w.who_said_what)
            runs.run(f"who-said-what on {server.name}", server, spec(server, script))
        if cfg.pages_only:
            continue
        print(f"appends, repeat {rep + 1} of {cfg.repeats}", flush=True)
        tag = f"{rep}-{uuid.uuid4().hex[:6]}"
        for name, proc, path in appends:
            settle(service.url, 300)
            quiet(db)
            script = load.post_statements(path, key, f"{tag}-{path[1:]}", actors, topics)
            runs.run(name, proc, spec(proc, script))
        settle(service.url, 300)
        print(f"read-your-writes, repeat {rep + 1} of {cfg.repeats}", flush=True)
        script = load.read_your_writes(key, f"{tag}-ryw", actors, topics)
        runs.run(
            "read-your-writes", service, spec(service, script, cfg.ryw_clients, cfg.ryw_clients)
        )
    if cfg.profile:
        print("profiles", flush=True)
        for name, proc, script in reads:
            if proc is service:
                runs.profile(name, proc, spec(proc, script))
        if not cfg.pages_only:
            settle(service.url, 300)
            script = load.post_statements("/statements", key, "profile", actors, topics)
            runs.profile("appends", service, spec(service, script))


# Reads that wait and live streams, beside the writes ------------------------------------

WAITERS, STREAMS, STARVE_CONNECTIONS = 100, 300, 8


@contextmanager
def idle_clients(kind: str, base: str, clients: int, path: str, logs: Path) -> Iterator[None]:
    """`bench.idle` clients in a process of their own, until the block ends; then their
    answers are logged."""
    out = logs / f"idle-{kind}.log"
    with out.open("wb") as log:
        popen = subprocess.Popen(  # noqa: S603 (our own module)
            [sys.executable, "-m", "bench.idle", kind, base, str(clients), path],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield
    finally:
        popen.terminate()
        popen.wait(30)
        print(f"  {kind}: {out.read_text().strip().splitlines()[-1]}", flush=True)


def gauge(base: str, name: str) -> float:
    """A gauge of the service's /metrics."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as answer:  # noqa: S310
        for line in answer.read().decode().splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
    return 0.0


def until_gauge(base: str, name: str, value: float, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while gauge(base, name) < value:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not reach {value} within {timeout} s")
        time.sleep(0.2)


def measure_starvation(
    cfg: Config, runs: Runs, service: Proc, projector: Proc, key: str, logs: Path
) -> None:
    """POSTs alone, then beside 100 reads that wait (the worker paused, so that each
    waits for a position the log holds, up to TIMELINE_WAIT_TIMEOUT, and asks again),
    then beside 300 live streams opened at the head (sent every event the POSTs make)."""
    actors = [f"actor-{i}" for i in range(0, ACTORS, 20)]
    topics = [f"topic-{i}" for i in range(0, TOPICS, 5)]

    def post(name: str, tag: str) -> None:
        script = load.post_statements("/statements", key, tag, actors, topics)
        spec = load.Load(service.url, script, STARVE_CONNECTIONS, 2, cfg.duration)
        runs.run(name, service, spec)

    for rep in range(cfg.repeats):
        print(f"writes beside waiting reads and live streams, repeat {rep + 1}", flush=True)
        tag = f"starve-{rep}-{uuid.uuid4().hex[:6]}"
        settle(service.url, 300)
        post("POST, unloaded", f"{tag}-alone")
        settle(service.url, 300)
        head = int(fetch(f"{service.url}/projections")[2]["items"][0]["head"])
        os.kill(projector.pid, signal.SIGSTOP)
        try:
            path = f"/timeline?min_position={head + 1}"
            post("POST, unloaded (worker paused)", f"{tag}-paused")
            with idle_clients("waiters", service.url, WAITERS, path, logs):
                until_gauge(service.url, "timeline_waiting_reads", WAITERS)
                post(f"POST, {WAITERS} reads waiting", f"{tag}-waiting")
        finally:
            os.kill(projector.pid, signal.SIGCONT)
        settle(service.url, 300)
        head = int(fetch(f"{service.url}/projections")[2]["items"][0]["head"])
        with idle_clients("streams", service.url, STREAMS, f"/events/stream?after={head}", logs):
            until_gauge(service.url, "timeline_open_streams", STREAMS)
            post(f"POST, {STREAMS} streams following", f"{tag}-streams")


# The table -----------------------------------------------------------------------------


def _vals(runs: Runs, name: str, get: Callable[[load.Result], float]) -> list[float]:
    return [get(r) for r in runs.results[name]]


def http_row(
    runs: Runs,
    name: str,
    measure: str,
    baseline: report.Row | None = None,
    *,
    compare: str = "",
    short: str = "",
) -> report.Row:
    """A load run's figures over repeats: 2xx answers per second, p50, p99, and the CPU
    the server and the load generator used (cores, medians)."""
    results = runs.results[name]
    errors, _ = _refused(runs, name)
    out = report.row(
        measure,
        "req/s",
        _vals(runs, name, lambda r: r.ok_rate()),
        p50_ms=_vals(runs, name, lambda r: r.p50_ms),
        p99_ms=_vals(runs, name, lambda r: r.p99_ms),
        baseline=baseline,
        compare=compare,
        short=short,
        note=f"{measure}: {errors} answers >= 400 or timed out." if errors else "",
    )
    out["server_cores"] = statistics.median(runs.server_cores[name])
    out["client_cores"] = statistics.median(r.client_cpu for r in results)
    out["machine_cores"] = statistics.median(runs.machine_cores[name])
    return out


def scenario_appends(cfg: Config, runs: Runs) -> dict[str, Any]:
    save = http_row(
        runs,
        "appends: save() per request (baseline)",
        "bare handler: eventsourcing save() of one aggregate per request",
        short="save() per request",
    )
    plain = http_row(
        runs,
        "appends: INSERT+COMMIT per request (baseline)",
        "bare handler: one INSERT + COMMIT per request",
        short="INSERT+COMMIT per request",
    )
    service = http_row(runs, "appends", "service: POST /statements", baseline=save)
    service["unit"] = "statements/s"
    ratio, p99 = service.get("ratio", 0.0), service["p99_ms"]["median"]
    return {
        "id": 1,
        "title": f"API appends, {cfg.connections} concurrent clients",
        "rows": [service, save, plain],
        "targets": [
            report.target(
                "≥ 4x one commit per request (save() per request, same run)",
                ratio,
                ratio >= 4,
                f"{ratio:.2f}x",
            ),
            report.target("p99 < 100 ms", p99, p99 < 100, f"{p99:.1f} ms"),
        ],
        "notes": [
            "Each request a new statement (unique key) with a write key; `timeline project` "
            "follows in its own process. The service's rate counts 2xx answers; its ratio is "
            "to a bare Litestar handler that saves one eventsourcing aggregate per request, "
            "i.e. one commit per request through the same event store (table lock, NOTIFY). "
            f"The service makes {plain['median'] and service['median'] / plain['median']:.2f}x "
            "the rate of a bare handler doing one plain INSERT + COMMIT per request (no "
            "table lock)."
        ],
    }


PAGES = (
    ("timeline", "a leaf topic's timeline"),
    ("wide topic", f"the timeline of {WIDE_TOPIC} (36 subtopics)"),
    ("who-said-what", "who-said-what"),
)


def scenario_pages(cfg: Config, runs: Runs, w: Workload) -> dict[str, Any]:
    rows, targets, p99s = [], [], {}
    for name, shown in PAGES:
        limit = http_row(
            runs,
            f"{name} (physical limit)",
            f"physical limit: {shown}, one statement on flat tables",
            short="physical limit",
        )
        mine = http_row(runs, name, f"service: {shown}", baseline=limit)
        rows += [mine, limit]
        p99s[name] = p99 = mine["p99_ms"]["median"]
        ratio = mine.get("ratio", 0.0)
        targets += [
            report.target(
                f"{name}: ≥ 0.5x the physical limit", ratio, ratio >= 0.5, f"{ratio:.2f}x"
            ),
            report.target(
                f"{name}: p99 < 50 ms at {cfg.connections} connections",
                p99,
                p99 < 50,
                f"{p99:.1f} ms",
            ),
        ]
    wide = p99s["wide topic"] / p99s["timeline"] if p99s["timeline"] else 0.0
    targets.append(
        report.target("wide topic: p99 ≤ 1.5x a leaf topic's", wide, wide <= 1.5, f"{wide:.2f}x")
    )
    for name in ("timeline", "who-said-what"):
        if f"{name} (baseline)" in runs.results:
            rows.append(
                http_row(runs, f"{name} (baseline)", f"bare handler, the service's SQL: {name}")
            )
    if "20 items, no database (baseline)" in runs.results:
        rows.append(
            http_row(
                runs,
                "20 items, no database (baseline)",
                "bare handler: 20 msgspec items, no database",
            )
        )
    return {
        "id": 2,
        "title": "Timeline and who-said-what pages against the physical limit",
        "rows": rows,
        "targets": targets,
        "notes": [
            f"Pages filter on a topic and an occurred-time window sized to hold about 50 "
            f"records: {len(w.timeline)} leaf topics' windows, the same windows on the wide "
            f"topic, and who-said-what on the leaf topics, in turn (timeline "
            f"{w.items['timeline']:.0f} items a page, wide {w.items['wide']:.0f}, "
            f"who-said-what {w.items['who_said_what']:.0f}). The physical limit is a bare "
            "async Litestar handler on a psycopg async pool answering the same paths byte "
            "for byte (checked before each repeat) from flat tables filled in the same run "
            "with the records the service shows: a record listed under each of its topics "
            "and their ancestors in one composite index, its item rendered ahead; one "
            "statement a page (bench/baseline_app.py). The bare handler running the "
            "service's SQL shows what the read models' SQL costs; the no-database row is "
            "the framework's ceiling on this machine and the load generator's headroom."
        ],
    }


def other_servers() -> list[tuple[str, list[str], int]]:
    """The ASGI servers the pages are measured on, each serving the service's app in one
    process (`--port` last): uvicorn with its pure-Python parser and loop, uvicorn with
    uvloop and httptools, granian (those installed)."""
    app = "service.http.asgi:app"
    uvicorn = f"-m uvicorn --factory {app} --log-level warning --no-access-log"
    found = [
        ("uvicorn h11", shlex.split(f"{uvicorn} --loop asyncio --http h11 --port"), "h11"),
        (
            "uvicorn uvloop+httptools",
            shlex.split(f"{uvicorn} --loop uvloop --http httptools --port"),
            "uvloop",
        ),
        (
            "granian",
            shlex.split(f"-m granian --interface asgi --factory --log-level warning {app} --port"),
            "granian",
        ),
    ]
    return [(n, args, free_port()) for n, args, need in found if importlib.util.find_spec(need)]


CHOSEN_SERVER = "uvicorn uvloop+httptools"  # what `timeline serve` runs (decision 024)


def scenario_servers(cfg: Config, runs: Runs, servers: list[Proc]) -> dict[str, Any]:
    rows: list[report.Row] = []
    targets = []
    for name, shown in PAGES:
        first: report.Row | None = None
        for s in servers:
            row = http_row(runs, f"{name} on {s.name}", f"{s.name}: {shown}", first, short=s.name)
            rows.append(row)
            first = first or row
            if s.name == CHOSEN_SERVER and "ratio" in row:
                ratio = row["ratio"]
                targets.append(
                    report.target(
                        f"{name}: the server chosen ≥ 1x h11", ratio, ratio >= 1, f"{ratio:.2f}x"
                    )
                )
    return {
        "id": 13,
        "title": f"The same pages on other ASGI servers, {cfg.connections} connections",
        "rows": rows,
        "targets": targets,
        "notes": [
            "The service's app (`service.http.asgi:app`) in one process under each server, in the "
            "same run, in turn; ratios to uvicorn with its pure-Python h11 and asyncio "
            "(decision 024). Granian serves from a worker process of its own: its CPU is "
            "not counted in the server column."
        ],
    }


def scenario_as_of(runs: Runs, w: Workload) -> dict[str, Any]:
    rows, targets = [], []
    for name in ("timeline", "who-said-what"):
        now = http_row(runs, name, f"service: {name} page, current", short="current")
        then = http_row(
            runs, f"{name} as_of", f"service: {name} page, as_of", now, compare="p99_ms"
        )
        rows += [then, now]
        ratio = then.get("ratio", 0.0)
        targets.append(
            report.target(f"{name}: as_of p99 ≤ 1.5x current", ratio, ratio <= 1.5, f"{ratio:.2f}x")
        )
    return {
        "id": 3,
        "title": "The same reads as_of a past instant",
        "rows": rows,
        "targets": targets,
        "notes": [
            f"as_of {w.as_of}, the instant of position {w.as_of_position:,} of {w.head:,} "
            f"(90%: all records, part of the corrections). Pages held "
            f"{w.items['timeline_as_of']:.0f} (timeline) and "
            f"{w.items['who_said_what_as_of']:.0f} (who-said-what) items."
        ],
    }


def scenario_projections(built: dict[str, Any], catchup: dict[str, Any]) -> dict[str, Any]:
    events = built["events"]
    log = report.row(
        "notification log read + decode",
        "events/s",
        [events / built["log_read_s"]],
        short="log read",
    )
    rows = [log]
    rates = []
    rate = built[NAME]["events"] / built[NAME]["seconds"]
    rates.append(rate)
    rows.append(report.row(f"full rebuild from 0: {NAME}", "events/s", [rate], baseline=log))
    module_log = report.row(
        f"bench.catchup: log read + decode ({catchup.get('events', 0):,} events)",
        "events/s",
        [float(catchup.get("log_read_events_per_s", 0))],
        short="its log read",
    )
    rows.append(module_log)
    for p in catchup.get("projections", []):
        rows.append(
            report.row(
                f"bench.catchup: catch-up, {p['projection']}",
                "events/s",
                [float(p["events_per_s"])],
                baseline=module_log,
            )
        )
    slowest = min(rates)
    million = 1_000_000 / slowest
    scaled = "" if events >= 1_000_000 else f" (from {events:,} events)"
    return {
        "id": 4,
        "title": "Projection catch-up and full rebuild",
        "rows": rows,
        "targets": [
            report.target(
                "≥ 10,000 events/s per projection (rebuild)",
                slowest,
                slowest >= 10_000,
                f"slowest {slowest:,.0f}/s",
            ),
            report.target(
                "a 1M-event rebuild under 2 minutes (per projection)",
                million,
                million < 120,
                f"{million:.0f} s{scaled}",
            ),
        ],
        "notes": [
            f"Rebuilds run the `timeline rebuild` path (`ReadModels.rebuild`) on the suite's "
            f"{events:,}-event history; one projection keeps all four read models "
            "(decision 008); `bench.catchup` "
            f"builds its own history (batch {catchup.get('batch_size', '?')})."
        ],
    }


def scenario_read_your_writes(cfg: Config, runs: Runs) -> dict[str, Any]:
    results = runs.results["read-your-writes"]

    def timing(kind: str, key: str) -> list[float]:
        return [float(r.timings[kind][key]) for r in results if kind in r.timings]

    def rate(kind: str) -> list[float]:
        return [float(r.timings[kind]["count"]) / r.seconds for r in results if kind in r.timings]

    pair = report.row(
        f"POST then GET with min_position, {cfg.ryw_clients} clients",
        "pairs/s",
        rate("pair"),
        p50_ms=timing("pair", "p50"),
        p99_ms=timing("pair", "p99"),
    )
    get = report.row(
        "of which the GET with min_position",
        "req/s",
        rate("get"),
        p50_ms=timing("get", "p50"),
        p99_ms=timing("get", "p99"),
    )
    post = report.row(
        "of which the POST",
        "req/s",
        rate("post"),
        p50_ms=timing("post", "p50"),
        p99_ms=timing("post", "p99"),
    )
    statuses: dict[str, int] = {}
    for r in results:
        for k, n in r.statuses.items():
            statuses[k] = statuses.get(k, 0) + n
    p99 = get["p99_ms"]["median"]
    return {
        "id": 5,
        "title": "Read-your-writes",
        "rows": [pair, get, post],
        "targets": [
            report.target(
                "GET with min_position after its POST: p99 < 50 ms",
                p99,
                p99 < 50,
                f"{p99:.1f} ms (pair {pair['p99_ms']['median']:.1f} ms)",
            )
        ],
        "notes": [
            "Each client posts a statement, then reads it back with `GET /statements/{id}"
            "?min_position=<the position the POST answered>`; the read waits until the "
            "`timeline project` process has applied it. Times are taken in the load "
            f"generator. Answers: {json.dumps(statuses, sort_keys=True)}."
        ],
    }


def scenario_starvation(runs: Runs) -> dict[str, Any]:
    alone = http_row(runs, "POST, unloaded", "POST /statements alone", short="alone")
    paused = http_row(
        runs,
        "POST, unloaded (worker paused)",
        "POST /statements alone, the worker paused",
        short="alone, worker paused",
    )
    waiting = http_row(
        runs,
        f"POST, {WAITERS} reads waiting",
        f"POST /statements beside {WAITERS} reads that wait",
        paused,
        compare="p99_ms",
    )
    streams = http_row(
        runs,
        f"POST, {STREAMS} streams following",
        f"POST /statements beside {STREAMS} live streams",
        alone,
        compare="p99_ms",
    )
    targets = [
        report.target(
            f"POST p99 beside {WAITERS} waiting reads ≤ 2x alone",
            waiting.get("ratio", 0.0),
            waiting.get("ratio", 0.0) <= 2,
            f"{waiting.get('ratio', 0.0):.2f}x",
        ),
        report.target(
            f"POST p99 beside {STREAMS} live streams ≤ 2x alone",
            streams.get("ratio", 0.0),
            streams.get("ratio", 0.0) <= 2,
            f"{streams.get('ratio', 0.0):.2f}x",
        ),
    ]
    return {
        "id": 8,
        "title": "Writes beside reads that wait and live streams",
        "rows": [waiting, paused, streams, alone],
        "targets": targets,
        "notes": [
            f"{STARVE_CONNECTIONS} clients POST statements. Beside them, `bench.idle` keeps "
            f"{WAITERS} reads of `/timeline?min_position=<head + 1>` waiting (the worker is "
            "paused, so each waits TIMELINE_WAIT_TIMEOUT, answers 503 and is sent again), "
            f"or {STREAMS} `/events/stream` connections opened at the head, idle until the "
            "POSTs start and then sent every event they write. Each ratio is of p99s, to "
            "the POSTs alone in the same repeat (with the worker paused too, for the "
            "waiting reads: a paused worker leaves the API more CPU)."
        ],
    }


def scenario_counts(cfg: Config, runs: Runs, w: Workload) -> dict[str, Any]:
    base = http_row(
        runs,
        "counts by month (baseline)",
        "bare handler: one GROUP BY over a flat table of the same records",
        short="bare GROUP BY",
    )
    mine = http_row(
        runs,
        "counts by month",
        "service: /timeline/counts?bucket=month",
        base,
        compare="p99_ms",
    )
    return {
        "id": 9,
        "title": "Counts of the timeline by month",
        "rows": [mine, base],
        "targets": [counts_target(cfg.connections, mine, _refused(runs, "counts by month"))],
        "notes": [
            f"Every current record counted by the month of its occurred start "
            f"({w.items['counts']:,.0f} records). The service runs one GROUP BY over the "
            "timeline's versioned rows (wide rows: their items' JSON, and the closed "
            "versions beside the current ones); the bare handler runs the same GROUP BY "
            "over a flat table holding only the kind and start of the same records, "
            "copied from the read model before each repeat. The ratio is of p99s."
        ],
    }


def _refused(runs: Runs, name: str) -> tuple[int, int]:
    """How many of a load's answers were errors (>= 400, or timed out), of how many."""
    results = runs.results[name]
    errors = sum(r.errors.get("status", 0) + r.errors.get("timeout", 0) for r in results)
    return errors, sum(r.requests for r in results)


def counts_target(connections: int, mine: report.Row, refused: tuple[int, int]) -> dict[str, Any]:
    """Met when the service's p99 is within 1.5x the bare GROUP BY's and it refused
    nothing: a p99 of quick 503s (the pool's timeout, shedding the queue) is no answer."""
    p99, ratio = mine["p99_ms"]["median"], mine.get("ratio", 0.0)
    errors, answers = refused
    shown = f"{ratio:.2f}x ({p99:.1f} ms)"
    if errors:
        shown += f", but {errors:,} of {answers:,} answers were 503s"
    return report.target(
        f"p99 at {connections} connections ≤ 1.5x the bare GROUP BY's, every answer a count",
        ratio,
        ratio <= 1.5 and not errors,
        shown,
    )


def scenario_changes(cfg: Config, runs: Runs, w: Workload) -> dict[str, Any]:
    row = http_row(runs, "changes in a day", "service: /changes over a day, first page")
    p99 = row["p99_ms"]["median"]
    return {
        "id": 10,
        "title": "What changed in a day",
        "rows": [row],
        "targets": [
            report.target(
                f"p99 < 25 ms at {cfg.connections} connections",
                p99,
                p99 < 25,
                f"{p99:.1f} ms",
            )
        ],
        "notes": [
            "The history is recorded in a few minutes: a day of recorded time would hold "
            "all of it. A day here is the share of the log that one day of the eleven "
            f"years its records occurred in holds: {w.day_events:,} events (at least 100), "
            "from and to the recorded times of its first and last events (`from`, `to`: "
            "instants, mapped to positions as `as_of` maps them), at a quarter, half and "
            f"three quarters of the log, all changes and those on {WIDE_TOPIC} (a quarter "
            f"of the topic tree): {len(w.changes)} paths in turn, "
            f"{w.items['changes']:.0f} changes a page (records added and corrected)."
        ],
    }


def _module_rates(module: dict[str, Any]) -> list[tuple[str, str, float]]:
    """bench.backfill's figures as (measure, unit, rate), from its timings (its "rates"
    names PostgreSQL's and SQLite's caught-up rates alike)."""
    lines = float(module.get("lines", 0))
    out: list[tuple[str, str, float]] = []

    def add(measure: str, unit: str, count: float, seconds: float | None) -> None:
        if count and seconds:
            out.append((measure, unit, count / seconds))

    pg = module.get("postgres_backfill", {})
    live = module.get("postgres_backfill_live", {})
    sqlite = module.get("sqlite_backfill", {})
    save = module.get("postgres_batched_save", {})
    add("PostgreSQL backfill", "lines/s", lines, pg.get("load_s"))
    add(
        "PostgreSQL backfill, then the read models caught up",
        "lines/s",
        lines,
        pg.get("with_projections_s"),
    )
    add(
        "PostgreSQL backfill, `timeline project` running: all caught up",
        "lines/s",
        lines,
        live.get("with_projections_s"),
    )
    add("SQLite backfill", "lines/s", lines, sqlite.get("load_s"))
    add(
        "SQLite backfill, then the read models caught up",
        "lines/s",
        lines,
        sqlite.get("with_projections_s"),
    )
    add("raw COPY of event rows", "rows/s", lines, module.get("postgres_copy_s"))
    add(
        "eventsourcing save(), 100 aggregates a call",
        "events/s",
        save.get("events", 0),
        save.get("s"),
    )
    return out


def scenario_backfill(loaded: dict[str, Any], module: dict[str, Any]) -> dict[str, Any]:
    rates = _module_rates(module)
    saved = [r for r in rates if "save()" in r[0]]
    save = report.row(*saved[0][:2], [saved[0][2]], short="batched save()") if saved else None
    rows = [
        report.row(
            f"`timeline backfill` of the suite's history ({loaded['lines']:,} lines, batch 1000)",
            "lines/s",
            [loaded["lines"] / loaded["seconds"]],
            baseline=save,
            note="The `timeline backfill` row includes the command's start-up; it builds no "
            "read models.",
        )
    ]
    rows += [
        report.row(f"bench.backfill: {m}", unit, [rate], baseline=save)
        for m, unit, rate in rates
        if "save()" not in m
    ]
    if save is not None:
        rows.append(save)
    # The target counts records (a fifth of the lines are corrections, some actors and
    # topics): each caught-up rate in lines/s, scaled to the records of those lines.
    per_record = float(module.get("records", 0)) / float(module.get("lines", 0) or 1)
    caught = {
        m: rate * per_record for m, _, rate in rates if "caught up" in m and "PostgreSQL" in m
    }
    best = max(caught, key=lambda m: caught[m]) if caught else "not reported"
    rate = caught.get(best, 0.0)
    return {
        "id": 6,
        "title": "Backfill",
        "rows": rows,
        "targets": [
            report.target(
                "≥ 5,000 records/s into PostgreSQL, read models caught up",
                rate,
                rate >= 5000,
                f"{rate:,.0f} records/s ({best})",
            )
        ],
        "notes": [
            f"`bench.backfill` ran with {module.get('records', 0):,} records "
            f"({module.get('lines', 0):,} lines); ratios are to eventsourcing's batched "
            "save() in the same run."
        ],
    }


def scenario_memory(loaded: dict[str, Any], rss: dict[str, float]) -> dict[str, Any]:
    backfill = loaded["peak_rss_mb"]
    rows = [
        report.row("API worker (`timeline serve`), after every load run", "MB", [rss["service"]]),
        report.row("`timeline project`, after every load run", "MB", [rss["projector"]]),
        report.row("bare baseline app, after every load run", "MB", [rss["baseline"]]),
        report.row(f"`timeline backfill` of a {loaded['lines']:,}-line file", "MB", [backfill]),
    ]
    return {
        "id": 7,
        "title": "Memory (peak RSS, VmHWM)",
        "rows": rows,
        "targets": [
            report.target(
                f"backfill of a large file under 300 MB ({loaded['lines']:,} lines)",
                backfill,
                backfill < 300,
                f"{backfill:,.0f} MB",
            )
        ],
        "notes": [
            "Peak resident set from /proc/<pid>/status (VmHWM) of each process; the backfill's "
            "also from wait4's ru_maxrss. The file is the suite's generated history."
        ],
    }


def scenario_page(drawn: dict[str, Any], events: int) -> dict[str, Any]:
    if "skipped" in drawn:
        return {
            "id": 11,
            "title": "The page in headless Chromium",
            "rows": [],
            "targets": [],
            "notes": [f"Not measured: {drawn['skipped']} (Debian's chromium package)."],
        }
    strip, items = drawn["first_histogram_median_ms"], drawn["week_items_median_ms"]
    rows = [
        report.row(
            "navigation to the first histogram (the whole history)",
            "ms",
            drawn["first_histogram_ms"],
        ),
        report.row("navigation to a week's histogram", "ms", drawn["week_histogram_ms"]),
        report.row("navigation to a week's items on the axis", "ms", drawn["week_items_ms"]),
    ]
    return {
        "id": 11,
        "title": "The page in headless Chromium",
        "rows": rows,
        "targets": [
            report.target("first histogram under 1 s", strip, strip < 1000, f"{strip:,.0f} ms"),
            report.target("a week's items under 1.5 s", items, items < 1500, f"{items:,.0f} ms"),
        ],
        "notes": [
            f"Debian's Chromium, headless, driven by Playwright, on the store of {events:,} "
            f"events; {drawn['runs']} run(s), each in a fresh browser context (nothing "
            "cached), timed by the page's own `performance.mark`s from the navigation's "
            "start. The first: `/` with no window, which counts the whole history by month "
            "(its extent) and draws that strip. The week: `/?start=2019-06-03&end=2019-06-10"
            + (f"&topic={drawn['week_topic']}" if drawn["week_topic"] else "")
            + f"`, {drawn['week_records']:,} records, which the page counts by day, then lists "
            "and draws (it draws items when 500 or fewer are in view; a week of the whole "
            "history holds more, so the widest topic that leaves 500 or fewer is taken). "
            "`bench/page.py`."
        ],
    }


# Main ----------------------------------------------------------------------------------


def scenario_backup(figures: dict[str, Any]) -> dict[str, Any]:
    events = int(figures["events"])
    log = report.row(
        f"bench.backup: log read + decode ({events:,} events)",
        "events/s",
        [float(figures["log read events/s"])],
        short="its log read",
    )
    rows = [log]
    for measure, name in (
        ("timeline export --format events, plain", "export log.ndjson events/s"),
        ("timeline export --format events, gzip", "export log.ndjson.gz events/s"),
        (
            "timeline restore (gzip file; events only, before the rebuild)",
            "restore (gzip) events/s",
        ),
    ):
        rows.append(report.row(measure, "events/s", [float(figures[name])], baseline=log))
    size = float(figures["log.ndjson MB"]) * 1e6 / events
    packed = float(figures["log.ndjson.gz MB"]) * 1e6 / events
    return {
        "id": 12,
        "title": "Backup and restore of the whole log (PostgreSQL)",
        "rows": rows,
        "targets": [],
        "notes": [
            f"`python -m bench.backup` writes its own history of {events:,} events into a "
            "schema of the suite's database, exports it plain and gzipped, and restores the "
            "gzipped file into an empty schema (the same positions); the restore's rebuild of "
            f"the read models is scenario 4's rate. A backup takes {size:,.0f} bytes an event "
            f"plain, {packed:,.0f} gzipped."
        ],
    }


def scenario_drafts(figures: dict[str, Any]) -> dict[str, Any]:
    size = float(figures["megabytes"])
    split = report.row(
        "splitting into sentences", "MB/s", [size / float(figures["sentences s"])],
        short="sentence splitting",
    )  # fmt: skip
    per_mb = float(figures["draft s"]) / size
    return {
        "id": 14,
        "title": "Drafts from an article",
        "rows": [
            report.row(
                f"drafting {size:.2f} MB of live-page text with the seed's actors",
                "MB/s",
                [size / float(figures["draft s"])],
                baseline=split,
            ),
            split,
        ],
        "targets": [
            report.target(
                "1 MB of text drafted in under 2 s",
                per_mb,
                per_mb < 2,
                f"{per_mb:.2f} s per MB",
            )
        ],
        "notes": [
            f"`python -m bench.drafts` drafted {int(figures['drafts']):,} statements; the "
            "median of three runs in one process, the rules alone (no model)."
        ],
    }


def parse(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the history")
    parser.add_argument("--smoke", action="store_true", help="5,000 events, short runs: ~1 min")
    parser.add_argument("--duration", type=int, help="seconds per load run (10; smoke 1)")
    parser.add_argument("--repeats", type=int, help="runs of each load (3; smoke 1)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--ryw-clients", type=int, default=16, help="read-your-writes clients")
    parser.add_argument(
        "--module-records",
        type=int,
        help="records for bench.catchup and bench.backfill (≤ 100,000 by default)",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "TIMELINE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server; the suite makes and drops a database of its own",
    )
    parser.add_argument(
        "--json", type=Path, help="default docs/benchmarks.json (smoke: a temp dir)"
    )
    parser.add_argument(
        "--markdown", type=Path, help="default docs/benchmarks.md (smoke: a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument(
        "--pages-only",
        action="store_true",
        help="only the pages against the physical limit and the servers (scenarios 2, 13)",
    )
    parser.add_argument(
        "--scaling-only",
        action="store_true",
        help="only many API processes and the replica, on a cluster of its own (15-17); "
        "writes its report to a temp dir unless --json/--markdown say where",
    )
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the py-spy profiles of each scenario"
    )
    args = parser.parse_args(argv)
    events = 5000 if args.smoke and args.events == 1_000_000 else args.events
    # The full run's report is docs/benchmarks.*; a smaller run writes beside it only
    # when told where.
    out = (
        Path(tempfile.gettempdir()) / "timeline-bench-smoke"
        if args.smoke or args.scaling_only
        else ROOT / "docs"
    )
    return Config(
        events=events,
        smoke=args.smoke,
        duration=args.duration or (1 if args.smoke else 10),
        repeats=args.repeats or (1 if args.smoke else 3),
        warmup=0 if args.smoke else 3,
        connections=args.connections,
        ryw_clients=args.ryw_clients,
        module_records=args.module_records or min(records_for(events), 100_000),
        url=args.url,
        json_path=args.json or out / "benchmarks.json",
        markdown_path=args.markdown or out / "benchmarks.md",
        keep=args.keep,
        profile=not args.no_profile and profile.available(),
        pages_only=args.pages_only,
        scaling_only=args.scaling_only,
        command="python -m bench.suite " + shlex.join(sys.argv[1:] if argv is None else argv),
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    cfg = parse(argv)
    wrk = load.Wrk()
    if not wrk.available():
        sys.exit("bench.suite needs wrk (Debian: apt-get install wrk)")
    started, clock = datetime.now(UTC), time.perf_counter()
    phases: dict[str, float] = {}

    def phase(name: str, since: float) -> float:
        now = time.perf_counter()
        phases[name] = now - since
        print(f"[{name}: {now - since:,.1f} s]", flush=True)
        return now

    machine = report.machine(parse_url(cfg.url).conninfo())
    runs = Runs(wrk)
    if cfg.scaling_only:
        return scaling_only(cfg, runs, machine, started)
    with (
        tempfile.TemporaryDirectory(prefix="timeline-bench-") as tmp,
        bench_database(cfg.url, cfg.keep) as db,
    ):
        logs = Path(tmp)
        env = environment(db)
        t = time.perf_counter()
        print(f"generating a history of about {cfg.events:,} events", flush=True)
        lines = write_history(logs / "history.ndjson", cfg.events)
        t = phase("generate the history", t)
        print(f"timeline backfill of {lines:,} lines", flush=True)
        loaded = backfill_file(env, logs / "history.ndjson", logs, sample=cfg.profile)
        t = phase("load it with timeline backfill", t)
        (logs / "history.ndjson").unlink()
        print("rebuilding the read models", flush=True)
        built = build_read_models(db, sample=cfg.profile)
        t = phase("rebuild the read models, VACUUM ANALYZE", t)
        key = (
            cli(["keys", "create", "bench-writer", "--scope", "write"], env)
            .strip()
            .splitlines()[-1]
        )
        with ExitStack() as stack:
            service_port, baseline_port = free_port(), free_port()
            service = stack.enter_context(
                running(
                    "service",
                    ["-m", "service.cli", "serve", "--port", str(service_port)],
                    env,
                    logs,
                    service_port,
                )
            )
            projector = stack.enter_context(
                running("projector", ["-m", "service.cli", "project"], env, logs)
            )
            baseline = stack.enter_context(
                running(
                    "baseline",
                    [
                        "-m",
                        "bench.baseline_app",
                        "--database-url",
                        db,
                        "--port",
                        str(baseline_port),
                    ],
                    env,
                    logs,
                    baseline_port,
                )
            )
            servers = [
                stack.enter_context(running(name, [*args, str(port)], env, logs, port))
                for name, args, port in other_servers()
            ]
            workload = calibrate(service.url)
            print(f"pages: {workload.items}", flush=True)
            measure_http(cfg, runs, service, baseline, workload, key, db, servers)
            if not cfg.pages_only:
                measure_starvation(cfg, runs, service, projector, key, logs)
                print("the page in headless Chromium", flush=True)
                drawn = page.measure(service.url, 1 if cfg.smoke else 5)
            rss = {
                "service": service.peak_rss_mb(),
                "projector": projector.peak_rss_mb(),
                "baseline": baseline.peak_rss_mb(),
            }
        t = phase("HTTP scenarios", t)
        if cfg.pages_only:
            modules: dict[str, Any] = {}
            scenarios = [
                scenario_pages(cfg, runs, workload),
                scenario_servers(cfg, runs, servers),
            ]
        else:
            print(f"bench.catchup --records {cfg.module_records}", flush=True)
            catchup = run_module("bench.catchup", cfg.module_records, db, logs)
            t = phase("bench.catchup", t)
            print(f"bench.backfill --records {cfg.module_records}", flush=True)
            backfill = run_module("bench.backfill", cfg.module_records, db, logs)
            t = phase("bench.backfill", t)
            print(f"bench.backup --events {cfg.module_records}", flush=True)
            backup = run_backup(cfg.module_records, db, logs)
            t = phase("bench.backup", t)
            drafting = run_drafts(logs)
            t = phase("bench.drafts", t)
            modules = {
                "bench.catchup": catchup,
                "bench.backfill": backfill,
                "bench.backup": backup,
                "bench.drafts": drafting,
            }
            scenarios = [
                scenario_appends(cfg, runs),
                scenario_pages(cfg, runs, workload),
                scenario_as_of(runs, workload),
                scenario_projections(built, catchup),
                scenario_read_your_writes(cfg, runs),
                scenario_backfill(loaded, backfill),
                scenario_memory(loaded, rss),
                scenario_starvation(runs),
                scenario_counts(cfg, runs, workload),
                scenario_changes(cfg, runs, workload),
                scenario_page(drawn, built["events"]),
                scenario_backup(backup),
                scenario_servers(cfg, runs, servers),
                scenario_drafts(drafting),
            ]
            print("many API processes and a replica", flush=True)
            scenarios += scaling.measure(cfg, runs, logs)
            t = phase("scaling: serve --workers 2 and a replica", t)
    results: dict[str, Any] = {
        "suite": {
            "command": cfg.command,
            "started_at": started.isoformat(),
            "events": cfg.events,
            "events_stored": built["events"],
            "smoke": cfg.smoke,
            "duration_s": cfg.duration,
            "repeats": cfg.repeats,
            "connections": cfg.connections,
            "module_records": cfg.module_records,
            "wall_s": time.perf_counter() - clock,
            "phases_s": phases,
        },
        "machine": machine,
        "scenarios": scenarios,
        "runs": runs.as_dict(),
        "profiles": {
            **runs.profiles,
            **({f"rebuild: {NAME}": built[NAME]["profile"]} if "profile" in built[NAME] else {}),
            **({"backfill": loaded["profile"]} if "profile" in loaded else {}),
        },
        "modules": modules,
    }
    report.write(results, cfg.json_path, cfg.markdown_path)
    report.print_table(results)
    minutes = results["suite"]["wall_s"] / 60
    print(f"\nwrote {cfg.json_path} and {cfg.markdown_path} in {minutes:.1f} min")
    return results


def scaling_only(
    cfg: Config, runs: Runs, machine: dict[str, Any], started: datetime
) -> dict[str, Any]:
    """Scenarios 15-17 alone, on a primary and a replica of their own."""
    clock = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="timeline-bench-") as tmp:
        scenarios = scaling.measure(cfg, runs, Path(tmp))
    results: dict[str, Any] = {
        "suite": {
            "command": cfg.command,
            "started_at": started.isoformat(),
            "events": cfg.events,
            "events_stored": min(cfg.events, scaling.MAX_EVENTS),
            "smoke": cfg.smoke,
            "duration_s": cfg.duration,
            "repeats": cfg.repeats,
            "connections": cfg.connections,
            "module_records": 0,
            "wall_s": time.perf_counter() - clock,
            "phases_s": {},
        },
        "machine": machine,
        "scenarios": scenarios,
        "runs": runs.as_dict(),
        "profiles": {},
        "modules": {},
    }
    report.write(results, cfg.json_path, cfg.markdown_path)
    report.print_table(results)
    print(f"\nwrote {cfg.json_path} and {cfg.markdown_path}")
    return results


if __name__ == "__main__":
    main()
