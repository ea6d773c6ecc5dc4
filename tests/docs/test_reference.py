"""The reference in docs/ is what the code does, and the repository holds every document
it names: the id recipes compute the ids the service gives, every setting the code reads
is documented, and every link and `docs/…` path points at a file that is here."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from domain.application import Timeline
from domain.writers import Author
from service.files.backfill import load

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CODE = ("domain", "projections", "service", "drafting", "bench", "tools")


def _python_blocks(doc: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)


def _recipes() -> dict[str, Any]:
    scope: dict[str, Any] = {}
    for block in _python_blocks(DOCS / "api.md"):
        exec(block, scope)  # the document's own examples, run as a reader runs them
    return scope


def test_the_id_recipe_gives_the_seeds_ids(timeline: Timeline) -> None:
    recipes = _recipes()
    seed = ROOT / "data" / "seed"
    lines = [
        (n, line.encode())
        for name in sorted(seed.glob("*.ndjson"))
        for n, line in enumerate(name.read_text().splitlines(), start=1)
        if line.strip()
    ]
    load(timeline, lines, Author("docs"))
    namespace = recipes["NAMESPACE"]
    records = [json.loads(line) for _, line in lines]
    assert len(records) > 30
    for line in records:
        kind = line["type"]
        name = f"{kind}:{line['id']}" if kind in ("actor", "topic") else f"{kind}:{line['key']}"
        if kind in ("actor", "topic"):
            get = timeline.get_actor if kind == "actor" else timeline.get_topic
            assert get(line["id"]).id == uuid.uuid5(namespace, name)
        else:
            assert timeline.get_record(kind, uuid.uuid5(namespace, name)).key == line["key"]


SOURCE = {"publisher": "BBC News", "url": "https://www.bbc.com/news/live/example"}
KEYLESS: list[dict[str, Any]] = [
    {
        "type": "statement",
        "speaker": "mark-rutte",
        "quote": "We have to make sure Putin will not try to grab another square mile",
        "occurred_at": "2025-02-12T23:30-05:00",  # the 13th in UTC: the key takes the 12th
        "channel": "press-conference",
        "sources": [SOURCE],
    },
    {
        "type": "announcement",
        "by": ["russia", "mark-rutte"],  # a set: sorted into the key
        "summary": "Zelenskyy\u0301 and a decomposed accent",  # NFC before hashing
        "occurred_at": "2025",
        "channel": "written-statement",
        "sources": [SOURCE],
    },
    {
        "type": "occurrence",
        "title": "Russia annexes Crimea",
        "kind": "annexation",
        "occurred_at": "2014-03-18",
        "sources": [SOURCE],
    },
]


@pytest.mark.parametrize("body", KEYLESS, ids=[str(b["type"]) for b in KEYLESS])
def test_the_derived_key_recipe_gives_the_id_the_service_gives(
    timeline: Timeline, body: dict[str, Any]
) -> None:
    recipes = _recipes()
    actors = [
        {"type": "actor", "id": "mark-rutte", "name": "Mark Rutte", "kind": "person"},
        {"type": "actor", "id": "russia", "name": "Russia", "kind": "state"},
    ]
    lines = [(n, json.dumps(line).encode()) for n, line in enumerate([*actors, body], start=1)]
    report = load(timeline, lines, Author("docs"))
    assert (report.accepted, report.rejected) == (3, [])
    kind = body["type"]
    fields = {k: v for k, v in body.items() if k != "type"}
    key = recipes["derived_key"](kind, fields)
    assert key.startswith("auto-")
    found = timeline.get_record(kind, uuid.uuid5(recipes["NAMESPACE"], f"{kind}:{key}"))
    assert found.key == key


def _settings_read_by_the_code() -> set[str]:
    found: set[str] = set()
    for package in ("domain", "projections", "service"):
        for path in (ROOT / package).rglob("*.py"):
            found |= set(re.findall(r"\"(TIMELINE_[A-Z_]+)\"", path.read_text()))
    return found


def test_every_setting_the_code_reads_is_documented() -> None:
    settings = _settings_read_by_the_code()
    assert "TIMELINE_DATABASE_URL" in settings
    documented = set(re.findall(r"`(TIMELINE_[A-Z_]+)`", (DOCS / "configuration.md").read_text()))
    assert settings <= documented, sorted(settings - documented)


def _texts() -> list[Path]:
    found = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    for package in (*CODE, "tests", "data"):
        found += sorted(p for p in (ROOT / package).rglob("*") if p.suffix in (".py", ".md"))
    found += [ROOT / "Makefile", ROOT / "pyproject.toml", ROOT / "compose.yaml", ROOT / ".ci/run"]
    return [p for p in found if p.is_file()]


def test_every_document_named_is_in_the_repository() -> None:
    missing = []
    for path in _texts():
        text = path.read_text()
        named = set(re.findall(r"\b(docs/[\w./-]+\.(?:md|png|json))", text))
        if path.suffix == ".md":  # relative links of a document
            for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
                if "://" not in target and not target.startswith("mailto:"):
                    named.add(str((path.parent / target).resolve().relative_to(ROOT)))
        missing += [f"{path.relative_to(ROOT)} names {n}" for n in named if not (ROOT / n).exists()]
    assert not missing, missing


def test_nothing_cites_a_document_the_repository_does_not_hold() -> None:
    cited = [
        str(p.relative_to(ROOT))
        for p in _texts()
        if p != Path(__file__) and re.search(r"\bSPEC\b|§\s*\d", p.read_text())
    ]
    assert not cited, cited
