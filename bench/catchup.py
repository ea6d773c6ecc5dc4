"""Projection catch-up rate on PostgreSQL next to the rate of reading the same events
from the notification log, measured in the same run.

    python -m bench.catchup --records 20000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import uuid
from typing import Any

import psycopg
from psycopg import sql

from bench.history import write
from projections.timeline import TimelineProjection
from service.store.database import open_timeline, parse_url
from service.store.readmodels import open_read_models


def read_log(timeline: Any, batch: int = 500) -> int:
    count, after = 0, 0
    while notes := timeline.recorder.select_notifications(
        start=after, limit=batch, inclusive_of_start=False
    ):
        for note in notes:
            timeline.mapper.to_domain_event(note)
        count += len(notes)
        after = notes[-1].id
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "TIMELINE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    store = parse_url(args.url, schema=schema)
    timeline = open_timeline(store)
    try:
        started = time.perf_counter()
        events = write(timeline, args.records)
        written = time.perf_counter() - started
        started = time.perf_counter()
        read = read_log(timeline)
        log_rate = read / (time.perf_counter() - started)
        models = open_read_models(store, timeline)
        models.batch_size = args.batch_size
        started = time.perf_counter()
        applied = models.catch_up()
        rate = applied / (time.perf_counter() - started)
        rows: list[dict[str, Any]] = [
            {
                "projection": TimelineProjection.name,
                "events": applied,
                "events_per_s": round(rate),
                "ratio_to_log_read": round(rate / log_rate, 3),
            }
        ]
        models.close()
        result = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}",
            "events": events,
            "write_s": round(written, 2),
            "log_read_events_per_s": round(log_rate),
            "projections": rows,
            "batch_size": args.batch_size,
        }
        print(f"events stored: {events} ({events / written:,.0f}/s through batched save)")
        print(f"notification log read + decode: {log_rate:,.0f} events/s")
        print(f"{'projection':<16}{'events/s':>12}{'x log read':>12}")
        for r in rows:
            print(f"{r['projection']:<16}{r['events_per_s']:>12,}{r['ratio_to_log_read']:>12}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
    finally:
        timeline.close()
        with psycopg.connect(store.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    main()
