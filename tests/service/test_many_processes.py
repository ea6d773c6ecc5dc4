"""Many API processes on one PostgreSQL database: `timeline serve --workers 2` and a second
`timeline serve` beside it take writes at once. Every write is stored once, at a position
of its own; each process commits concurrent writes in groups; and each `serve`'s
`/metrics` counts the writes of all its workers."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from service.store.database import parse_url
from tests.projections.workers_support import wait_until
from tests.reliability.serving import TIMELINE, environment, free_port, healthy, timeline
from tests.service.conftest import statement, unique

pytestmark = pytest.mark.postgres
WRITES = 240  # half to each serve
CLIENTS = 24


@contextmanager
def serving(url: str, log: Path, workers: int) -> Iterator[str]:
    """`timeline serve --workers N`, once every worker has started; its URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [TIMELINE, "serve", "--port", str(port), "--workers", str(workers)]
    # Three processes' group commits queue on the events table's lock: on a busy machine one
    # may hold it past the serving default (0.5 s), which answers 503 by design. Here the
    # writes are what is counted, so the wait is made long enough never to be cut off.
    env = environment(TIMELINE_DATABASE_URL=url, TIMELINE_POOL_SIZE="6", TIMELINE_LOCK_TIMEOUT="30")
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(
            f"{workers} worker(s) serve",
            lambda: healthy(base) and log.read_text().count("startup complete") == workers,
            seen=lambda: log.read_text(errors="replace")[-3000:],
            processes=[proc],
        )
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


def posted_201s(scrape: str) -> float:
    pattern = r'^timeline_http_requests_total\{(?=[^}]*method="POST")(?=[^}]*status="201")'
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in scrape.splitlines() if re.match(pattern, line)
    )


def test_two_serve_processes_share_the_writes_each_commits_in_groups_and_counts_its_workers(
    postgres_database: str, tmp_path: Path
) -> None:
    schema = f"many_{uuid.uuid4().hex[:10]}"
    url = f"{postgres_database}?schema={schema}"
    timeline(url, "seed")
    key = timeline(url, "keys", "create", "many-writer", "--scope", "write")
    with ExitStack() as stack:
        bases = [
            stack.enter_context(serving(url, tmp_path / "two.log", workers=2)),
            stack.enter_context(serving(url, tmp_path / "one.log", workers=1)),
        ]

        def write(n: int) -> tuple[int, int]:
            # Each client its own connection, so that both workers of the first take some.
            body = statement(quote=unique(f"many {n}"))
            answer = httpx.post(
                f"{bases[n % 2]}/statements",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            assert answer.status_code == 201, answer.text
            return n % 2, int(answer.json()["position"])

        with ThreadPoolExecutor(CLIENTS) as pool:
            written = list(pool.map(write, range(WRITES)))
        # Each write stored once, at a position of its own.
        positions = [p for _, p in written]
        assert len(set(positions)) == WRITES
        # Each serve's scrape counts the writes of all its workers.
        for i, base in enumerate(bases):
            sent = sum(1 for server, _ in written if server == i)
            assert posted_201s(httpx.get(f"{base}/metrics", timeout=10).text) == sent
    # Concurrent writes shared transactions: fewer commits than writes.
    conninfo = parse_url(url).conninfo()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        table = sql.Identifier(schema, "timeline_events")
        row = conn.execute(
            sql.SQL(
                "SELECT count(*), count(DISTINCT xmin::text) FROM {} "
                "WHERE notification_id = ANY(%s)"
            ).format(table),
            (positions,),
        ).fetchone()
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    assert row is not None
    events, commits = row
    assert events == WRITES
    assert commits < WRITES
