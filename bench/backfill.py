"""Backfill rate on PostgreSQL and SQLite next to eventsourcing's batched save and a raw
psycopg COPY of equivalent rows, measured in the same run.

    python -m bench.backfill --records 20000

The first row is the figure the backfill's target is judged by: `timeline backfill` and
`timeline project` run as deployed, each in its own process, timed until the read models
have reached the last event. The others load in this process, as the commands would.
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
from domain.writers import Author
from service.files.backfill import load, open_lines
from service.process import tune_gc
from service.store.database import Store, open_timeline, parse_url
from service.store.readmodels import open_read_models


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
    """`timeline backfill` while `timeline project` runs, each in its own process, as
    deployed; the time until all four read models have reached the last event, and the
    CPU time the loader, the worker and PostgreSQL each used meanwhile."""
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
        while models.status().state != "running":
            time.sleep(0.05)
        cpu = (cpu_seconds(worker.pid), postgres_cpu())
        report_path = path.with_suffix(".report.json")
        started = time.perf_counter()
        command = [sys.executable, "-m", "service.cli", "backfill", str(path)]
        command += ["--batch-size", str(batch_size), "--report", str(report_path)]
        loader = subprocess.Popen(  # noqa: S603 (our own command line)
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(loader.pid, 0)  # its CPU time, as it ends
        loader.returncode = os.waitstatus_to_exitcode(status)
        loaded = time.perf_counter() - started
        report = json.loads(report_path.read_text())
        assert loader.returncode == 0 and not report["rejected"], report["rejected"][:3]
        head = timeline.head_position()
        while models.status().position < head:
            time.sleep(0.01)
        total = time.perf_counter() - started
        used = (cpu_seconds(worker.pid), postgres_cpu())
        worker_cpu, postgres_cpu_s = (b - a for a, b in zip(cpu, used, strict=True))
    finally:
        worker.terminate()
        worker.wait(30)
        models.close()
        timeline.close()
    return {
        "lines": report["accepted"] + report["duplicates"],
        "load_s": loaded,
        "with_projections_s": total,
        "loader_cpu_s": usage.ru_utime + usage.ru_stime,
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
    tune_gc()  # the in-process imports run as `timeline backfill` would
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
    baseline = save["events"] / save["s"]
    # (scenario, seconds for the whole history or None, the rate of a baseline)
    rows: list[tuple[str, float | None, float]] = [
        ("timeline backfill, timeline project running: caught up", live["with_projections_s"], 0),
        ("PostgreSQL: backfill alone, in-process", pgb["load_s"], 0),
        ("PostgreSQL: then the read models caught up, in-process", pgb["with_projections_s"], 0),
        ("SQLite: backfill alone, in-process", sqb["load_s"], 0),
        ("SQLite: then the read models caught up, in-process", sqb["with_projections_s"], 0),
        ("eventsourcing save(), 100 aggregates a call (events/s)", None, baseline),
        ("raw psycopg COPY of the event rows (rows/s)", None, lines / results["postgres_copy_s"]),
    ]
    print(
        f"{lines:,} lines ({args.records:,} records), batch {args.batch_size}, "
        f"{os.cpu_count()} cores\n{'':<58}{'lines/s':>10}{'records/s':>11}{'x save()':>10}"
    )
    rates: dict[str, float] = {}
    for label, took, rate in rows:
        per_line = lines / took if took else rate
        records = f"{args.records / took:>11,.0f}" if took else " " * 11
        print(f"{label:<58}{per_line:>10,.0f}{records}{per_line / baseline:>9.2f}x")
        rates[label] = per_line
    print(
        f"CPU while timeline backfill ran with timeline project: loader"
        f" {live['loader_cpu_s']:.2f} s, worker {live['worker_cpu_s']:.2f} s, PostgreSQL"
        f" {live['postgres_cpu_s']:.2f} s, in {live['with_projections_s']:.2f} s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({**results, "rates": rates}, indent=2))


if __name__ == "__main__":
    main()
