"""Backfill memory stays flat: a file four times longer is imported in about the same
memory, forward references, corrections and rejected lines included."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from domain.application import Timeline
from domain.writers import Author
from service.files import backfill as loader
from service.files.backfill import load, open_lines
from service.store.database import open_timeline, parse_url
from tests.service.test_backfill import OUT_OF_ORDER, ndjson, statement

ACTORS = [f"actor-{n}" for n in range(20)]
TOPICS = [f"topic-{n}" for n in range(7)]


def history(path: Path, records: int) -> Path:
    """Records with corrections and sources, some lines bad, and the actors and topics
    they name at the very end (children before parents)."""
    lines: list[str] = []
    for n in range(records):
        key = f"r{n}"
        target = {"kind": "statement", "key": key}
        lines.append(
            json.dumps(
                {
                    "type": "statement",
                    "key": key,
                    "speaker": ACTORS[n % len(ACTORS)] if n % 97 else "nobody",
                    "quote": f"Statement number {n}, " + "words " * 40,
                    "occurred_at": f"{2000 + n % 25}-{1 + n % 12:02d}-{1 + n % 28:02d}",
                    "channel": "speech",
                    "topics": [TOPICS[n % len(TOPICS)]],
                    "sources": [{"publisher": "Wire", "url": f"https://example.org/{n}"}],
                }
            )
        )
        if n % 5 == 0:
            lines.append(
                json.dumps(
                    {
                        "type": "correction",
                        "target": target,
                        "changes": {"location": f"City {n % 13}"},
                        "reason": "placed",
                    }
                )
            )
        if n % 7 == 0:
            source = {"publisher": "Other Wire", "url": f"https://example.net/{n}"}
            lines.append(json.dumps({"type": "source", "target": target, "source": source}))
        if n % 50 == 0:
            lines.append('{"type": "statement", "key": ')  # not JSON
    lines += [
        json.dumps({"type": "topic", "id": t, "label": t, **({"parent": TOPICS[0]} if i else {})})
        for i, t in enumerate(TOPICS)
    ][::-1]
    lines += [json.dumps({"type": "actor", "id": a, "name": a, "kind": "person"}) for a in ACTORS]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def import_peak(directory: Path, path: Path) -> tuple[int, loader.Report]:
    """The most Python memory held at once above where the import started, in bytes."""
    timeline = open_timeline(parse_url(f"sqlite:///{directory}"))
    try:
        tracemalloc.start()
        start = tracemalloc.get_traced_memory()[0]
        report = load(timeline, open_lines(path), Author("importer"), batch_size=100)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
        timeline.close()
    return peak, report


def test_a_file_four_times_longer_imports_in_about_the_same_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rejected lines are listed up to a bound, and only counted past it.
    monkeypatch.setattr(loader, "MAX_REJECTED", 20)
    # A first small import, so that what is built once per process is not counted below.
    import_peak(tmp_path / "warm", history(tmp_path / "warm.ndjson", 200))
    small_peak, small = import_peak(tmp_path / "small", history(tmp_path / "s.ndjson", 1000))
    big_peak, big = import_peak(tmp_path / "big", history(tmp_path / "b.ndjson", 4000))
    # Every line is accounted for: 4,000 records, 800 corrections, 572 sources, 80 lines
    # that are not JSON, 27 actors and topics; 137 bad (80 not JSON, 42 records naming no
    # known actor, and the 15 changes of these), the first 20 listed, in line order.
    assert (big.lines, big.accepted, big.duplicates) == (5479, 5479 - 137, 0)
    assert (len(big.rejected), big.omitted) == (20, 117)
    assert [r.line for r in big.rejected] == sorted(r.line for r in big.rejected)
    assert [(r.line, r.key) for r in big.rejected[:4]] == [
        (1, "r0"),
        (2, "r0"),
        (3, "r0"),
        (4, None),
    ]
    assert "not valid JSON" in big.rejected[3].error
    # Holding the lines would take four times the memory (about 1 kB a line); streaming
    # takes the same, give or take a batch.
    per_line = (big_peak - small_peak) / (big.lines - small.lines)
    assert big_peak < 1.5 * small_peak, (small_peak, big_peak)
    assert per_line < 100, (small_peak, big_peak)


def test_an_atomic_import_read_back_in_small_batches_is_still_all_or_nothing(
    timeline: Timeline, tmp_path: Path
) -> None:
    good = ndjson(tmp_path / "good.ndjson", OUT_OF_ORDER)
    bad = ndjson(tmp_path / "bad.ndjson", [*OUT_OF_ORDER, statement("x", "2025-02-30")])
    by = Author("importer")
    # One bad line in the last batch: nothing of the earlier batches is stored.
    report = load(timeline, open_lines(bad), by, atomic=True, batch_size=2)
    assert (report.accepted, [r.line for r in report.rejected]) == (0, [9])
    assert timeline.head_position() == 0
    # Without it, the batches are saved together, later lines seeing earlier ones.
    report = load(timeline, open_lines(good), by, atomic=True, batch_size=2)
    assert (report.accepted, report.rejected) == (8, [])
    assert report.last_position == timeline.head_position()


def test_a_line_too_long_is_read_no_further_and_the_next_lines_go_on(tmp_path: Path) -> None:
    path = tmp_path / "long.ndjson"
    long = b'{"type": "actor", "id": "a", "name": "' + b"x" * (3 * loader.MAX_LINE_BYTES) + b'"}'
    path.write_bytes(b"\n" + long + b"\n" + b"[]\n" + long)
    lines = list(open_lines(path))
    # At most one byte past the limit is held of each; the numbers are the file's.
    assert [(n, len(raw)) for n, raw in lines] == [
        (2, loader.MAX_LINE_BYTES + 1),
        (3, 3),
        (4, loader.MAX_LINE_BYTES + 1),
    ]
