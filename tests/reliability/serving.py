"""Real service processes for the tests an in-process client cannot do (SSE, --api, logs,
processes racing, the page in a browser): uvicorn with the app's projections in process,
whose every log line is kept (at debug level with its access log, unless quiet); the same
beside a `timeline project` worker on a seeded store; and `timeline demo` as a user runs
it."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.projections.workers_support import PATIENCE, Worker, Workers, wait_until

TIMELINE = str(Path(sys.executable).with_name("timeline"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(base: str) -> bool:
    """Whether a service answers its health check at `base`."""
    try:
        return httpx.get(f"{base}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def running_service(database_url: str) -> Iterator[str]:
    """The service (projections in process) for a test that needs a real server (SSE,
    --api), logging only warnings; yields its URL."""
    with (
        tempfile.TemporaryDirectory() as logs,
        logged_service(database_url, Path(logs) / "service.log", quiet=True) as base,
    ):
        yield base


@contextmanager
def logged_service(
    database_url: str,
    log: Path,
    env: Mapping[str, str] | None = None,
    *,
    quiet: bool = False,
) -> Iterator[str]:
    """uvicorn serving `service.http.asgi:app` on a free port, logging everything to `log`
    (`quiet`: warnings only); yields its base URL and stops it (SIGTERM) afterwards."""
    port = free_port()
    logging = ["--log-level", "warning"] if quiet else ["--log-level", "debug", "--access-log"]
    with log.open("wb") as out:
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
                *logging,
            ],
            env={
                **os.environ,
                "TIMELINE_DATABASE_URL": database_url,
                "TIMELINE_RUN_PROJECTIONS": "true",
                **(env or {}),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(
                f"the service answers {base}/health",
                lambda: healthy(base),
                every=0.1,
                seen=lambda: log.read_text(errors="replace")[-3000:] or "(no output)",
                processes=[proc],
            )
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def timeline(url: str, *args: str) -> str:
    """Run a `timeline` command on a store; its output."""
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env={**os.environ, "TIMELINE_DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@dataclass(frozen=True)
class Served:
    base: str  # the API's URL
    key: str  # a write key
    worker: Worker


@contextmanager
def served_with_worker(url: str, tmp_path: Path, env: Mapping[str, str]) -> Iterator[Served]:
    """The seed on a store, a write key, one API process (`env` its settings, beside no
    projections of its own) and one `timeline project` worker, which has caught up."""
    timeline(url, "seed")
    key = timeline(url, "keys", "create", "served-writer", "--scope", "write")
    settings = {"TIMELINE_RUN_PROJECTIONS": "false", **env}
    with Workers(tmp_path) as workers, logged_service(url, tmp_path / "api.log", settings) as base:
        worker = workers.start(url, "worker")
        wait_until(
            "the worker has projected the seed",
            lambda: caught_up(base),
            seen=lambda: httpx.get(f"{base}/projections", timeout=5).text,
            processes=[worker],
        )
        yield Served(base, key, worker)


def caught_up(base: str) -> bool:
    """Whether the service's read models have reached the head of a log that has events."""
    (projection,) = httpx.get(f"{base}/projections", timeout=5).json()["items"]
    return bool(projection["head"] > 0 and projection["position"] == projection["head"])


def environment(**extra: str) -> dict[str, str]:
    """This environment without the store settings, plus `extra`."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("TIMELINE_", "POSTGRES_"))}
    return {**keep, "PYTHONUNBUFFERED": "1", **extra}


class Demo:
    """`timeline demo` in a subprocess, its output read line by line as it comes."""

    def __init__(
        self,
        home: Path,
        port: int,
        database_url: str | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        store = {"TIMELINE_HOME": str(home), **(settings or {})}
        if database_url is not None:
            store["TIMELINE_DATABASE_URL"] = database_url
        self.process = subprocess.Popen(
            [TIMELINE, "demo", "--port", str(port)],
            env=environment(**store),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def printed(self, label: str, deadline: float) -> str:
        """The value printed after `label: `, waiting for it."""
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                assert self.process.poll() is None, "\n".join(self.output)
                continue
            self.output.append(line)
            if line.startswith(f"{label}: "):
                return line.removeprefix(f"{label}: ").strip()
        raise AssertionError(f"no {label!r} line in:\n" + "\n".join(self.output))

    def stop(self) -> int | None:
        """SIGTERM, and the exit status once it exits (None if it has not within
        PATIENCE, a safety net on a loaded machine: it usually takes a second)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self.stop() is None:
            self.process.kill()
            self.process.wait()
        self.reader.join(5)
        assert self.process.stdout is not None
        self.process.stdout.close()


@contextmanager
def running_demo(
    home: Path, database_url: str | None = None, settings: Mapping[str, str] | None = None
) -> Iterator[tuple[str, str]]:
    """`timeline demo` as a user runs it, once it answers with its read models caught up
    (`/ready`): its URL and the write key it printed; stopped afterwards."""
    port = free_port()
    demo = Demo(home, port, database_url, settings)
    try:
        deadline = time.monotonic() + PATIENCE
        key = demo.printed("a write key (shown once)", deadline)
        base = f"http://127.0.0.1:{port}"
        while not ready(base):
            assert time.monotonic() < deadline, "\n".join(demo.output)
            time.sleep(0.1)
        yield base, key
    finally:
        demo.close()


def ready(base: str) -> bool:
    """Whether a service at `base` answers `/ready` with 200 (its read models caught up)."""
    try:
        return httpx.get(f"{base}/ready", timeout=2, trust_env=False).status_code == 200
    except httpx.TransportError:
        return False
