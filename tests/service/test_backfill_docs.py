"""The backfill format's document is what the loader does: its example loads as written,
and a rejection reads as it shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

from domain.application import Timeline
from domain.writers import Author
from service.files.backfill import load
from service.files.lines import TYPE_ORDER

DOC = Path(__file__).resolve().parents[2] / "docs" / "backfill.md"


def _block(language: str) -> str:
    found = re.search(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)
    assert found, f"docs/backfill.md has no {language} block"
    return found.group(1)


def _numbered(text: str) -> list[tuple[int, bytes]]:
    return [(n, line.encode()) for n, line in enumerate(text.splitlines(), start=1) if line]


def test_the_documented_example_loads_as_written(timeline: Timeline) -> None:
    example = [json.loads(line) for line in _block("ndjson").splitlines()]
    assert {line["type"] for line in example} == set(TYPE_ORDER)
    report = load(timeline, _numbered(_block("ndjson")), Author("docs"))
    # Every line is taken, names before the lines that define them included.
    assert (report.accepted, report.duplicates, report.rejected) == (11, 0, [])
    # Loaded again, nothing is stored twice.
    again = load(timeline, _numbered(_block("ndjson")), Author("docs"))
    assert (again.accepted, again.duplicates) == (0, 11)


def test_a_rejection_reads_as_documented(timeline: Timeline) -> None:
    example = json.loads(_block("json"))
    (documented,) = example["rejected"]
    lines = _block("ndjson").splitlines()
    statement = {**json.loads(lines[0]), "key": "k3", "occurred_at": "2025-02-30"}
    text = "\n".join([lines[-2], lines[-1], json.dumps(statement)])
    report = load(timeline, _numbered(text), Author("docs"))
    assert report.accepted == 2
    assert [(r.line, r.key, r.error) for r in report.rejected] == [
        (documented["line"], documented["key"], documented["error"])
    ]
