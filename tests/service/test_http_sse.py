"""The live event stream, through a real server (an infinite stream hangs in-process
clients): it follows new writes and resumes from Last-Event-ID."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from domain.writers import Author
from service.files.backfill import load_files, seed_files
from service.store.database import open_timeline, parse_url
from tests.reliability.serving import running_service


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp_path = tmp_path_factory.mktemp("sse")
    url = f"sqlite:///{tmp_path}/store"
    timeline = open_timeline(parse_url(url))
    load_files(timeline, seed_files(), Author("seed"))
    timeline.close()
    with running_service(url) as base:
        yield base, url


def _read_events(base: str, headers: dict[str, str], count: int) -> list[dict[str, object]]:
    """The first `count` events of the stream, as (id, event, data)."""
    out: list[dict[str, object]] = []
    current: dict[str, object] = {}
    # A generous read timeout: only a safety net, the events come as soon as they are written.
    with httpx.stream("GET", f"{base}/events/stream", headers=headers, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and current:
                out.append(current)
                current = {}
                if len(out) == count:
                    break
    return out


def test_the_stream_replays_the_log_and_resumes_after_the_last_event_id(
    server: tuple[str, str],
) -> None:
    base, _ = server
    # From the start: the seed's first events, in position order.
    first = _read_events(base, {}, 3)
    assert [e["id"] for e in first] == [1, 2, 3]
    assert first[0]["event"] == "Actor.Registered"
    # Resuming after event 3 gives 4 onwards, nothing repeated.
    resumed = _read_events(base, {"Last-Event-ID": "3"}, 2)
    assert [e["id"] for e in resumed] == [4, 5]


def test_the_stream_delivers_a_new_write_live(server: tuple[str, str]) -> None:
    base, url = server
    head = httpx.get(f"{base}/events?after=0&limit=500").json()["events"][-1]["position"]
    # A writer in another process records an actor while we listen at the head.
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time, sys; time.sleep(1.0);"
            "from service.store.database import open_timeline, parse_url;"
            "from domain.writers import Author, writing_as;"
            f"t = open_timeline(parse_url({url!r}));"
            "w = writing_as(Author('other-process')); w.__enter__();"
            "t.register_actor({'id': 'john-healey', 'name': 'John Healey', 'kind': 'person'})",
        ],
    )
    try:
        (event,) = _read_events(base, {"Last-Event-ID": str(head)}, 1)
    finally:
        writer.wait(10)
    assert event["id"] == head + 1
    assert event["event"] == "Actor.Registered"
    data = event["data"]
    assert isinstance(data, dict) and data["data"]["slug"] == "john-healey"


def test_a_bad_last_event_id_is_a_problem(server: tuple[str, str]) -> None:
    base, _ = server
    r = httpx.get(f"{base}/events/stream", headers={"Last-Event-ID": "x"}, timeout=5)
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
