"""The `timeline` command as a user runs it: `demo` serves the seed over real HTTP, and
`keys` makes, lists and revokes the keys the API checks."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from service.http.app import build_services, create_app
from service.settings import Settings
from tests.projections.workers_support import PATIENCE
from tests.reliability.serving import TIMELINE, Demo, environment, free_port
from tests.service.conftest import statement

STARTUP = PATIENCE  # for the demo to load the seed and listen (a few seconds, usually)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Demo, int]]:
    port = free_port()
    running = Demo(tmp_path / "home", port)
    try:
        yield running, port
    finally:
        running.close()


def get_when_up(url: str, deadline: float) -> httpx.Response:
    """GET, retrying while the server is not listening yet."""
    while True:
        try:
            return httpx.get(url, timeout=10, trust_env=False)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_the_demo_serves_the_seed_and_stops_on_sigterm(demo: tuple[Demo, int]) -> None:
    running, port = demo
    deadline = time.monotonic() + STARTUP
    # It prints where to read, and a write key.
    who = running.printed("who said what about negotiations", deadline)
    since = running.printed("the timeline since the 2014 annexation", deadline)
    key = running.printed("a write key (shown once)", deadline)
    base = f"http://127.0.0.1:{port}"
    assert who == f"{base}/topics/negotiations/who-said-what"
    assert since.startswith(f"{base}/timeline?")
    # Who said what about negotiations: the seed's speakers, Trump among them.
    answer = get_when_up(who, deadline)
    assert answer.status_code == 200, answer.text
    speakers = {s["actor"]["id"]: s for s in answer.json()["speakers"]}
    assert "donald-trump" in speakers and speakers["donald-trump"]["count"] >= 2
    assert int(answer.headers["x-timeline-position"]) > 0
    # The timeline since the annexation starts with it.
    timeline = get_when_up(since, deadline)
    assert timeline.status_code == 200, timeline.text
    first = timeline.json()["items"][0]
    assert first["key"] == "crimea-annexation-2014" and first["occurred_at"].startswith(
        "2014-03-18"
    )
    assert "annex" in first["title"].lower()
    # The printed key writes.
    written = httpx.post(
        f"{base}/statements",
        json=statement(speaker="donald-trump", quote="the demo key writes"),
        headers={"Authorization": f"Bearer {key}"},
        trust_env=False,
    )
    assert written.status_code == 201, written.text
    # SIGTERM: it stops. (uvicorn shuts down gracefully, then raises the signal again,
    # so the status is 0 or "killed by SIGTERM".)
    assert running.stop() in (0, -signal.SIGTERM), "\n".join(running.output)


def timeline_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TIMELINE, *args],
        env=environment(TIMELINE_DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_keys_are_created_listed_and_revoked_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/keys-store"
    # Create prints the key once; list shows names and scopes, never keys.
    made = timeline_cli(url, "keys", "create", "ci-bot", "--scope", "write")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("tlk_") and len(secret) > 40
    admin = timeline_cli(url, "keys", "create", "ops", "--scope", "admin")
    assert admin.returncode == 0, admin.stderr
    listed = timeline_cli(url, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("ci-bot", "write", "active"),
        ("ops", "admin", "active"),
    ]
    assert secret not in listed.stdout and secret not in listed.stderr
    # A name taken, or a scope that does not exist, is refused.
    assert timeline_cli(url, "keys", "create", "ci-bot").returncode == 2
    assert timeline_cli(url, "keys", "create", "other", "--scope", "root").returncode == 2
    # The API takes the key until it is revoked, then answers 401.
    settings = Settings(database_url=url)
    services = build_services(settings)
    with TestClient(create_app(settings, run_projections=False, built=services)) as client:
        headers = {"Authorization": f"Bearer {secret}"}
        before = client.post("/statements", json=statement(), headers=headers)
        assert before.status_code == 422  # past the guard: no such speaker in this store
        revoked = timeline_cli(url, "keys", "revoke", "ci-bot")
        assert revoked.returncode == 0, revoked.stderr
        assert revoked.stdout.strip() == "revoked ci-bot"
        after = client.post("/statements", json=statement(), headers=headers)
        assert after.status_code == 401
    listed = timeline_cli(url, "keys", "list")
    assert "\trevoked " in listed.stdout.splitlines()[0]
    # Revoking twice, or an unknown name, is refused.
    again = timeline_cli(url, "keys", "revoke", "ci-bot")
    assert again.returncode == 2 and "no active key" in again.stderr
