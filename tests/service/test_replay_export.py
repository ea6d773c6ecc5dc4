"""Replay and export: offline answers equal the API's, and an export re-imports with the
same ids and the same read models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from domain.application import Timeline
from domain.errors import TimelineError
from domain.writers import Author, writing_as
from projections.view import TimelineQuery
from projections.workers import ReadModels
from service.files.backfill import load, load_files, seed_files
from service.files.replay import all_items, backfill_lines, replay, timelinejs, who_said
from service.http.app import create_app, wire
from service.settings import Settings
from service.store.commits import StoreTimeline
from service.store.database import Store, open_timeline
from tests.projections.test_as_of_property import (
    History,
    apply,
    fresh_store,
    operations,
    setup_world,
)


def _history(timeline: Timeline) -> list[int]:
    """The seed, then corrections, a retraction and late backfill; the positions between."""
    load_files(timeline, seed_files(), Author("seed"))
    marks = [timeline.head_position()]
    from domain.ids import record_id

    rutte = record_id("statement", "rutte-not-another-square-mile")
    with writing_as(Author("editor")):
        timeline.correct("statement", rutte, {"location": "NATO headquarters, Brussels"}, "place")
        marks.append(timeline.head_position())
        pekar = record_id("statement", "pekar-cold-anger")
        timeline.retract("statement", pekar, "not a statement of record")
        timeline.correct("statement", rutte, {"occurred_at": "2025-02-12"}, "day")
    marks.append(timeline.head_position())
    return marks


def _api(store: Store, timeline: StoreTimeline, models: ReadModels) -> TestClient[Any]:
    services = wire(Settings(database_url=store.url), store, timeline, models)
    return TestClient(create_app(built=services, run_projections=False))


@pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)
def test_replay_answers_as_the_api_does_at_every_mark(
    store: Store, timeline: StoreTimeline, read_models: ReadModels
) -> None:
    marks = _history(timeline)
    read_models.catch_up()
    view = replay(timeline)
    with _api(store, timeline, read_models) as client:
        for at in [*marks, None]:
            params = "" if at is None else f"&as_of_position={at}"
            for extra in ("", "&topic=negotiations", "&since=2025-02-13", "&actor=donald-trump"):
                api = client.get(f"/timeline?limit=500{params}{extra}").json()["items"]
                query = _query(extra, at)
                assert all_items(view, query) == api, (at, extra)
            api_wsw = client.get(f"/topics/negotiations/who-said-what?limit=500{params}").json()
            assert who_said(view, "negotiations", _query("", at)) == api_wsw


def _query(extra: str, at: int | None) -> TimelineQuery:
    from domain.when import parse_when

    if "topic" in extra:
        return TimelineQuery(topic="negotiations", at=at)
    if "since" in extra:
        return TimelineQuery(since=parse_when("2025-02-13").start, at=at)
    if "actor" in extra:
        return TimelineQuery(actor="donald-trump", at=at)
    return TimelineQuery(at=at)


def test_an_export_reimports_into_an_empty_store_with_the_same_ids_and_read_models(
    timeline: Timeline, tmp_path: Path
) -> None:
    _history(timeline)
    view = replay(timeline)
    lines = backfill_lines(view, None)
    raw = [(n, json.dumps(line).encode()) for n, line in enumerate(lines, start=1)]
    fresh = open_timeline(
        Store("memory://", "memory", {"PERSISTENCE_MODULE": "eventsourcing.popo"})
    )
    report = load(fresh, raw, Author("reimport"))
    assert report.rejected == []
    again = replay(fresh)

    def content(view_items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        drop = {"version", "position", "recorded_at", "first_recorded_at"}
        return [{k: v for k, v in i.items() if k not in drop} for i in view_items]

    before = all_items(view, TimelineQuery())
    after = all_items(again, TimelineQuery())
    assert [i["id"] for i in after] == [i["id"] for i in before]
    assert content(after) == content(before)
    # TimelineJS: one event per record, dated by its precision.
    document = timelinejs(before, "t")
    assert len(document["events"]) == len(before)
    assert {"year", "month", "day"} <= set(document["events"][-1]["start_date"])


class Markup(HTMLParser):
    """The elements and the text of an HTML fragment, as a browser would read them."""

    def __init__(self, fragment: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text = ""
        self.feed(fragment)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text += data


HOSTILE = {
    "publisher": "<img src=x onerror=alert(1)>",
    "title": '"><script>alert("title")</script>',
    "quote": "</p><svg onload=alert('quote')> & more",
    "http": 'https://example.org/"onmouseover="alert(1)',
    "urn": "urn:x-hostile:<b>bold</b>",
}


def test_the_timelinejs_export_shows_hostile_text_as_text_and_links_only_web_addresses(
    timeline: Timeline,
) -> None:
    load_files(timeline, seed_files(), Author("seed"))
    sources = [
        {"publisher": HOSTILE["publisher"], "url": HOSTILE["http"], "title": HOSTILE["title"]},
        {"publisher": HOSTILE["publisher"], "url": HOSTILE["urn"]},
    ]
    # A statement and an occurrence whose every text is hostile.
    for kind, body in (
        ("statement", {"speaker": "mark-rutte", "quote": HOSTILE["quote"], "channel": "speech"}),
        ("occurrence", {"title": HOSTILE["title"], "kind": "meeting"}),
    ):
        content = {**body, "occurred_at": "2025-02-14", "topics": ["negotiations"]}
        with writing_as(Author("hostile")):
            timeline.record(kind, {**content, "sources": sources})
    view = replay(timeline)
    items = all_items(view, TimelineQuery(since=None))
    # And a source whose address is a script (which the store itself would refuse).
    items[-1]["sources"].append({"publisher": "P", "url": "javascript:alert(1)"})
    document = timelinejs(items, HOSTILE["title"])
    fragments = [document["title"]["text"]["headline"]]
    for event in document["events"]:
        fragments += [event["text"]["headline"], event["text"]["text"]]
    shown = ""
    for fragment in fragments:
        markup = Markup(fragment)
        shown += markup.text
        # Only paragraphs and links, and a link only to an http(s) address.
        for tag, attrs in markup.elements:
            assert tag in ("p", "a"), (tag, fragment)
            if tag == "a":
                assert [name for name, _ in attrs] == ["href"], fragment
                assert str(attrs[0][1]).startswith(("https://", "http://")), fragment
            else:
                assert attrs == [], fragment
    # The hostile texts are shown as they were written, the other addresses as text.
    for text in (HOSTILE["publisher"], HOSTILE["title"], HOSTILE["quote"], HOSTILE["urn"]):
        assert text in shown
    assert "javascript:alert(1)" in shown
    links = [
        dict(attrs)["href"]
        for fragment in fragments
        for tag, attrs in Markup(fragment).elements
        if tag == "a"
    ]
    assert HOSTILE["http"] in links


def test_the_replay_command_writes_json_ndjson_and_csv(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store"
    env = {**os.environ, "TIMELINE_DATABASE_URL": url}
    cli = [sys.executable, "-m", "service.cli"]
    subprocess.run([*cli, "seed"], env=env, check=True, capture_output=True)
    for fmt in ("json", "ndjson", "csv"):
        out = tmp_path / f"answer.{fmt}"
        subprocess.run(
            [*cli, "replay", "-o", str(out), "--since", "2014-03-01", "--format", fmt],
            env=env,
            check=True,
            capture_output=True,
        )
        text = out.read_text()
        # The first record since 1 March 2014 is the annexation, in each format.
        if fmt == "json":
            first = json.loads(text)[0]["title"]
        elif fmt == "ndjson":
            first = json.loads(text.splitlines()[0])["title"]
        else:
            header, row = text.splitlines()[:2]
            first = row.split(",")[header.split(",").index("title")]
        assert first == "Russia annexes Crimea"
    bad = subprocess.run(
        [*cli, "replay", "-o", str(tmp_path / "x"), "--as-of", "2025-02-20"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "UTC offset" in bad.stderr


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    history=st.lists(operations, min_size=6, max_size=20),
    picks=st.lists(st.integers(0, 60), min_size=1, max_size=3),
)
def test_on_random_histories_replay_answers_as_the_api(
    store: Store,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    history: list[Any],
    picks: list[int],
) -> None:
    with fresh_store(store.kind, tmp_path, request, 500) as (app, models):
        h = History(app, models)
        setup_world(h)
        for n, op in enumerate(history):
            try:
                apply(h, op, n)
            except TimelineError:
                continue  # the domain refused it: nothing was stored
        models.catch_up()
        view = replay(app)
        with _api(store, app, models) as client:
            for at in [*(h.positions[p % len(h.positions)] for p in picks), None]:
                params = "" if at is None else f"&as_of_position={at}"
                api = client.get(f"/timeline?limit=500{params}").json()["items"]
                assert all_items(view, TimelineQuery(at=at)) == api
                wsw = client.get(f"/topics/world/who-said-what?limit=500{params}")
                offline = who_said(view, "world", TimelineQuery(at=at))
                # Before the topic was defined both say so: 404 here, None offline.
                assert offline == (wsw.json() if wsw.status_code == 200 else None)
                assert wsw.status_code in (200, 404)


def test_replay_refuses_a_topic_or_actor_it_does_not_know_then(tmp_path: Path) -> None:
    env = {**os.environ, "TIMELINE_DATABASE_URL": f"sqlite:///{tmp_path}/store"}
    cli = [sys.executable, "-m", "service.cli"]
    subprocess.run([*cli, "seed"], env=env, check=True, capture_output=True)
    out = str(tmp_path / "answer.json")
    for asked, said in [
        (["--topic", "no-such-topic"], "--topic: no topic 'no-such-topic'"),
        (["--actor", "no-such-actor"], "--actor: no actor 'no-such-actor'"),
        # Known now, but not at the log's start.
        (["--topic", "negotiations", "--as-of-position", "0"], "at that point"),
        (["--model", "who-said-what", "--topic", "no-such-topic"], "no topic"),
    ]:
        answer = subprocess.run(
            [*cli, "replay", "-o", out, *asked], env=env, capture_output=True, text=True
        )
        # As the API's 404: a clear error, and a status that is not success.
        assert answer.returncode == 2, (asked, answer.stderr)
        assert said in answer.stderr
    assert not Path(out).exists()
