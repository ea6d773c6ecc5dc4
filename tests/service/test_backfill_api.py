"""`timeline backfill --api URL --key KEY FILE`: an import from another machine, streamed
to POST /admin/backfill of a running service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.keys import KeyStore
from service.readmodels import open_read_models
from service.store import open_timeline, parse_url
from tests.service.server import running_service
from tests.service.test_backfill import OUT_OF_ORDER, ndjson, statement


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A running service on SQLite, its URL, an admin key and a write key."""
    tmp = tmp_path_factory.mktemp("api")
    url = f"sqlite:///{tmp}/store"
    store = parse_url(url)
    timeline = open_timeline(store)
    models = open_read_models(store, timeline)
    keys = KeyStore(models.view("timeline"))
    admin, writer = keys.create("admin-script", "admin"), keys.create("a-writer", "write")
    models.close()
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
