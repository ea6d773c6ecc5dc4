"""The search index beside the row versions, on every store: written by the transactions
that write the rows, rebuilt with them in place or beside, and made for a store written
before it had one; and the FTS5 query a user's text becomes."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from typing import Any

import pytest

from domain.application import Timeline
from domain.writers import Author
from projections.sqlite import TOKENIZER, fts_query
from projections.view import TimelineQuery
from projections.workers import ReadModels
from service.files.backfill import load_files, seed_files
from tests.projections.workers_support import in_sql

SEARCHES = ["crimea", "Putin talks", "G7", "ukraine's", "annexed crimea 2014"]


def answers(models: ReadModels) -> dict[str, list[str]]:
    view = models.view()
    return {
        q: [json.loads(i)["id"] for i in view.page(TimelineQuery(q=q, limit=500)).items]
        for q in SEARCHES
    }


def test_a_rebuild_in_place_or_beside_finds_the_same_records(
    timeline: Timeline, read_models: ReadModels
) -> None:
    load_files(timeline, seed_files(), Author("seed"))
    read_models.catch_up()
    before = answers(read_models)
    assert all(before.values()), before
    read_models.rebuild()
    assert answers(read_models) == before
    read_models.rebuild_beside()
    assert answers(read_models) == before


def test_a_store_written_before_the_index_has_its_versions_indexed_once(
    timeline: Timeline, read_models: ReadModels
) -> None:
    load_files(timeline, seed_files(), Author("seed"))
    read_models.catch_up()
    before = answers(read_models)
    view = in_sql(read_models.view())
    found, params = view.matching("the")

    def versions() -> tuple[int, int]:
        """The versions that hold "the", counted each time the index names one, and once."""
        (counts,) = view.query(f"SELECT count(*), count(DISTINCT row_id) FROM ({found}) m", params)
        return int(counts[0]), int(counts[1])

    indexed = versions()
    assert indexed[0] > 10
    # As a store of an earlier release: rows, and no search index.
    view.execute(f"DROP TABLE {view.prefix}_search")
    view.create_tables()
    assert answers(read_models) == before
    assert versions() == indexed
    # Made once: a second start indexes nothing twice.
    view.create_tables()
    assert versions() == indexed


def pages(models: ReadModels, query: TimelineQuery) -> list[str]:
    """Every record a search finds, three a page."""
    view = models.view()
    found: list[str] = []
    after = None
    while True:
        page = view.page(replace(query, limit=3, after=after))
        found += [json.loads(i)["key"] for i in page.items]
        if page.next is None:
            return found
        after = page.next


def test_a_search_with_a_filter_finds_what_the_search_alone_finds_that_the_filter_keeps(
    timeline: Timeline, read_models: ReadModels
) -> None:
    # (SQLite checks each row of the filter's links; the search alone reads its index.)
    load_files(timeline, seed_files(), Author("seed"))
    read_models.catch_up()
    view = read_models.view()
    subtree = set(view.subtopics("negotiations", None))
    at = timeline.head_position() // 2
    for q in ("the", "trump", "Putin talks", "crimea"):
        for position in (None, at):
            alone = [
                json.loads(i) for i in view.page(TimelineQuery(q=q, at=position, limit=500)).items
            ]
            by_actor = [i["key"] for i in alone if "donald-trump" in named(i)]
            on_topic = [i["key"] for i in alone if subtree & set(i["topics"])]
            actor = TimelineQuery(q=q, at=position, actor="donald-trump")
            topic = TimelineQuery(q=q, at=position, topic="negotiations")
            assert pages(read_models, actor) == by_actor, (q, position)
            assert pages(read_models, topic) == on_topic, (q, position)


def named(item: dict[str, Any]) -> set[str]:
    """The actors an item names."""
    found = {item["speaker"]["id"]} if "speaker" in item else set()
    for field in ("by", "participants", "mentions"):
        found |= {actor["id"] for actor in item.get(field, [])}
    return found


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("Putin talks", '"Putin" "talks"'),
        ('"NEAR(a b)" AND -c*', '"NEAR" "a" "b" "AND" "c"'),
        ("Putin's", '"Putin" "s"'),
        ("e\u0301lan", '"e\u0301lan"'),  # a decomposed accent stays in its word
        ("🙂 ^x: {y}", '"x" "y"'),
    ],
)
def test_a_users_text_becomes_quoted_words_that_fts5_reads_as_text(text: str, query: str) -> None:
    assert fts_query(text) == query
    db = sqlite3.connect(":memory:")
    db.execute(f'CREATE VIRTUAL TABLE t USING fts5(text, tokenize="{TOKENIZER}")')
    db.execute("INSERT INTO t VALUES ('near a b and c putin s talks x y élan e\u0301lan')")
    assert db.execute("SELECT count(*) FROM t WHERE t MATCH ?", (query,)).fetchone() == (1,)
