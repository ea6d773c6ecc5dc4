"""A deterministic synthetic history: actors, a topic tree, a decade of records with
corrections and sources. The same seed gives the same events."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from domain.actors import Actor, Topic
from domain.application import Timeline
from domain.ids import record_id
from domain.records import (
    RECORD_CLASSES,
    Record,
    content_print,
    derive_key,
    fingerprint,
    normalise,
)
from domain.writers import Author, writing_as

CHANNELS = ["press-conference", "social-media", "interview", "speech", "written-statement"]


def vocabulary(rng: random.Random, actors: int, topics: int) -> tuple[list[str], list[str]]:
    return [f"actor-{i}" for i in range(actors)], [f"topic-{i}" for i in range(topics)]


def record_body(
    rng: random.Random, n: int, actors: list[str], topics: list[str]
) -> tuple[str, dict[str, Any]]:
    year = rng.randint(2014, 2024)
    day = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    when = rng.choice([day, day, day[:7], f"{day}T{rng.randint(0, 23):02d}:30:00+02:00"])
    source = {"publisher": "Synthetic Wire", "url": f"https://example.org/news/{n}"}
    picked = rng.sample(topics, k=rng.randint(1, 3))
    if n % 10 == 9:
        return "occurrence", {
            "title": f"Occurrence {n}",
            "kind": "meeting",
            "occurred_at": when,
            "participants": rng.sample(actors, k=2),
            "topics": picked,
            "sources": [source],
        }
    if n % 10 == 8:
        return "announcement", {
            "by": [rng.choice(actors)],
            "summary": f"Announcement number {n}",
            "occurred_at": when,
            "channel": rng.choice(CHANNELS),
            "topics": picked,
            "sources": [source],
        }
    return "statement", {
        "speaker": rng.choice(actors),
        "quote": f"Statement number {n} on {picked[0]}",
        "occurred_at": when,
        "channel": rng.choice(CHANNELS),
        "topics": picked,
        "mentions": rng.sample(actors, k=1),
        "sources": [source],
    }


def write(
    timeline: Timeline,
    records: int,
    *,
    seed: int = 7,
    actors: int = 1000,
    topics: int = 100,
    chunk: int = 200,
) -> int:
    """Store the history through the aggregates, many per transaction; the events count."""
    with writing_as(Author("bench")):  # every event of the history names this writer
        rng = random.Random(seed)
        actor_slugs, topic_slugs = vocabulary(rng, actors, topics)
        pending: list[Any] = []
        events = 0

        def flush() -> None:
            nonlocal pending, events
            if pending:
                events += len(timeline.save_atomically(pending))
                pending = []

        for slug in actor_slugs:
            clean: dict[str, Any] = {
                "slug": slug,
                "name": slug.replace("-", " ").title(),
                "kind": "person",
                "aliases": [],
                "roles": [],
            }
            pending.append(
                Actor(
                    **clean,
                    fingerprint=fingerprint(clean),
                )
            )
            if len(pending) >= chunk:
                flush()
        for i, slug in enumerate(topic_slugs):
            parent = topic_slugs[(i - 1) // 4] if i else None
            clean = {"slug": slug, "label": slug.title(), "parent": parent, "description": None}
            pending.append(
                Topic(
                    **clean,
                    fingerprint=fingerprint(clean),
                )
            )
            if len(pending) >= chunk:
                flush()
        flush()
        for rec in _records(rng, records, actor_slugs, topic_slugs):
            pending.append(rec)
            if len(pending) >= chunk:
                flush()
        flush()
        return events


def _records(
    rng: random.Random, count: int, actors: list[str], topics: list[str]
) -> Iterator[Record]:
    for n in range(count):
        kind, body = record_body(rng, n, actors, topics)
        content = normalise(kind, body)
        key = derive_key(kind, content)
        cls = RECORD_CLASSES[kind]
        rec = cls._create(
            cls.Recorded,
            id=record_id(kind, key),
            key=key,
            content=content,
            fingerprint=content_print(content),
        )
        if n % 5 == 0:
            rec.correct(
                changes={"location": f"City {n % 97}"},
                reason="placed",
            )
        if n % 7 == 0:
            rec.add_source(
                source={"publisher": "Second Wire", "url": f"https://example.net/{n}"},
            )
        yield rec
