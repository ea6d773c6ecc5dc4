"""The store refuses a PostgreSQL that could lose acknowledged writes; a writer whose
clock runs hours behind cannot reorder `as_of` answers.

The durability checks start throwaway clusters with `fsync` or `synchronous_commit` off
at the server (not per database, as tests/service/test_store.py does). The clock test
runs a writer process under `faketime` (Debian package `faketime`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from service.http.app import build_services
from service.settings import Settings
from service.store.database import StoreError, open_timeline, parse_url
from tests.chaos.conftest import Figures
from tests.clusters import throwaway_cluster
from tests.conftest import opens_and_writes
from tests.service.conftest import ApiFactory, statement
from tests.service.conftest import api_factory as api_factory  # the fixture, shared

TIMELINE_SCRIPT = str(Path(sys.executable).with_name("timeline"))


# The store refuses an unsafe server ----------------------------------------------------


def test_a_server_with_fsync_or_synchronous_commit_off_is_refused_by_every_entry_point(
    tmp_path: Path, figures: Figures, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused: dict[str, str] = {}
    with throwaway_cluster(settings={"fsync": "off"}) as cluster:
        assert cluster.setting("fsync") == "off"
        # The write model, the API's services and the projection worker all refuse it.
        with pytest.raises(StoreError, match="fsync=off") as opened:
            open_timeline(parse_url(cluster.url))
        refused["fsync=off"] = str(opened.value)
        with pytest.raises(StoreError, match="fsync=off"):
            build_services(Settings(database_url=cluster.url))
        worker = subprocess.run(
            [TIMELINE_SCRIPT, "project"],
            env={**os.environ, "TIMELINE_DATABASE_URL": cluster.url},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert worker.returncode == 2 and "fsync=off" in worker.stderr, worker.stderr
        # Nothing was created on the unsafe server.
        with cluster.connect() as conn:
            assert conn.execute("SELECT to_regclass('timeline_events')").fetchone() == (None,)
        # The same cluster with fsync on but synchronous_commit off at the server.
        cluster.stop()
        cluster.settings.update(fsync="on", synchronous_commit="off")
        cluster.start()
        assert cluster.setting("synchronous_commit") == "off"
        with pytest.raises(StoreError, match="synchronous_commit=off") as opened:
            open_timeline(parse_url(cluster.url))
        refused["synchronous_commit=off"] = str(opened.value)
        # The library's insert function (no table lock) is refused before any connection.
        monkeypatch.setenv("POSTGRES_ENABLE_DB_FUNCTIONS", "y")
        with pytest.raises(StoreError, match="takes no table lock") as opened:
            open_timeline(parse_url(cluster.url))
        refused["POSTGRES_ENABLE_DB_FUNCTIONS=y"] = str(opened.value)
        monkeypatch.delenv("POSTGRES_ENABLE_DB_FUNCTIONS")
        # Durable settings: it opens and writes.
        cluster.stop()
        cluster.settings.update(synchronous_commit="on")
        cluster.start()
        opens_and_writes(parse_url(cluster.url))
    figures(refused=sorted(refused), durable_server_opened=True)


# Clock skew -----------------------------------------------------------------------------

SKEW = timedelta(hours=3)
_WRITER = textwrap.dedent(
    """
    import json, sys
    from domain.writers import Author, writing_as
    from service.store.database import open_timeline, parse_url
    app = open_timeline(parse_url(sys.argv[1]))
    with writing_as(Author("skewed-writer")):
        written = app.record("statement", json.loads(sys.argv[2]))
    print(json.dumps({"id": str(written.id), "position": written.position,
                      "recorded_at": written.recorded_at.isoformat()}))
    app.close()
    """
)


def test_a_writer_hours_behind_does_not_reorder_as_of_answers_which_follow_positions(
    api_factory: ApiFactory, figures: Figures
) -> None:
    faketime = shutil.which("faketime")
    assert faketime, "the clock-skew test needs `faketime` (Debian package: faketime)"
    api = api_factory("postgres", seed=True)
    tag = uuid.uuid4().hex[:8]

    def write(key: str) -> dict[str, Any]:
        r = api.post("/statements", statement(key=key, quote=f"said {key}"))
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    a = write(f"a-{tag}")
    # B comes from another process whose clock runs three hours behind.
    done = subprocess.run(
        [
            faketime,
            "-f",
            f"-{int(SKEW.total_seconds() // 3600)}h",  # a relative offset: the clock still runs
            sys.executable,
            "-c",
            _WRITER,
            api.database_url,
            json.dumps(statement(key=f"b-{tag}", quote=f"said b-{tag}")),
        ],
        env={**os.environ, "FAKETIME_DONT_FAKE_MONOTONIC": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    b = json.loads(done.stdout.strip().splitlines()[-1])
    c = write(f"c-{tag}")
    api.position = max(api.position, c["position"])
    at = {k: datetime.fromisoformat(v["recorded_at"]) for k, v in {"a": a, "b": b, "c": c}.items()}
    # The skew is real: B's recorded time is hours before A's, its position after.
    skew = at["a"] - at["b"]
    assert skew > SKEW - timedelta(minutes=5), at
    assert a["position"] < b["position"] < c["position"]
    ids = {a["id"]: "a", b["id"]: "b", c["id"]: "c"}

    def seen(params: dict[str, Any]) -> tuple[str, int]:
        r = api.read("/timeline", {"limit": 500, **params})
        assert r.status_code == 200, r.text
        got = "".join(sorted(ids[i["id"]] for i in r.json()["items"] if i["id"] in ids))
        return got, int(r.headers["x-timeline-position"])

    second = timedelta(seconds=1)
    instants = {
        "b's clock": at["b"],
        "b's clock + 1 s": at["b"] + second,
        "a - 1 s": at["a"] - second,
        "a": at["a"],
        "between a and c": at["a"] + (at["c"] - at["a"]) / 2,
        "c": at["c"],
        "c + 1 h": at["c"] + timedelta(hours=1),
    }
    answers = {}
    for label, instant in instants.items():
        got, position = seen({"as_of": instant.isoformat().replace("+00:00", "Z")})
        # Each answer is a prefix of the log in position order (B never before A) ...
        assert got in ("", "a", "ab", "abc"), (label, got)
        # ... and is exactly the answer at the position the instant maps to.
        assert seen({"as_of_position": position})[0] == got, label
        answers[label] = got
    # B, stamped hours early, appears only with A: as of its own clock, nothing yet.
    assert answers["b's clock"] == "" and answers["b's clock + 1 s"] == ""
    assert answers["a - 1 s"] == ""
    assert answers["a"] == "ab"  # B was stored after A, before any later instant
    assert answers["c"] == answers["c + 1 h"] == "abc"
    assert answers["between a and c"] == "ab"
    figures(
        writer_clock_behind_s=round(skew.total_seconds()),
        positions={"a": a["position"], "b": b["position"], "c": c["position"]},
        as_of_answers=answers,
        reordered=0,
    )
