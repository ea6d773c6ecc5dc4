"""A live page of `tests/drafting/data/` drafted and scored against its gold, and the
targets set for pages the rules have never seen."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from drafting.actors import Actor
from drafting.drafts import Source, extract
from drafting.scoring import Scores, score

DATA = Path(__file__).parent / "data"


def scores_of(page: str, actors: list[Actor], published: str) -> Scores:
    """The drafts of `DATA/page.txt`, published then, against `DATA/page-gold.ndjson`."""
    source = Source(
        f"https://news.example/live/{page}", "Example", None, datetime.fromisoformat(published)
    )
    text = (DATA / f"{page}.txt").read_text(encoding="utf-8")
    gold = [json.loads(x) for x in (DATA / f"{page}-gold.ndjson").read_text().splitlines()]
    result = extract(text, source, actors)
    return score(result.text, result.lines, gold)


def assert_meets_the_targets(scores: Scores) -> None:
    """Attribution precision ≥ 0.85, recall ≥ 0.65, direct quotes ≥ 0.85, dates ≥ 0.9."""
    assert scores.precision >= 0.85 and scores.recall >= 0.65, scores
    assert scores.quote_recall >= 0.85 and scores.date_accuracy >= 0.9, scores
