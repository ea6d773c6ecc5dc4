"""Compression, validators and CORS through a real server (uvicorn, its settings from the
environment), and the live stream, which a client that accepts gzip still gets event by
event, uncompressed."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from domain.writers import Author
from service.files.backfill import load_files, seed_files
from service.store.database import open_timeline, parse_url
from tests.reliability.serving import logged_service

SITE = "https://analyst.example.org"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp_path = tmp_path_factory.mktemp("served")
    url = f"sqlite:///{tmp_path}/store"
    timeline = open_timeline(parse_url(url))
    load_files(timeline, seed_files(), Author("seed"))
    timeline.close()
    env = {"TIMELINE_CORS_ORIGINS": SITE}
    with logged_service(url, tmp_path / "service.log", env, quiet=True) as base:
        yield base, url


def _register(url: str, slug: str) -> subprocess.Popen[bytes]:
    """A writer in another process records an actor."""
    code = (
        "from service.store.database import open_timeline, parse_url;"
        "from domain.writers import Author, writing_as;"
        f"t = open_timeline(parse_url({url!r}));"
        "w = writing_as(Author('other-process')); w.__enter__();"
        f"t.register_actor({{'id': {slug!r}, 'name': {slug!r}, 'kind': 'person'}});"
        "t.close()"
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[2])


def test_a_read_is_gzipped_tagged_and_open_to_the_configured_origin(
    server: tuple[str, str],
) -> None:
    base, _ = server
    head = httpx.get(f"{base}/events", params={"limit": 500}).json()["events"][-1]["position"]
    url = f"{base}/timeline?limit=500&min_position={head}"
    headers = {"Accept-Encoding": "gzip", "Origin": SITE}
    with httpx.stream("GET", url, headers=headers, timeout=30) as answer:
        raw = b"".join(answer.iter_raw())
    assert answer.status_code == 200
    assert answer.headers["content-encoding"] == "gzip"
    assert int(answer.headers["content-length"]) == len(raw)
    plain = httpx.get(url, headers={"Accept-Encoding": "identity"}, timeout=30)
    assert gzip.decompress(raw) == plain.content
    assert answer.headers["access-control-allow-origin"] == SITE
    vary = {v.strip().lower() for v in answer.headers["vary"].split(",")}
    assert {"origin", "accept-encoding"} <= vary
    # The tag back: 304, no body.
    again = httpx.get(url, headers={"If-None-Match": answer.headers["etag"]}, timeout=30)
    assert (again.status_code, again.content) == (304, b"")
    assert again.headers["x-timeline-position"] == answer.headers["x-timeline-position"]
    # The origin's preflight is approved; another origin's is not.
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "if-match"}
    ours = httpx.options(f"{base}/statements", headers={"Origin": SITE, **ask})
    assert (ours.status_code, ours.headers["access-control-allow-origin"]) == (204, SITE)
    theirs = httpx.options(f"{base}/statements", headers={"Origin": "https://x.example", **ask})
    assert "access-control-allow-origin" not in theirs.headers


def test_the_live_stream_is_never_compressed_and_delivers_each_event_as_it_comes(
    server: tuple[str, str],
) -> None:
    base, url = server
    head = httpx.get(f"{base}/events", params={"limit": 500}).json()["events"][-1]["position"]
    headers = {"Accept-Encoding": "gzip", "Last-Event-ID": str(head), "Origin": SITE}
    seen: list[int] = []
    # A generous read timeout: only a safety net, each event comes as soon as it is written.
    with httpx.stream("GET", f"{base}/events/stream", headers=headers, timeout=60) as stream:
        assert stream.status_code == 200
        assert "content-encoding" not in stream.headers
        assert stream.headers["access-control-allow-origin"] == SITE
        # One write, then its event alone, before the next write is made: a compressor
        # that held bytes back would keep the client waiting here.
        writer = _register(url, "first-live-actor")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                seen.append(event["position"])
                assert writer.wait(30) == 0
                if len(seen) == 1:
                    assert event["data"]["slug"] == "first-live-actor"
                    writer = _register(url, "second-live-actor")
                else:
                    assert event["data"]["slug"] == "second-live-actor"
                    break
    assert seen == [head + 1, head + 2]
