"""A real service process whose every log line is kept: uvicorn at debug level with its
access log on, the app's projections in process, stdout and stderr in one file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.projections.workers_support import wait_until
from tests.service.server import healthy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def logged_service(
    database_url: str, log: Path, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """uvicorn serving `service.asgi:app` on a free port, logging everything to `log`;
    yields its base URL and stops it (SIGTERM) afterwards."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "service.asgi:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "debug",
                "--access-log",
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
