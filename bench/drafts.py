"""Drafting speed: `--megabytes` of live-page text drafted with the seed's actors and
topics, beside the same run's splitting of the same text into sentences (the least any
drafter does). The text is the development article again and again, each copy's lines
numbered so that no two sentences are alike.

    python -m bench.drafts --megabytes 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime
from pathlib import Path

from drafting.actors import actors_from
from drafting.drafts import Source, extract
from drafting.text import sentences
from service.files.backfill import SEED_DIR
from service.process import tune_gc

ARTICLE = SEED_DIR.parent / "seed-gold" / "article.txt"
SOURCE = Source(
    "https://news.example/live", "Bench", None, datetime.fromisoformat("2025-02-13T18:00Z")
)


def text_of(megabytes: float) -> str:
    article, copies, size = ARTICLE.read_text(encoding="utf-8"), list[str](), 0
    while size < megabytes * 1e6:
        copy = "\n".join(f"{line} ({len(copies)})" if line else "" for line in article.split("\n"))
        copies.append(copy)
        size += len(copy.encode())
    return "\n\n".join(copies)


def run(megabytes: float, repeats: int = 3) -> dict[str, float]:
    """Median seconds to draft the text and to split it into sentences, and its size."""
    actors = actors_from(json.loads(x) for x in (SEED_DIR / "1-actors.ndjson").open())
    topics = [(t["id"], t["label"]) for t in map(json.loads, (SEED_DIR / "2-topics.ndjson").open())]
    text = text_of(megabytes)
    drafting, splitting, drafts = [], [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        drafts = len(extract(text, SOURCE, actors, topics).lines)
        drafting.append(time.perf_counter() - started)
        started = time.perf_counter()
        sentences(text)
        splitting.append(time.perf_counter() - started)
    return {
        "megabytes": len(text.encode()) / 1e6,
        "drafts": drafts,
        "draft s": statistics.median(drafting),
        "sentences s": statistics.median(splitting),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures here too, as JSON")
    args = parser.parse_args()
    tune_gc()  # as every `timeline` command does
    figures = run(args.megabytes, args.repeats)
    for name, value in figures.items():
        print(f"{name}: {value:,.3f}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
