"""TIMELINE_POOL_SIZE is the most PostgreSQL connections one process holds, all of them
included; and a process says so when the server cannot give what it is configured to use.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from service.store.database import StoreError, capacity_warning, parse_url, share
from tests.conftest import POSTGRES_URL
from tests.reliability.serving import logged_service, timeline

pytestmark = pytest.mark.postgres


def test_the_pools_and_sessions_of_a_process_add_up_to_its_setting() -> None:
    for total in range(5, 40):
        events, views = share(total)
        assert events >= 1 and views >= max(2, events)
        assert events + views + 2 == total  # the listener and a lease besides
    with pytest.raises(StoreError, match="at least 5"):
        share(4)
    store = parse_url("postgresql://u@h/db", pool_size=10)
    assert (store.env["POSTGRES_POOL_SIZE"], store.env["POSTGRES_MAX_OVERFLOW"]) == ("4", "0")
    assert store.views == 4


def test_a_serving_process_under_64_clients_never_holds_more_than_its_setting(
    postgres_database: str, tmp_path: Path
) -> None:
    url = f"{postgres_database}?schema=conns_{uuid.uuid4().hex[:12]}"
    timeline(url, "seed")
    key = timeline(url, "keys", "create", "conns", "--scope", "write")
    name = f"conns-{uuid.uuid4().hex[:8]}"
    env = {"TIMELINE_POOL_SIZE": "6", "PGAPPNAME": name, "TIMELINE_RUN_PROJECTIONS": "true"}
    seen: list[int] = []
    stop = threading.Event()

    def count() -> None:
        with psycopg.connect(parse_url(POSTGRES_URL).conninfo(), autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
                ).fetchone()
                seen.append(int(row[0]) if row else 0)
                time.sleep(0.01)

    def client(n: int) -> set[int]:
        statuses = set()
        with httpx.Client(base_url=base, timeout=30) as http:
            for i in range(12):
                if i % 3 == 0:
                    answer = http.post(
                        "/statements",
                        headers={"Authorization": f"Bearer {key}"},
                        json={
                            "key": f"c{n}-{i}",
                            "speaker": "mark-rutte",
                            "quote": f"words {n} {i}",
                            "occurred_at": "2025-02-13",
                            "channel": "speech",
                            "topics": ["negotiations"],
                            "sources": [{"publisher": "BBC", "url": "https://www.bbc.com/x"}],
                        },
                    )
                    position = answer.json().get("position", 0) if answer.is_success else 0
                    read = http.get("/timeline", params={"min_position": position})
                else:
                    read = http.get(
                        ["/topics/negotiations/who-said-what", "/events", "/actors"][i % 3 - 1]
                    )
                statuses |= {answer.status_code if i % 3 == 0 else 200, read.status_code}
        return statuses

    with logged_service(url, tmp_path / "api.log", env) as base:
        counter = threading.Thread(target=count)
        counter.start()
        try:
            with ThreadPoolExecutor(64) as pool:
                statuses = set().union(*pool.map(client, range(64)))
        finally:
            stop.set()
            counter.join()
    # Every request was answered (a 503 when no connection was free in time, never a 500),
    # and the process never held more than its six connections.
    assert statuses <= {200, 201, 503}, statuses
    assert 200 in statuses
    assert max(seen) <= 6, max(seen)
    assert max(seen) >= 4  # the load did reach the pools


def test_the_service_warns_when_the_server_cannot_hold_what_it_may_use(
    postgres_database: str,
) -> None:
    store = parse_url(postgres_database)
    assert capacity_warning(store, 1) is None
    warning = capacity_warning(store, 100_000)
    assert warning is not None and "configured to use up to 100000" in warning
    # `timeline serve --workers 64` at 10 connections each: 640, more than the server has.
    # (On a host it cannot bind, so that it stops after the warning.)
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--workers", "64", "--host", "256.0.0.1"],
        env={**os.environ, "TIMELINE_DATABASE_URL": postgres_database},
        capture_output=True,
        text=True,
        timeout=60,
    )
    first = done.stderr.splitlines()[0]
    assert first.startswith("warning: PostgreSQL at"), done.stderr
    assert "configured to use up to 640" in first
