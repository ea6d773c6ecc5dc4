"""The bundled seed: the BBC live page of 13 Feb 2025 and the history it refers to."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from domain.application import Timeline
from domain.ids import record_id
from domain.records import RECORD_CLASSES
from domain.writers import Author
from service.files.backfill import load_files, open_lines, seed_files

SEED = Author(writer="seed")


def _records(timeline: Timeline) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in seed_files():
        for _, raw in open_lines(path):
            line = json.loads(raw)
            if line["type"] in RECORD_CLASSES:
                rec = timeline.get_record(line["type"], record_id(line["type"], line["key"]))
                found.append((line["type"], rec.content))
    return found


def test_the_seed_loads_cleanly_and_a_second_load_adds_nothing(timeline: Timeline) -> None:
    # The first load accepts every line.
    first = load_files(timeline, seed_files(), SEED)
    assert first.rejected == []
    assert first.accepted > 0 and first.duplicates == 0
    head = timeline.head_position()
    assert head == first.last_position
    # The second finds every line already stored.
    second = load_files(timeline, seed_files(), SEED)
    assert (second.accepted, second.duplicates, second.rejected) == (0, first.accepted, [])
    assert timeline.head_position() == head


def test_the_seed_attributes_the_article_to_the_right_speakers(timeline: Timeline) -> None:
    load_files(timeline, seed_files(), SEED)
    records = _records(timeline)
    said = [c for kind, c in records if kind in ("statement", "announcement")]
    assert len(said) >= 18
    speakers = Counter(c["speaker"] if "speaker" in c else ",".join(c["by"]) for c in said)
    for who in (
        "donald-trump",
        "volodymyr-zelensky",
        "pete-hegseth",
        "mark-rutte",
        "valerii-pekar",
    ):
        assert speakers[who] >= 1, who
    assert any("kremlin" in key for key in speakers)
    rutte = timeline.get_record(
        "statement", record_id("statement", "rutte-not-another-square-mile")
    )
    assert "grab another square mile" in str(rutte.content["quote"])
    # The occurrences run from the 2014 annexation to the 13 Feb 2025 NATO meeting.
    years = sorted(str(c["occurred_at"])[:4] for kind, c in records if kind == "occurrence")
    assert len(years) >= 5 and years[0] == "2014" and years[-1] == "2025"
