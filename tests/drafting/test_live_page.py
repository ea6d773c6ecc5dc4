"""A live page written for this test (its people are the tests' own, in no article):
posts with their time lines, quotations and reported speech, pronouns, roles, a
possessive role, `according to`. The drafts meet the targets set for unseen pages."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from drafting.drafts import Source, extract
from drafting.scoring import score
from tests.drafting.test_drafts import ACTORS

DATA = Path(__file__).parent / "data"
SOURCE = Source(
    "https://news.example/live/2", "Example", None, datetime.fromisoformat("2025-03-05T18:00Z")
)


def test_the_drafts_of_a_live_page_meet_the_targets() -> None:
    text = (DATA / "live-page.txt").read_text(encoding="utf-8")
    gold = [json.loads(x) for x in (DATA / "live-page-gold.ndjson").read_text().splitlines()]
    result = extract(text, SOURCE, ACTORS)
    scores = score(result.text, result.lines, gold)
    assert scores.precision >= 0.85 and scores.recall >= 0.65
    assert scores.quote_recall >= 0.85 and scores.date_accuracy >= 0.9
    # No post's time line is read as part of what was said.
    assert not any("published at" in line["summary"] for line in result.lines)
    # "Norway's prime minister" is the one who held the role that day.
    (role,) = [x for x in result.lines if x["draft"]["rule"] == "role"]
    assert role["speaker"] == "ida-moe" and role["quote"] == "not be bullied"
