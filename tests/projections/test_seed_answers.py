"""The timeline's view answers the analysts' first questions about the seed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from domain.application import Timeline
from domain.when import parse_when
from domain.writers import Author
from projections.view import TimelineQuery
from projections.workers import ReadModels
from service.files.backfill import load_files, seed_files


@pytest.fixture
def seeded(timeline: Timeline, read_models: ReadModels) -> ReadModels:
    report = load_files(timeline, seed_files(), Author("seed"))
    assert report.rejected == []
    read_models.catch_up()
    return read_models


def test_who_said_what_about_negotiations_lists_the_speakers_with_their_statements(
    seeded: ReadModels,
) -> None:
    answer = seeded.view().who_said_what("negotiations", (None, None), None)
    assert answer is not None
    speakers = {s["actor"]["id"]: s for s in answer["speakers"]}
    # Zelensky, Trump, Hegseth, the Kremlin and the others, with their records.
    for who in ("volodymyr-zelensky", "donald-trump", "pete-hegseth", "kremlin", "mark-rutte"):
        assert who in speakers, who
    trump = speakers["donald-trump"]
    assert trump["count"] == len(trump["records"]) >= 2
    dates = [r["occurred_at"] for r in trump["records"]]
    assert dates == sorted(dates)
    assert (trump["first_at"], trump["last_at"]) == (dates[0], dates[-1])
    rutte = speakers["mark-rutte"]["records"][0]
    assert "grab another square mile" in rutte["quote"]
    assert rutte["speaker"] == {"id": "mark-rutte", "name": "Mark Rutte"}


def test_the_timeline_since_the_annexation_runs_from_crimea_to_13_february_2025(
    seeded: ReadModels,
) -> None:
    since = parse_when("2014-03-01").start
    page = seeded.view().page(TimelineQuery(since=since, limit=500))
    items = [json.loads(i) for i in page.items]
    assert page.next is None
    assert "annex" in items[0]["title"].lower() and "crimea" in items[0]["title"].lower()
    assert items[-1]["occurred_at"].startswith("2025-02-13")
    starts = [(i["occurred_at"], i["position"]) for i in items]
    assert [s for s, _ in starts] == sorted(s for s, _ in starts)


def test_filters_by_topic_with_descendants_actor_and_kind(seeded: ReadModels) -> None:
    view = seeded.view()
    crimea = [json.loads(i) for i in view.page(TimelineQuery(topic="crimea")).items]
    territory = [json.loads(i) for i in view.page(TimelineQuery(topic="territory")).items]
    # Records on Crimea are also records on territory, its parent.
    assert crimea and {i["id"] for i in crimea} < {i["id"] for i in territory}
    putin = [json.loads(i) for i in view.page(TimelineQuery(actor="vladimir-putin")).items]
    assert any(i["kind"] == "occurrence" for i in putin)  # as a participant
    assert any(i["kind"] == "statement" for i in putin)  # as a mention
    occurrences = view.page(TimelineQuery(kind="occurrence")).items
    assert {json.loads(i)["kind"] for i in occurrences} == {"occurrence"}


def test_a_window_respects_each_record_s_precision(seeded: ReadModels) -> None:
    view = seeded.view()
    # A day record of 2014-03-18 is inside a window starting at noon that day...
    noon = datetime(2014, 3, 18, 12, tzinfo=UTC)
    items = view.page(TimelineQuery(since=noon, until=parse_when("2014-03-18").end)).items
    assert [json.loads(i)["occurred_as_given"] for i in items] == ["2014-03-18"]
    # ...and nothing of 2014 is inside a window on 2013.
    year_2013 = parse_when("2013")
    assert view.page(TimelineQuery(since=year_2013.start, until=year_2013.end)).items == []


def test_keyset_pages_cover_the_timeline_once(seeded: ReadModels) -> None:
    view = seeded.view()
    seen: list[str] = []
    after = None
    while True:
        page = view.page(TimelineQuery(limit=7, after=after))
        seen += [json.loads(i)["id"] for i in page.items]
        if page.next is None:
            break
        after = page.next
    everything = [json.loads(i)["id"] for i in view.page(TimelineQuery(limit=500)).items]
    assert seen == everything
    assert len(set(seen)) == len(seen) == 34


def test_actor_profiles_and_the_topic_tree(seeded: ReadModels) -> None:
    hegseth = seeded.view().actor("pete-hegseth", None)
    assert hegseth is not None
    assert hegseth["roles"][0]["title"]
    assert hegseth["records"] >= 6
    assert hegseth["latest"][0]["actor_role"]["since"] == "2025-01-25"
    assert sum(t["count"] for t in hegseth["by_topic"]) >= hegseth["records"]
    tree = {t["id"]: t for t in seeded.view().topic_tree(None)}
    assert tree["territory"]["total"] >= tree["crimea"]["total"] >= 1
    assert tree["territory"]["parent"] == "negotiations"
    assert "crimea" in tree["territory"]["children"]
