"""Helpers of the fault tests: the service as a real process, a steady HTTP load that
records every answer, and checks of those answers.

Every process here is started by the tests, listens on 127.0.0.1, and is stopped (then
killed if need be) by its own pid when the test ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from domain.application import Timeline
from domain.writers import Author
from service.store.database import open_timeline, parse_url
from service.store.keys import open_keys
from tests.clusters import free_port
from tests.projections.workers_support import percentile

PROBLEM_JSON = "application/problem+json"


# The service as a process -------------------------------------------------------------


@dataclass
class ApiServer:
    """A `service.http.asgi:app` served by uvicorn; its PostgreSQL sessions carry `name`."""

    name: str
    base: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None


@contextmanager
def api_server(
    database_url: str,
    log_dir: Path,
    name: str,
    *,
    run_projections: bool = False,
    env: Mapping[str, str] | None = None,
) -> Iterator[ApiServer]:
    """Serve the API (one uvicorn worker) on a free port until the block ends."""
    port = free_port()
    log = log_dir / f"{name}.log"
    out: IO[bytes] = log.open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "service.http.asgi:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--timeout-graceful-shutdown",
            "5",
        ],
        env={
            **os.environ,
            "TIMELINE_DATABASE_URL": database_url,
            "TIMELINE_RUN_PROJECTIONS": "true" if run_projections else "false",
            "PGAPPNAME": name,  # libpq names every session of the process after it
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        },
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = ApiServer(name, f"http://127.0.0.1:{port}", proc, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"the service exited:\n{server.log_text()[-3000:]}"
            with suppress(httpx.HTTPError):
                if httpx.get(f"{server.base}/health", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"no service:\n{server.log_text()[-3000:]}"
            time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
        out.close()


def make_key(database_url: str, name: str, scope: str = "write") -> str:
    """A key made straight in the store (as `timeline keys create` does)."""
    store = parse_url(database_url)
    timeline = open_timeline(store)
    try:
        return open_keys(store, timeline).create(name, scope)
    finally:
        timeline.close()


@contextmanager
def write_model(database_url: str) -> Iterator[Timeline]:
    timeline = open_timeline(parse_url(database_url, pool_size=6))
    try:
        yield timeline
    finally:
        timeline.close()


AUTHOR = Author("chaos")


# A steady load ------------------------------------------------------------------------

_PROBE = """
import json, sys, time, httpx
base, seconds, every = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
out, end = [], time.monotonic() + seconds
with httpx.Client(base_url=base, timeout=5) as client:
    while time.monotonic() < end:
        started = time.monotonic()
        try:
            status = client.get("/health").status_code
        except httpx.HTTPError:
            status = None
        out.append([status, time.monotonic() - started])
        time.sleep(every)
print(json.dumps(out))
"""


@contextmanager
def health_probe(base: str, seconds: float, every: float = 0.05) -> Iterator[list[Answer]]:
    """`GET /health` every `every` seconds for `seconds`, from a process of its own (so
    that the test's own load threads do not slow the measurement); the answers are in
    the yielded list once the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _PROBE, base, str(seconds), str(every)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    answers: list[Answer] = []
    try:
        yield answers
        out, _ = proc.communicate(timeout=seconds + 30)
        answers += [Answer("health", 0.0, elapsed, status) for status, elapsed in json.loads(out)]
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


@dataclass(frozen=True, slots=True)
class Answer:
    """One request and what came back (status None: no answer within the client timeout,
    or the connection failed)."""

    op: str
    started: float  # time.monotonic()
    elapsed: float
    status: int | None
    retry_after: str | None = None
    content_type: str | None = None
    body: str = ""
    error: str | None = None

    @property
    def ended(self) -> float:
        return self.started + self.elapsed

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


Op = Callable[[httpx.Client, str], httpx.Response]


@dataclass
class Load:
    """`threads` clients, each sending the ops in turn (every `pause` seconds) until
    stopped; every answer is kept."""

    base: str
    ops: Mapping[str, Op]
    threads: int = 4
    pause: float = 0.02
    client_timeout: float = 5.0
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Load:
        for n in range(self.threads):
            t = threading.Thread(target=self._run, args=(n,), name=f"load-{n}", daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def stop(self) -> list[Answer]:
        self._stop.set()
        for t in self._workers:
            t.join(self.client_timeout + 5)
        return self.answers

    def _run(self, n: int) -> None:
        names = list(self.ops)
        i = n
        with httpx.Client(base_url=self.base, timeout=self.client_timeout) as client:
            while not self._stop.is_set():
                name = names[i % len(names)]
                i += 1
                answer = call(client, name, self.ops[name], f"{n}-{i}")
                with self._lock:
                    self.answers.append(answer)
                self._stop.wait(self.pause)


def call(client: httpx.Client, name: str, op: Op, tag: str) -> Answer:
    started = time.monotonic()
    try:
        response = op(client, tag)
    except httpx.HTTPError as e:
        return Answer(name, started, time.monotonic() - started, None, error=repr(e))
    return Answer(
        name,
        started,
        time.monotonic() - started,
        response.status_code,
        response.headers.get("retry-after"),
        response.headers.get("content-type"),
        response.text[:500],
    )


# Checks -------------------------------------------------------------------------------


def improper_failures(answers: Sequence[Answer]) -> list[Answer]:
    """Failed answers that are not a 503 problem with `Retry-After`."""
    bad = []
    for a in answers:
        if a.ok:
            continue
        if a.status != 503 or not a.retry_after or (a.content_type or "") != PROBLEM_JSON:
            bad.append(a)
            continue
        body = json.loads(a.body)
        if body.get("status") != 503 or not body.get("detail"):
            bad.append(a)
    return bad


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def latency_figures(prefix: str, answers: Sequence[Answer]) -> dict[str, float | int]:
    return time_figures(prefix, [a.elapsed for a in answers])


def time_figures(prefix: str, times: Sequence[float]) -> dict[str, float | int]:
    """n, p50, p99 and max of durations in seconds, in milliseconds."""
    if not times:
        return {f"{prefix}_n": 0}
    return {
        f"{prefix}_n": len(times),
        f"{prefix}_p50_ms": ms(percentile(times, 50)),
        f"{prefix}_p99_ms": ms(percentile(times, 99)),
        f"{prefix}_max_ms": ms(max(times)),
    }


def server_errors(log_text: str) -> list[str]:
    """Lines of a service log that tell of an unexpected error (a 500) or a traceback."""
    return [
        line
        for line in log_text.splitlines()
        if "Traceback" in line or "unexpected error" in line or "Exception in ASGI" in line
    ]


def statement(key: str, speaker: str = "ann-envoy") -> dict[str, Any]:
    """A valid statement body on the workload's actors and topics (`workers_support`)."""
    return {
        "key": key,
        "speaker": speaker,
        "quote": f"words {key}",
        "occurred_at": "2025-02-13",
        "channel": "press-conference",
        "topics": ["negotiations"],
        "sources": [{"publisher": "Example", "url": f"https://example.org/{key}"}],
    }


def sessions_of(conn: Any, app_name: str) -> dict[str, int]:
    """The sessions a process holds, by state (`active`, `idle`, `idle in transaction`)."""
    rows = conn.execute(
        "SELECT coalesce(state, 'none'), count(*) FROM pg_stat_activity "
        "WHERE application_name = %s GROUP BY 1",
        (app_name,),
    ).fetchall()
    return {str(state): int(n) for state, n in rows}
