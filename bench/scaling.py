"""The scaling scenarios of the suite (docs/scaling.md), on a PostgreSQL primary and a
streaming replica of it made for them (`tests/clusters.py`: `initdb`, `pg_basebackup -R -X
stream`, free ports), so that the shared server is not the one loaded:

14. Appends at the suite's connections, `timeline serve --workers 2` beside the bare
    handler that makes one eventsourcing `save()` per request, on the same primary.
15. Replica lag under that load: while wrk appends, a prober POSTs one statement at a
    time and times, from its answer (the commit is before it), until the replica's
    read models hold its position (their tracking row, read on the replica).
16. The same pages from one API process reading the replica, and from one reading the
    primary.

The history is the suite's, at most `MAX_EVENTS` events: a replica's page reads are
compared with the primary's on the same rows, not with the big run's.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql

from bench import load, report, suite
from tests.clusters import primary_and_replica

MAX_EVENTS = 100_000
# Both servers as the shared one would run for a benchmark (durable; caches of a size).
SERVER = {"shared_buffers": "256MB", "max_connections": "200"}
PROBE_EVERY = 0.05  # seconds between the prober's statements


def measure(cfg: suite.Config, runs: suite.Runs, logs: Path) -> list[dict[str, Any]]:
    """Scenarios 15-17, each as the suite's report takes a scenario."""
    events = min(cfg.events, MAX_EVENTS)
    with primary_and_replica(settings=SERVER) as (primary, replica):
        env = suite.environment(primary.url)
        print(f"scaling: a primary and a replica, {events:,} events", flush=True)
        suite.write_history(logs / "scaling.ndjson", events)
        suite.backfill_file(env, logs / "scaling.ndjson", logs)
        (logs / "scaling.ndjson").unlink()
        suite.build_read_models(primary.url)
        key = suite.cli(["keys", "create", "scaling-writer", "--scope", "write"], env).split()[-1]
        reading = {**env, "TIMELINE_READ_DATABASE_URL": replica.url}
        lags: list[list[float]] = []
        with ExitStack() as stack:

            def serve(name: str, environ: dict[str, str], *more: str) -> suite.Proc:
                port = suite.free_port()
                args = ["-m", "service.cli", "serve", "--port", str(port), *more]
                return stack.enter_context(suite.running(name, args, environ, logs, port))

            stack.enter_context(
                suite.running("scaling-projector", ["-m", "service.cli", "project"], env, logs)
            )
            two = serve("serve --workers 2", reading, "--workers", "2")
            from_primary = serve("pages from the primary", env)
            from_replica = serve("pages from the replica", reading)
            port = suite.free_port()
            baseline = stack.enter_context(
                suite.running(
                    "scaling baseline",
                    [
                        "-m",
                        "bench.baseline_app",
                        "--database-url",
                        primary.url,
                        "--port",
                        str(port),
                    ],
                    env,
                    logs,
                    port,
                )
            )
            w = suite.calibrate(from_primary.url)
            pages = [
                ("timeline", w.timeline),
                ("who-said-what", w.who_said_what),
            ]
            actors = [f"actor-{i}" for i in range(0, suite.ACTORS, 20)]
            topics = [f"topic-{i}" for i in range(0, suite.TOPICS, 5)]

            def spec(proc: suite.Proc, script: str) -> load.Load:
                return load.Load(proc.url, script, cfg.connections, 2, cfg.duration)

            for rep in range(cfg.repeats):
                print(f"scaling, repeat {rep + 1} of {cfg.repeats}", flush=True)
                for name, paths in pages:
                    for proc in (from_primary, from_replica):
                        suite.settle(from_primary.url, 300)
                        script = load.get_paths(paths)
                        runs.run(f"{name}: {proc.name}", proc, spec(proc, script))
                tag = f"s{rep}-{uuid.uuid4().hex[:6]}"
                suite.settle(from_primary.url, 300)
                script = load.post_statements("/statements", key, tag, actors, topics)
                with probing(two.url, key, replica.url, tag) as lag:
                    runs.run("appends: serve --workers 2", two, spec(two, script))
                lags.append(lag)
                suite.settle(from_primary.url, 300)
                script = load.post_statements("/append-save", key, f"{tag}-b", actors, topics)
                runs.run("appends: save() per request (scaling)", baseline, spec(baseline, script))
    return [scenario_appends(cfg, runs), scenario_lag(lags), scenario_pages(runs)]


