"""Backfill rate on PostgreSQL and SQLite next to eventsourcing's batched save and a raw
psycopg COPY of equivalent rows, measured in the same run.

    python -m bench.backfill --records 20000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from bench.history import record_body, vocabulary, write
from domain.application import Author
from service.loader import load, open_lines
from service.readmodels import open_read_models
from service.store import Store, open_timeline, parse_url


def make_file(path: Path, records: int, seed: int = 7) -> int:
    """A realistic NDJSON history: actors, a topic tree, records out of order, corrections."""
    rng = random.Random(seed)
    actors, topics = vocabulary(rng, 1000, 100)
    lines: list[dict[str, Any]] = []
    for n in range(records):
        kind, body = record_body(rng, n, actors, topics)
        lines.append({"type": kind, "key": f"r{n}", **body})
        if n % 5 == 0:
            lines.append(
                {
                    "type": "correction",
                    "target": {"kind": kind, "key": f"r{n}"},
                    "changes": {"location": f"City {n % 97}"},
                    "reason": "placed",
                }
            )
    lines += [{"type": "actor", "id": a, "name": a.title(), "kind": "person"} for a in actors]
    lines += [
        {
            "type": "topic",
            "id": t,
            "label": t.title(),
            **({"parent": topics[(i - 1) // 4]} if i else {}),
        }
        for i, t in enumerate(topics)
    ]
    rng.shuffle(lines)
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return len(lines)


def backfill(store: Store, path: Path, batch_size: int) -> dict[str, float]:
    """Load, then bring the four read models up to date in this process."""
    timeline = open_timeline(store)
    models = open_read_models(store, timeline)
    started = time.perf_counter()
    report = load(
        timeline, open_lines(path), Author("bench", batch_id="bench"), batch_size=batch_size
    )
    loaded = time.perf_counter() - started
    assert not report.rejected, report.rejected[:3]
    models.batch_size = 1000
    models.catch_up()
    total = time.perf_counter() - started
    models.close()
    timeline.close()
    return {"lines": report.lines, "load_s": loaded, "with_projections_s": total}


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """CPU time used so far by the PostgreSQL server processes on this machine (those
    alive when asked: a backend that exits between two readings is not counted)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().startswith("postgres"):
                total += cpu_seconds(int(proc.name))
        except OSError:  # gone meanwhile
            continue
    return total


def backfill_live(url: str, path: Path, batch_size: int) -> dict[str, float]:
    """Load while `timeline project` runs in its own process, as deployed; the time until
    all four read models have reached the last event, and the CPU time the loader, the
    worker and PostgreSQL each used meanwhile."""
    store = parse_url(url)
    timeline = open_timeline(store)
    models = open_read_models(store, timeline)  # creates the views; the worker fills them
    env = {**os.environ, "TIMELINE_DATABASE_URL": url}
    worker = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "project", "--batch-size", "1000"],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        while any(s.state != "running" for s in models.status()):
            time.sleep(0.05)
        cpu = (cpu_seconds(os.getpid()), cpu_seconds(worker.pid), postgres_cpu())
        started = time.perf_counter()
        report = load(
            timeline, open_lines(path), Author("bench", batch_id="live"), batch_size=batch_size
        )
        loaded = time.perf_counter() - started
        assert not report.rejected, report.rejected[:3]
        head = timeline.head_position()
        while min(s.position for s in models.status()) < head:
            time.sleep(0.01)
        total = time.perf_counter() - started
        used = (cpu_seconds(os.getpid()), cpu_seconds(worker.pid), postgres_cpu())
        loader_cpu, worker_cpu, postgres_cpu_s = (b - a for a, b in zip(cpu, used, strict=True))
    finally:
        worker.terminate()
        worker.wait(30)
        models.close()
        timeline.close()
    return {
        "lines": report.lines,
        "load_s": loaded,
        "with_projections_s": total,
        "loader_cpu_s": loader_cpu,
        "worker_cpu_s": worker_cpu,
        "postgres_cpu_s": postgres_cpu_s,
    }


@contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """A database of its own for one run, dropped after."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def batched_save(store: Store, records: int) -> tuple[int, float]:
    timeline = open_timeline(store)
    started = time.perf_counter()
    events = write(timeline, records, chunk=100)
    elapsed = time.perf_counter() - started
    timeline.close()
    return events, elapsed


def raw_copy(store: Store, rows: int) -> float:
    payload = b'{"content":' + b"x" * 400 + b"}"
    with psycopg.connect(store.conninfo(), autocommit=True) as conn:
        conn.execute(
            "CREATE TEMP TABLE copy_bench (originator_id uuid, originator_version "
            "bigint, topic text, state bytea, notification_id bigserial)"
        )
        started = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor().copy(
                "COPY copy_bench (originator_id, originator_version, topic, state) FROM STDIN"
            ) as copy,
        ):
            for _ in range(rows):
                copy.write_row((uuid.uuid4(), 1, "domain.records:Statement.Recorded", payload))
        return time.perf_counter() - started


def drop(store: Store) -> None:
    with psycopg.connect(store.conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(store.env["POSTGRES_SCHEMA"])
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "TIMELINE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    results: dict[str, Any] = {"records": args.records}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.ndjson"
        lines = make_file(path, args.records)
        results["lines"] = lines
        pg = parse_url(args.url, schema=f"bench_{uuid.uuid4().hex[:8]}")
        pg_save = parse_url(args.url, schema=f"bench_{uuid.uuid4().hex[:8]}")
        try:
            with scratch_database(args.url) as live:
                results["postgres_backfill_live"] = backfill_live(live, path, args.batch_size)
            results["postgres_backfill"] = backfill(pg, path, args.batch_size)
            events, seconds = batched_save(pg_save, args.records)
            results["postgres_batched_save"] = {"events": events, "s": seconds}
            results["postgres_copy_s"] = raw_copy(pg, lines)
        finally:
            drop(pg)
            drop(pg_save)
        results["sqlite_backfill"] = backfill(
            parse_url(f"sqlite:///{tmp}/store"), path, args.batch_size
        )
    pgb, sqb = results["postgres_backfill"], results["sqlite_backfill"]
    live = results["postgres_backfill_live"]
    save = results["postgres_batched_save"]
    rows = [
        ("PostgreSQL backfill (lines/s)", lines / pgb["load_s"]),
        (
            "  PostgreSQL, then the read models caught up in-process",
            lines / pgb["with_projections_s"],
        ),
        (
            "  PostgreSQL, worker process running: read models caught up",
            lines / live["with_projections_s"],
        ),
        ("SQLite backfill (lines/s)", lines / sqb["load_s"]),
        ("  SQLite, then the read models caught up in-process", lines / sqb["with_projections_s"]),
        ("eventsourcing save(), 100 aggregates a call (events/s)", save["events"] / save["s"]),
        ("raw COPY of event rows (rows/s)", lines / results["postgres_copy_s"]),
    ]
    baseline = rows[5][1]
    print(f"{lines} lines ({args.records} records), batch {args.batch_size}")
    for label, rate in rows:
        print(f"{label:<60}{rate:>10,.0f}{rate / baseline:>8.2f}x save()")
    print(
        f"worker running, caught up: {args.records / live['with_projections_s']:,.0f} records/s;"
        f" {live['with_projections_s']:.2f} s, CPU: loader {live['loader_cpu_s']:.2f} s,"
        f" worker {live['worker_cpu_s']:.2f} s, PostgreSQL {live['postgres_cpu_s']:.2f} s"
        f" ({os.cpu_count()} cores)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({**results, "rates": dict(rows)}, indent=2))


if __name__ == "__main__":
    main()
