"""Shared by the write-side reliability tests: the size of a run, the figures each test
measures, and digests of what a store holds.

`make test` runs every test here at a small size. Tests marked `chaos` are the same
scenarios at the issue's full size (200 race rounds, hundreds of examples per operation);
they are collected only when `TIMELINE_CHAOS=1` (as `make chaos` sets), and deselected —
not skipped — otherwise.

Every test records what it measured with the `figures` fixture: the numbers are printed
at the end of the run ("reliability figures") and, when `TIMELINE_FIGURES` names a file,
appended to it as JSON lines.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tests.service.conftest import Api
from tests.service.conftest import api_factory as api_factory  # the fixture, shared

# Read once, at import: the HTTP fixtures clear TIMELINE_* variables while apps run.
CHAOS = os.environ.get("TIMELINE_CHAOS", "") == "1"
FIGURES_FILE = os.environ.get("TIMELINE_FIGURES", "")
HERE = Path(__file__).parent
_RECORDED: list[dict[str, Any]] = []

Figures = Callable[..., None]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHAOS:
        return
    ours = [i for i in items if HERE in Path(str(i.path)).parents and "chaos" in i.keywords]
    if ours:
        config.hook.pytest_deselected(items=ours)
        items[:] = [i for i in items if i not in ours]


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[..., None]:
    """`figures(**numbers)`: what this test measured, printed and kept for the summary."""

    def record(**numbers: Any) -> None:
        entry = {"test": request.node.nodeid, **numbers}
        _RECORDED.append(entry)
        print(json.dumps(entry, ensure_ascii=False))
        if FIGURES_FILE:
            with open(FIGURES_FILE, "a", encoding="utf-8") as out:
                out.write(json.dumps(entry, ensure_ascii=False) + "\n")

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _RECORDED:
        return
    terminalreporter.section("reliability figures")
    for entry in _RECORDED:
        numbers = ", ".join(f"{k}={v}" for k, v in entry.items() if k != "test")
        terminalreporter.write_line(f"{entry['test']}: {numbers}")


def feed_digest(api: Api) -> tuple[str, int]:
    """A digest of the whole event feed, page by page, and how many events it holds:
    equal digests mean no stored event was added or changed."""
    digest = hashlib.sha256()
    after, count = 0, 0
    while True:
        page = api.client.get("/events", params={"after": after, "limit": 500})
        assert page.status_code == 200, page.text
        events = page.json()["events"]
        if not events:
            return digest.hexdigest(), count
        digest.update(page.content)
        count += len(events)
        after = events[-1]["position"]


def stored_versions(api: Api, id: UUID) -> list[int]:
    """The versions of one aggregate's events as the event store holds them."""
    return [e.originator_version for e in api.services.timeline.recorder.select_events(id)]


def contiguous(versions: list[int]) -> bool:
    """1, 2, 3, … with no gap and no repeat."""
    return versions == list(range(1, len(versions) + 1))
