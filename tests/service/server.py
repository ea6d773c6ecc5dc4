"""A real service process for the tests an in-process client cannot do (SSE, --api)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.projections.workers_support import wait_until


@contextmanager
def running_service(database_url: str) -> Iterator[str]:
    """uvicorn serving the app (projections in process) on a free port; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "service.asgi:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env={
                **os.environ,
                "TIMELINE_DATABASE_URL": database_url,
                "TIMELINE_RUN_PROJECTIONS": "true",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"

        def output() -> str:
            log.seek(0)
            return log.read().decode(errors="replace")[-3000:] or "(no output)"

        try:
            wait_until(
                f"the service answers {base}/health",
                lambda: healthy(base),
                every=0.1,
                seen=output,
                processes=[proc],
            )
            yield base
        finally:
            proc.terminate()
            proc.wait(10)


def healthy(base: str) -> bool:
    """Whether a service answers its health check at `base`."""
    try:
        return httpx.get(f"{base}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