@contextmanager
def probing(base: str, key: str, replica_url: str, tag: str) -> Iterator[list[float]]:
    """While the block runs, POST a statement every `PROBE_EVERY` s and time each, in
    seconds, from the POST's answer until the replica's read models have its position."""
    lags: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        with psycopg.connect(replica_url, autocommit=True) as conn:
            (generation,) = conn.execute(
                "SELECT generation FROM rm_registry WHERE name = 'timeline'"
            ).fetchone() or (1,)
            table = psycopg.sql.Identifier(f"rm_timeline_g{generation}_tracking")
            tracking = psycopg.sql.SQL("SELECT notification_id FROM {}").format(table)
            n = 0
            while not stop.wait(PROBE_EVERY):
                n += 1
                position = post(base, key, f"{tag}-probe-{n}")
                answered = time.perf_counter()
                while (conn.execute(tracking).fetchone() or (0,))[0] < position:
                    time.sleep(0.001)
                lags.append(time.perf_counter() - answered)

    thread = threading.Thread(target=probe, name="lag-probe")
    thread.start()
    try:
        yield lags
    finally:
        stop.set()
        thread.join(60)


def post(base: str, key: str, name: str) -> int:
    body = {
        "key": name,
        "speaker": "actor-0",
        "quote": f"Probe {name}",
        "occurred_at": "2013-01-01",
        "channel": "interview",
        "topics": ["topic-0"],
        "sources": [{"publisher": "Bench Wire", "url": f"https://example.org/{name}"}],
    }
    request = urllib.request.Request(  # noqa: S310 (our own URL)
        f"{base}/statements",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 (our own URL)
        return int(json.loads(answer.read())["position"])


def scenario_appends(cfg: suite.Config, runs: suite.Runs) -> dict[str, Any]:
    save = suite.http_row(
        runs,
        "appends: save() per request (scaling)",
        "bare handler: eventsourcing save() of one aggregate per request",
        short="save() per request",
    )
    two = suite.http_row(
        runs, "appends: serve --workers 2", "service: POST /statements, serve --workers 2", save
    )
    two["unit"] = "statements/s"
    ratio, p99 = two.get("ratio", 0.0), two["p99_ms"]["median"]
    return {
        "id": 15,
        "title": f"API appends with serve --workers 2, {cfg.connections} concurrent clients",
        "rows": [two, save],
        "targets": [
            report.target(
                "serve --workers 2: ≥ 4x one commit per request (same run)",
                ratio,
                ratio >= 4,
                f"{ratio:.2f}x",
            ),
            report.target("serve --workers 2: p99 < 100 ms", p99, p99 < 100, f"{p99:.1f} ms"),
        ],
        "notes": [
            "On a primary of its own (a replica beside it, which the API processes read "
            "from): `timeline serve --workers 2` takes new statements, `timeline project` "
            "follows; the baseline saves one eventsourcing aggregate per request on the "
            "same primary. Server cores are the whole process group's (both workers)."
        ],
    }


def scenario_lag(lags: list[list[float]], bound: float = 2.0) -> dict[str, Any]:
    ms = [[x * 1000 for x in run] or [0.0] for run in lags]
    row = report.row(
        "replica lag under the appends: a POST's answer to the replica's read models",
        "ms",
        [statistics.median(run) for run in ms],
        p50_ms=[statistics.median(run) for run in ms],
        p99_ms=[_p99(run) for run in ms],
    )
    samples = sum(len(run) for run in lags)
    p99 = row["p99_ms"]["median"]
    return {
        "id": 16,
        "title": "Replica lag under the appends load",
        "rows": [row],
        "targets": [
            report.target(
                f"lag p99 < TIMELINE_REPLICA_MAX_LAG ({bound:g} s): the replica keeps serving",
                p99,
                p99 < bound * 1000,
                f"{p99:.0f} ms",
            )
        ],
        "notes": [
            f"{samples} probes: one statement every {PROBE_EVERY * 1000:.0f} ms beside the "
            "appends of scenario 15, each timed from its POST's answer until the replica's "
            "tracking row (read on the replica) has its position: the projection's batch on "
            "the primary, its commit, and the replica's replay of it."
        ],
    }


def scenario_pages(runs: suite.Runs) -> dict[str, Any]:
    rows, targets = [], []
    for name in ("timeline", "who-said-what"):
        primary = suite.http_row(
            runs,
            f"{name}: pages from the primary",
            f"{name}, one API process reading the primary",
            short="the primary",
        )
        rows += [
            suite.http_row(
                runs,
                f"{name}: pages from the replica",
                f"{name}, one API process reading the replica",
                primary,
            ),
            primary,
        ]
        ratio = rows[-2].get("ratio", 0.0)
        targets.append(
            report.target(
                f"{name}: from the replica ≥ 0.8x from the primary (on one machine)",
                ratio,
                ratio >= 0.8,
                f"{ratio:.2f}x",
            )
        )
    return {
        "id": 17,
        "title": "Pages from the replica beside the same pages from the primary",
        "rows": rows,
        "targets": targets,
        "notes": [
            "The same paths from two API processes, one with TIMELINE_READ_DATABASE_URL "
            "naming the replica. Both servers share the machine's two cores with the API "
            "and the load generator, so this shows what reading a replica costs, not what "
            "it gains: docs/scaling.md gives the scaling on paper."
        ],
    }


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
