"""How long a search of the timeline takes, on PostgreSQL and SQLite, over a generated
history, and what its index holds.

    python -m bench.search --records 100000

Each store gets the history (`bench/history.py`: "Statement number 1234 on topic-5",
"Announcement number 1238", "Occurrence 1239"), its read models caught up, and then
each query below is run `--runs` times through the read models' own functions (no HTTP):
the median and the slowest are printed, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from bench.history import write
from projections.postgres import PostgresView
from projections.sqlview import SqlView
from projections.view import TimelineQuery, TimelineView
from service.store.database import Store, open_timeline, parse_url
from service.store.readmodels import open_read_models

SINCE, UNTIL = datetime(2019, 1, 1, tzinfo=UTC), datetime(2019, 3, 1, tzinfo=UTC)
QUERIES: dict[str, TimelineQuery] = {
    "a rare word (one record)": TimelineQuery(q="12345"),
    "a common word and a rare one": TimelineQuery(q="number 12345"),
    "a word 8 in 10 records hold": TimelineQuery(q="statement"),
    "a word 1 in 10 hold": TimelineQuery(q="occurrence"),
    "a common word, one actor": TimelineQuery(q="statement", actor="actor-7"),
    "a common word, a topic and two months": TimelineQuery(
        q="number", topic="topic-1", since=SINCE, until=UNTIL
    ),
    "no search (the timeline's first page)": TimelineQuery(),
}


def timed(runs: int, call: Any) -> tuple[float, float]:
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        took.append((time.perf_counter() - started) * 1000)
    return statistics.median(took), max(took)


def measure(label: str, store: Store, records: int, runs: int) -> None:
    app = open_timeline(store)
    try:
        started = time.perf_counter()
        events = write(app, records)
        print(f"\n{label}: {events:,} events written in {time.perf_counter() - started:.1f} s")
        models = open_read_models(store, app)
        started = time.perf_counter()
        models.catch_up()
        print(f"  the view caught up in {time.perf_counter() - started:.1f} s")
        view = models.view()
        if isinstance(view, SqlView):
            view.analyze()
        print(f"  {'query':<42}{'median ms':>10}{'max ms':>10}{'found':>8}")
        for name, query in QUERIES.items():
            found = len(view.page(query).items)
            median, most = timed(runs, lambda q=query: view.page(q))
            print(f"  {name:<42}{median:>10.1f}{most:>10.1f}{found:>8}")
        at = TimelineQuery(q="12345", at=app.head_position() * 9 // 10)
        median, most = timed(runs, lambda: view.page(at))
        print(f"  {'a rare word, as_of_position':<42}{median:>10.1f}{most:>10.1f}")
        for q in ("12345", "announcement"):
            query = TimelineQuery(q=q)
            median, most = timed(runs, lambda query=query: view.counts("year", query))
            print(f"  {f'counts by year of {q!r}':<42}{median:>10.1f}{most:>10.1f}")
        sizes(view)
        models.close()
    finally:
        app.close()


def sizes(view: TimelineView) -> None:
    if not isinstance(view, PostgresView):
        return  # an FTS5 table's pages are not counted apart from the file's
    p = view.prefix
    ((rows, search, words),) = view.query(
        f"SELECT pg_total_relation_size('{p}_rows'), pg_table_size('{p}_search'), "
        f"pg_indexes_size('{p}_search')"
    )
    print(
        f"  rows {rows / 2**20:.0f} MB; search table {search / 2**20:.0f} MB, its indexes "
        f"{words / 2**20:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--store", choices=["postgres", "sqlite", "both"], default="both")
    args = parser.parse_args()
    if args.store != "sqlite":
        schema = f"bench_search_{uuid.uuid4().hex[:8]}"
        store = parse_url(args.url, schema=schema)
        try:
            measure("PostgreSQL", store, args.records, args.runs)
        finally:
            with psycopg.connect(store.conninfo(), autocommit=True) as conn:
                drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                conn.execute(drop.format(sql.Identifier(schema)))
    if args.store != "postgres":
        with tempfile.TemporaryDirectory() as home:
            measure("SQLite", parse_url(f"sqlite:///{home}/store"), args.records, args.runs)


if __name__ == "__main__":
    main()
