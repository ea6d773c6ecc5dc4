"""Backup and restore rates on SQLite and PostgreSQL: a synthetic history of about
`--events` events is exported (`timeline export --format events`, plain and gzip) and
restored into an empty store (events only: the read models' build is the rebuild
benchmark's figure), one run each, beside the same run's rate of reading the log.

    python -m bench.backup --events 100000
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from bench.catchup import read_log
from bench.history import write
from service.files.backup import export_events, open_backup, read_backup, restore_events
from service.process import tune_gc
from service.store.database import Store, open_timeline, parse_url

ACTORS, TOPICS = 1000, 100


def records_for(events: int) -> int:
    """Records whose history (each with a fifth corrected, a seventh re-sourced) makes
    about `events` events beside the actors and topics."""
    return max(1, round((events - ACTORS - TOPICS) / (1 + 1 / 5 + 1 / 7)))


def run(source: Store, target: Store, events: int, directory: Path) -> dict[str, float]:
    timeline = open_timeline(source)
    written = write(timeline, records_for(events), actors=ACTORS, topics=TOPICS)
    figures: dict[str, float] = {"events": written}
    # The same run's baseline: reading and decoding the log, as a projection does.
    started = time.perf_counter()
    figures["log read events/s"] = read_log(timeline) / (time.perf_counter() - started)
    for name in ("log.ndjson", "log.ndjson.gz"):
        path = directory / name
        started = time.perf_counter()
        with (
            gzip.open(path, "wb", compresslevel=6)
            if name.endswith(".gz")
            else open(path, "wb") as out
        ):
            count = export_events(timeline, out).count
        figures[f"export {name} events/s"] = count / (time.perf_counter() - started)
        figures[f"{name} MB"] = path.stat().st_size / 1e6
    timeline.close()
    restored = open_timeline(target)
    started = time.perf_counter()
    with open_backup(str(directory / "log.ndjson.gz")) as lines:
        count = restore_events(restored, read_backup(lines)).count
    figures["restore (gzip) events/s"] = count / (time.perf_counter() - started)
    restored.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--stores", default="sqlite,postgres", help="which stores to measure, comma-separated"
    )
    parser.add_argument("--json", type=Path, help="write the figures here too, as JSON")
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "TIMELINE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    tune_gc()  # as every `timeline` command does
    stores = set(args.stores.split(","))
    found: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as directory:
        where = Path(directory)
        if "sqlite" in stores:
            found["sqlite"] = run(
                parse_url(f"sqlite:///{where}/a"),
                parse_url(f"sqlite:///{where}/b"),
                args.events,
                where,
            )
            _show("SQLite", found["sqlite"])
        schemas = [f"bench_backup_{uuid.uuid4().hex[:8]}" for _ in range(2)]
        try:
            if "postgres" in stores:
                source, target = (parse_url(args.url, schema=s) for s in schemas)
                found["postgres"] = run(source, target, args.events, where)
                _show("PostgreSQL", found["postgres"])
        finally:
            with psycopg.connect(parse_url(args.url).conninfo(), autocommit=True) as conn:
                for schema in schemas:
                    conn.execute(
                        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                    )

    if args.json is not None:
        args.json.write_text(json.dumps(found, indent=2) + "\n")


def _show(store: str, figures: dict[str, float]) -> None:
    print(f"{store}: " + ", ".join(f"{name} {value:,.1f}" for name, value in figures.items()))


if __name__ == "__main__":
    main()
