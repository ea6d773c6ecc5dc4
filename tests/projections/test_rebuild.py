"""Rebuilding a read model: in place from position 0, or beside the live one with
readers switched only once the new one has caught up."""

from __future__ import annotations

import json
import threading

from domain.application import Author, Timeline
from projections.models import ReadModels
from projections.timeline import TimelineQuery, timeline
from service.loader import load_files, seed_files


def _ids(models: ReadModels) -> list[str]:
    page = timeline(models.view("timeline"), TimelineQuery(limit=500))
    return [json.loads(item)["id"] for item in page.items]


def test_an_in_place_rebuild_gives_the_same_answers(
    timeline: Timeline, read_models: ReadModels
) -> None:
    load_files(timeline, seed_files(), Author("seed"))
    read_models.catch_up()
    before = _ids(read_models)
    # Rebuilt from position 0, the view reaches the head with the same answer.
    applied = read_models.rebuild("timeline")
    assert applied == timeline.head_position()
    assert read_models.view("timeline").position() == timeline.head_position()
    assert _ids(read_models) == before
    assert read_models.view("timeline").status()[0] == "running"


def test_a_rebuild_beside_switches_readers_without_a_moment_without_answers(
    timeline: Timeline, read_models: ReadModels
) -> None:
    load_files(timeline, seed_files(), Author("seed"))
    read_models.catch_up()
    expected = _ids(read_models)
    old_generation = read_models.view("timeline").generation
    # A reader asks again and again while the new generation is built and switched in.
    answers: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            answers.append(len(_ids(read_models)))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        read_models.rebuild_beside("timeline")
    finally:
        done.set()
        reader.join()
    # Every answer was whole, and readers now use the new generation.
    assert answers
    assert set(answers) == {len(expected)}
    view = read_models.view("timeline")
    assert view.generation == old_generation + 1
    assert view.generation_in_use() == old_generation + 1
    assert _ids(read_models) == expected
