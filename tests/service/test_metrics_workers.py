"""`/metrics` under `timeline serve --workers 2`: whichever worker answers the scrape, the
counts are those of both workers."""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.projections.workers_support import wait_until
from tests.reliability.serving import TIMELINE, environment, free_port, healthy

REQUESTS = 60


def _health_count(text: str) -> float:
    """The requests to /health answered 200 that a scrape reports."""
    pattern = r'^timeline_http_requests_total\{(?=[^}]*route="/health")(?=[^}]*status="200")'
    counts = [
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if re.match(pattern, line)
    ]
    return sum(counts)


def test_a_scrape_counts_the_requests_of_every_worker(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store"
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = environment(TIMELINE_DATABASE_URL=url, TMPDIR=str(temporary))
    subprocess.run([TIMELINE, "seed"], env=env, check=True, capture_output=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [TIMELINE, "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            "both workers serve",
            lambda: healthy(base) and log.read_text().count("Application startup complete") == 2,
            seen=lambda: log.read_text(errors="replace")[-3000:],
            processes=[serve],
        )
        # The workers share a fresh directory for their metrics.
        assert [p.name[:17] for p in temporary.iterdir()] == ["timeline-metrics-"]
        before = _health_count(httpx.get(f"{base}/metrics", timeout=10).text)

        # Many requests at once, each on its own connection, so that both workers answer.
        def ask(_: int) -> int:
            return httpx.get(f"{base}/health", timeout=10).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(ask, range(REQUESTS))) == {200}
        # Every scrape, whichever worker answers it, counts all of them.
        for _ in range(10):
            scrape = httpx.get(f"{base}/metrics", timeout=10)
            assert scrape.status_code == 200
            assert _health_count(scrape.text) - before == REQUESTS, scrape.text
            assert "timeline_waiting_reads 0.0" in scrape.text
    finally:
        serve.terminate()
        serve.wait(30)
    # Their metrics went with them.
    assert list(temporary.iterdir()) == []
