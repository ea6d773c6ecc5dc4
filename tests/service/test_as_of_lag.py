"""An answer `as_of` an instant does not move when the read models catch up.

A real API process and a real `timeline project` worker on one store. The worker is
paused (SIGSTOP) and a statement is written: a read as of an instant just after it was
recorded waits for the read models (holding no thread), and answers once the worker
resumes, with the statement, byte for byte as every later read does. A read as of an
instant before the write answers at once, without it, and never changes either.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from domain.ids import record_id
from tests.reliability.serving import Served, served_with_worker

STORES = ["sqlite", "postgres"]


@pytest.fixture(params=STORES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store"
    database: str = request.getfixturevalue("postgres_database")
    return f"{database}?schema=lag_{os.getpid()}_{time.monotonic_ns() % 10**9}"


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[Served]:
    with served_with_worker(database_url, tmp_path, {"TIMELINE_WAIT_TIMEOUT": "60"}) as made:
        yield made


def test_an_as_of_answer_is_the_same_before_and_after_the_read_models_catch_up(
    served: Served,
) -> None:
    base, key, worker = served.base, served.key, served.worker
    # The worker stops reading the log; a statement is written meanwhile.
    os.kill(worker.proc.pid, signal.SIGSTOP)
    try:
        body = {
            "key": "said while the worker slept",
            "speaker": "mark-rutte",
            "quote": "We will wait for the read models",
            "occurred_at": "2025-02-13",
            "channel": "press-conference",
            "topics": ["negotiations"],
            "sources": [{"publisher": "BBC News", "url": "https://www.bbc.com/news/x"}],
        }
        written = httpx.post(
            f"{base}/statements", json=body, headers={"Authorization": f"Bearer {key}"}
        )
        assert written.status_code == 201, written.text
        recorded = datetime.fromisoformat(written.json()["recorded_at"].replace("Z", "+00:00"))
        after = (recorded + timedelta(milliseconds=1)).isoformat().replace("+00:00", "Z")
        before = (recorded - timedelta(milliseconds=1)).isoformat().replace("+00:00", "Z")
        id = str(record_id("statement", str(body["key"])))
        paths = [
            "/timeline?topic=negotiations&limit=500",
            "/topics/negotiations/who-said-what",
            "/actors/mark-rutte",
            "/actors",
            "/topics",
            f"/statements/{id}",
        ]
        # As of just before the write: answered at once, although the worker sleeps.
        early = {p: httpx.get(f"{base}{p}", params={"as_of": before}, timeout=10) for p in paths}
        assert early[f"/statements/{id}"].status_code == 404
        assert all(
            r.status_code == 200 and id not in r.text for p, r in early.items() if id not in p
        )
        # As of just after it: every read waits for the read models.
        with ThreadPoolExecutor(len(paths)) as pool:
            waiting: dict[str, Future[httpx.Response]] = {
                p: pool.submit(httpx.get, f"{base}{p}", params={"as_of": after}, timeout=90)
                for p in paths
            }
            time.sleep(1.0)
            assert not any(f.done() for f in waiting.values()), {
                p: f.result().text[:200] for p, f in waiting.items() if f.done()
            }
            os.kill(worker.proc.pid, signal.SIGCONT)
            late = {p: f.result() for p, f in waiting.items()}
    finally:
        os.kill(worker.proc.pid, signal.SIGCONT)
    # The answers hold the statement, and are what every later read answers.
    assert all(r.status_code == 200 for r in late.values()), {p: r.text for p, r in late.items()}
    assert all(id in r.text for p, r in late.items() if p not in ("/actors", "/topics"))
    for params, answers in (({"as_of": after}, late), ({"as_of": before}, early)):
        again = {p: httpx.get(f"{base}{p}", params=params, timeout=10) for p in paths}
        assert {p: r.content for p, r in again.items()} == {
            p: r.content for p, r in answers.items()
        }
