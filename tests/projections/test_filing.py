"""A record version is filed under its topics and every topic above them, so that a
topic's page reads its subtree from one index range; a move of the tree files the
records below the moved topic anew from the move's position, and every answer as of a
position sees the tree as it stood there."""

from __future__ import annotations

import json

import pytest

from domain.application import Timeline
from domain.usecases import Written
from domain.writers import Author
from projections.view import TimelineQuery, TimelineView
from projections.workers import ReadModels
from tests.projections.workers_support import in_sql

SOURCE = {"publisher": "Wire", "url": "https://example.org/a"}


def _build(timeline: Timeline) -> dict[str, Written]:
    """world > europe > ukraine, and asia; a statement on ukraine and one on asia."""
    timeline.register_actor({"id": "ann-envoy", "name": "Ann Envoy", "kind": "person"})
    timeline.define_topic({"id": "world", "label": "World"})
    timeline.define_topic({"id": "europe", "label": "Europe", "parent": "world"})
    timeline.define_topic({"id": "ukraine", "label": "Ukraine", "parent": "europe"})
    timeline.define_topic({"id": "asia", "label": "Asia"})
    said = {
        "speaker": "ann-envoy",
        "occurred_at": "2025-02-13",
        "channel": "interview",
        "sources": [SOURCE],
    }
    west = timeline.record("statement", {**said, "quote": "west", "topics": ["ukraine"]})
    east = timeline.record("statement", {**said, "quote": "east", "topics": ["asia"]})
    return {"west": west, "east": east}


def _quotes(view: TimelineView, topic: str, at: int | None = None) -> list[str]:
    page = view.page(TimelineQuery(topic=topic, at=at))
    return sorted(json.loads(item)["quote"] for item in page.items)


@pytest.mark.parametrize("batch_size", [1, 500])
def test_a_move_files_the_records_below_anew_and_each_position_sees_its_tree(
    timeline: Timeline, read_models: ReadModels, author: Author, batch_size: int
) -> None:
    written = _build(timeline)
    before = written["east"].position
    moved = timeline.move_topic("europe", "asia").position
    correction = {"location": "Kyiv"}
    fixed = timeline.correct("statement", written["west"].id, correction, "placed").position
    back = timeline.move_topic("europe", None).position
    runner = read_models.runner()
    runner.batch_size = batch_size  # 500: each move starts a batch, its records' changes follow
    runner.catch_up()
    view = read_models.view()

    assert _quotes(view, "world", before) == ["west"]
    assert _quotes(view, "asia", before) == ["east"]
    # From the move on, the statement on ukraine is below asia, no longer below world;
    # the correction after it closes the version filed there, not its filing before.
    for at in (moved, fixed - 1):
        assert _quotes(view, "world", at) == []
        assert _quotes(view, "asia", at) == ["east", "west"]
        assert _quotes(view, "europe", at) == ["west"]
    assert _quotes(view, "asia", fixed) == ["east", "west"]
    page = view.page(TimelineQuery(topic="asia", at=fixed))
    assert [json.loads(i).get("location") for i in page.items if "west" in i] == ["Kyiv"]
    # Moved back to the top: below neither.
    for now in (back, None):
        assert _quotes(view, "asia", now) == ["east"]
        assert _quotes(view, "world", now) == []
        assert _quotes(view, "europe", now) == ["west"]
    said = view.who_said_what("asia", (None, None), fixed)
    assert said is not None
    assert [s["count"] for s in said["speakers"]] == [2]


def test_a_generation_stored_in_an_earlier_layout_is_emptied_and_projected_again(
    timeline: Timeline, read_models: ReadModels, author: Author
) -> None:
    _build(timeline)
    read_models.catch_up()
    view = in_sql(read_models.view())
    assert _quotes(view, "world") == ["west"]
    view.execute("UPDATE rm_layout SET version = 1")  # as a store written before filing
    view.create_tables()
    assert view.position() == 0
    assert _quotes(view, "europe") == []
    read_models.catch_up()
    assert _quotes(view, "world") == ["west"]
    assert view.position() == timeline.head_position()
