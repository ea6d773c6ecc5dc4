"""Fixtures of the fault tests: a throwaway PostgreSQL cluster, and `figures`, which
records what a test measured.

Every test here needs PostgreSQL (the local server, or a cluster it starts itself), so
each is marked `postgres`: with TIMELINE_REQUIRE_POSTGRES=1 none may skip. The slow ones
are also marked `chaos` (`make chaos` runs them, `make test` deselects them with
`-m "not chaos"`).

Figures are printed, gathered under "chaos figures" at the end of the run, kept by test
in `.timeline/chaos-results.json`, and appended as JSON lines to `TIMELINE_FIGURES` when
that names a file (as the reliability tests do).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clusters import Cluster, throwaway_cluster

HERE = Path(__file__).parent
RESULTS = HERE.parents[1] / ".timeline" / "chaos-results.json"
_RECORDED: list[dict[str, Any]] = []

Figures = Callable[..., None]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A started throwaway cluster (fsync on), removed after the test."""
    with throwaway_cluster() as made:
        yield made


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """`figures(**numbers)`: what this test measured, printed and kept."""

    def record(**numbers: Any) -> None:
        entry = {"test": request.node.nodeid, **numbers}
        _RECORDED.append(entry)
        print(json.dumps(entry, ensure_ascii=False))
        _keep(entry)
        target = os.environ.get("TIMELINE_FIGURES")
        if target:
            with open(target, "a", encoding="utf-8") as out:
                out.write(json.dumps(entry, ensure_ascii=False) + "\n")

    return record


def _keep(entry: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    try:
        kept = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        kept = {}
    if not isinstance(kept, dict):
        kept = {}
    kept[entry["test"]] = {
        **{k: v for k, v in entry.items() if k != "test"},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.write_text(json.dumps(kept, indent=1, ensure_ascii=False) + "\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _RECORDED:
        return
    terminalreporter.section("chaos figures")
    for entry in _RECORDED:
        numbers = ", ".join(f"{k}={v}" for k, v in entry.items() if k != "test")
        terminalreporter.write_line(f"{entry['test']}: {numbers}")
