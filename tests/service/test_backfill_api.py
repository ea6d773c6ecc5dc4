"""`timeline backfill --api URL --key KEY FILE`: an import from another machine, streamed
to POST /admin/backfill of a running service, gzip files as they are."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.store.database import open_timeline, parse_url
from service.store.keys import open_keys
from tests.reliability.serving import running_service
from tests.service.conftest import HTTP_STORES, NDJSON, Api, ApiFactory
from tests.service.test_backfill import OUT_OF_ORDER, ndjson, statement
from tests.service.test_http_api import assert_problem


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A running service on SQLite, its URL, an admin key and a write key."""
    tmp = tmp_path_factory.mktemp("api")
    url = f"sqlite:///{tmp}/store"
    store = parse_url(url)
    timeline = open_timeline(store)
    keys = open_keys(store, timeline)
    admin, writer = keys.create("admin-script", "admin"), keys.create("a-writer", "write")
    timeline.close()
    with running_service(url) as base:
        yield base, admin, writer


def _backfill(base: str, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "backfill", "--api", base, "--key", key, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TIMELINE_DATABASE_URL": "memory://"},
    )


def test_an_import_through_the_api_reports_like_a_local_one(
    service: tuple[str, str, str], tmp_path: Path
) -> None:
    base, admin, _ = service
    path = ndjson(
        tmp_path / "h.ndjson", [*OUT_OF_ORDER, statement("ghost", "2025-02-13", speaker="nobody")]
    )
    # The first run accepts all but the line naming an unknown speaker.
    first = _backfill(base, admin, str(path))
    assert first.returncode == 1, first.stderr
    report = json.loads(first.stdout)
    assert report["accepted"] == 8
    assert [(r["line"], r["key"]) for r in report["rejected"]] == [(9, "ghost")]
    # Again: everything already there, the same line refused.
    again = json.loads(_backfill(base, admin, str(path)).stdout)
    assert (again["accepted"], again["duplicates"]) == (0, 8)
    # The records are served.
    head = again["last_position"] or report["last_position"]
    items = httpx.get(f"{base}/timeline?min_position={head}").json()["items"]
    assert {i["key"] for i in items} == {"s-2025", "s-2014"}


def test_a_dry_run_through_the_api_writes_nothing(
    service: tuple[str, str, str], tmp_path: Path
) -> None:
    base, admin, _ = service
    before = httpx.get(f"{base}/events?limit=500").json()["events"]
    path = ndjson(tmp_path / "d.ndjson", [statement(f"dry-{n}", "2020-01-01") for n in range(5)])
    report = json.loads(_backfill(base, admin, "--dry-run", str(path)).stdout)
    assert report["accepted"] == 5
    assert httpx.get(f"{base}/events?limit=500").json()["events"] == before


def test_a_write_key_cannot_backfill(service: tuple[str, str, str], tmp_path: Path) -> None:
    base, _, writer = service
    result = _backfill(base, writer, str(ndjson(tmp_path / "w.ndjson", OUT_OF_ORDER)))
    assert result.returncode == 2
    assert "403" in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_gzip_file_is_sent_as_it_is_and_imports_through_the_api(
    service: tuple[str, str, str], tmp_path: Path
) -> None:
    base, admin, _ = service
    # Lines of their own (a speaker and a topic no other test writes), gzipped.
    lines = [
        {"type": "actor", "id": "gz-speaker", "name": "Gz Speaker", "kind": "person"},
        {"type": "topic", "id": "gz-topic", "label": "Gz topic"},
        *(statement(f"gz-{n}", "2021-05-01", "gz-speaker", topics=["gz-topic"]) for n in range(3)),
    ]
    path = tmp_path / "h.ndjson.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(x) + "\n" for x in lines).encode()))
    # Every line is accepted, as from the plain file.
    result = _backfill(base, admin, str(path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["accepted"], report["rejected"]) == (5, [])
    # The records are served.
    url = f"{base}/timeline?topic=gz-topic&min_position={report['last_position']}"
    assert {i["key"] for i in httpx.get(url).json()["items"]} == {"gz-0", "gz-1", "gz-2"}


def test_a_service_that_is_down_is_one_line_of_error_and_exit_status_2(tmp_path: Path) -> None:
    path = ndjson(tmp_path / "h.ndjson", OUT_OF_ORDER)
    # A port nobody listens on: the connection is refused.
    result = _backfill(f"http://127.0.0.1:{_free_port()}", "tlk_any", str(path))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}: cannot reach the service at http://127.0.0.1:")
    assert "refused" in line.lower()
    assert result.stdout == ""


def _post(api: Api, body: bytes, encoding: str | None) -> httpx.Response:
    headers = {} if encoding is None else {"Content-Encoding": encoding}
    return api.post(
        "/admin/backfill", content=body, content_type=NDJSON, who="admin", headers=headers
    )


@pytest.mark.parametrize("store", HTTP_STORES)
def test_a_gzip_body_is_inflated_within_the_limit_and_other_encodings_are_415(
    api_factory: ApiFactory, store: str
) -> None:
    api = api_factory(store, backfill_max_bytes=1 << 20)
    lines = [statement(f"inflated-{n}", "2022-01-01") for n in range(3)]
    body = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    # A gzipped body, in two gzip members, is inflated and imported.
    sent = _post(api, gzip.compress(body[:100]) + gzip.compress(body[100:]), "gzip")
    assert sent.status_code == 200, sent.text
    assert (sent.json()["accepted"], sent.json()["rejected"]) == (3, [])
    before = api.events_digest()
    # A bomb: 64 kB that inflate to 64 MB of newlines, past the 1 MB limit, is 413.
    bomb = gzip.compress(b"\n" * (64 << 20), compresslevel=9)
    assert len(bomb) < 1 << 17
    assert_problem(_post(api, bomb, "gzip"), 413, "body")
    # So is a plain body past the limit.
    assert_problem(_post(api, b"\n" * ((1 << 20) + 1), None), 413, "body")
    # A body that is not gzip, or is cut short, is 400.
    assert_problem(_post(api, body, "gzip"), 400, "body")
    assert_problem(_post(api, gzip.compress(body)[:-10], "gzip"), 400, "body")
    # An encoding the service does not take is 415, naming the header.
    assert_problem(_post(api, body, "br"), 415, "content-encoding")
    assert_problem(_post(api, gzip.compress(body), "gzip, br"), 415, "content-encoding")
    # None of these stored anything.
    assert api.events_digest() == before
