"""Validators and freshness of reads: every JSON read answers an ETag and a 304 to it;
an answer at a fixed point of the log is immutable, and stays byte for byte the same
whatever is written after it; any other answer must be checked again (no-cache)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.service.conftest import Api, ApiFactory, record_ids, statement, unique

IMMUTABLE = "public, max-age=31536000, immutable"
SLUGS = {"actors": "donald-trump", "topics": "negotiations"}


def read_paths(api: Api, parameter: str | None = None) -> list[str]:
    """Every GET of the API that says it may answer 304 (taking `parameter`, if named),
    with a seed record of its kind (by id or key), or a seed actor or topic."""
    ids = record_ids(api)
    records = {kind: api.read(f"/{kind}s/{id}").json() for kind, id in ids.items()}
    document: dict[str, Any] = api.client.get("/schema/openapi.json").json()
    paths = []
    for template, item in document["paths"].items():
        op = item.get("get")
        if op is None or "304" not in op["responses"]:
            continue
        names = {p["name"] for p in op.get("parameters", [])}
        if parameter is not None and parameter not in names:
            continue
        top = template.split("/")[1]
        record = records.get(top.removesuffix("s"), {})
        path = template
        for name, value in (("id", record.get("id", SLUGS.get(top))), ("key", record.get("key"))):
            if value is not None:
                path = path.replace(f"{{{name}}}", value)
        assert "{" not in path, f"no value to read {template} with: name one here"
        paths.append(path)
    return paths


def test_every_json_read_answers_an_etag_and_304_when_if_none_match_names_it(api: Api) -> None:
    paths = read_paths(api)
    # The reads of the seed: lists, who said what, topics, actors, counts, changes,
    # records and their history, the event feed, the projections.
    assert {"/timeline", "/timeline/counts", "/changes", "/actors", "/topics"} <= set(paths)
    assert len(paths) >= 15, paths
    for path in paths:
        first = api.read(path)
        assert first.status_code == 200, (path, first.text)
        etag = first.headers["etag"]
        # The same tag back: 304, no body, with the headers a cache refreshes.
        again = api.read(path, headers={"If-None-Match": etag})
        assert (again.status_code, again.content) == (304, b""), path
        for name in ("etag", "x-timeline-position", "cache-control", "vary"):
            assert again.headers[name] == first.headers[name], (path, name)
        assert "content-type" not in again.headers
        # Compared weakly: with or without W/, in a list; HEAD too; `*` matches anything.
        opaque = etag.removeprefix("W/")
        for given in (opaque, f"W/{opaque}", f'"x", {etag}', "*"):
            assert api.read(path, headers={"If-None-Match": given}).status_code == 304, given
        head = api.client.head(path, headers={"If-None-Match": etag})
        assert (head.status_code, head.content) == (304, b""), path
        # Another tag: the whole answer.
        other = api.read(path, headers={"If-None-Match": '"another", W/"tag"'})
        assert (other.status_code, other.content) == (200, first.content), path


def test_a_read_tags_its_body_weakly_and_a_record_strongly_by_its_version(api: Api) -> None:
    # A list: a weak tag that follows its body.
    timeline = api.read("/timeline", {"limit": 5})
    assert timeline.headers["etag"].startswith('W/"')
    other = api.read("/timeline", {"limit": 6})
    assert other.headers["etag"] != timeline.headers["etag"]
    # A record: strong, its version first, as If-Match on writes takes it.
    ids = record_ids(api)
    record = api.read(f"/statements/{ids['statement']}")
    assert record.headers["etag"].startswith(f'"{record.json()["version"]}.')


def test_an_answer_as_of_now_or_a_future_instant_is_no_cache_and_a_fixed_one_immutable(
    api: Api,
) -> None:
    head = api.services.timeline.head_position()
    never: dict[str, Any] = {"min_position": head}
    now: list[dict[str, Any]] = [{}, never, {"as_of": "2999-01-01T00:00:00Z"}]
    for params in now:
        answer = api.client.get("/timeline", params=params)
        assert answer.headers["cache-control"] == "no-cache", params
    # As of a position, or of an instant that a later event has passed: immutable.
    first = api.client.get("/events", params={"limit": 2}).json()["events"]
    passed = {"as_of": first[0]["recorded_at"], "min_position": head}
    fixed: list[dict[str, Any]] = [{"as_of_position": 1}, {"as_of_position": head, **never}, passed]
    for params in fixed:
        answer = api.client.get("/timeline", params=params)
        assert answer.headers["cache-control"] == IMMUTABLE, params
    # /changes: fixed when both ends are.
    spans: list[tuple[dict[str, Any], str]] = [
        ({"to_position": head}, IMMUTABLE),
        ({"from_position": 1, "to_position": head}, IMMUTABLE),
        ({"from_position": 1}, "no-cache"),
        ({"to": "2999-01-01T00:00:00Z"}, "no-cache"),
        ({"from": "2999-01-01T00:00:00Z", "to_position": head}, "no-cache"),
    ]
    for params, control in spans:
        answer = api.client.get("/changes", params=params)
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == control, params
    # Errors and the live stream's headers are not the reads' to mark.
    assert "cache-control" not in api.client.get("/topics/no-such-topic").headers
    assert api.client.head("/events/stream").headers["cache-control"] == "no-store"


def test_with_read_keys_answers_are_private(api_factory: ApiFactory) -> None:
    api = api_factory("memory", read_requires_key=True)
    fixed = api.read("/timeline", {"as_of_position": 3}, who="read")
    assert fixed.headers["cache-control"] == "private, max-age=31536000, immutable"
    now = api.read("/timeline", who="read")
    assert now.headers["cache-control"] == "private, no-cache"


def _snapshot(api: Api, paths: list[str], position: int) -> dict[str, httpx.Response]:
    answers = {path: api.read(path, {"as_of_position": position}) for path in paths}
    answers["/changes"] = api.read("/changes", {"to_position": position, "limit": 500})
    for path, answer in answers.items():
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["cache-control"] == IMMUTABLE, path
    return answers


@pytest.mark.parametrize("store", ["memory", "sqlite", "postgres"])
def test_an_answer_at_a_fixed_position_stays_byte_identical_after_more_writes(
    api_factory: ApiFactory, store: str
) -> None:
    api = api_factory(store)
    paths = read_paths(api, "as_of_position")
    assert {"/timeline", "/timeline/counts", "/actors", "/topics"} <= set(paths)
    assert any(p.endswith("/who-said-what") for p in paths), paths
    ids = record_ids(api)
    for kind in ids:
        assert f"/{kind}s/{ids[kind]}" in paths
    position = api.services.timeline.head_position()
    before = _snapshot(api, paths, position)
    # More writes land: a new statement on the topic and speaker read above, a
    # correction, new topics and a source, a retraction, an actor's alias.
    written = [
        api.post("/statements", statement(speaker="donald-trump", quote=unique("a remark"))),
        api.post(
            f"/statements/{ids['statement']}/corrections",
            {"changes": {"location": "Brussels"}, "reason": "r"},
        ),
        api.post(f"/statements/{ids['statement']}/tags", {"add": ["sanctions"]}),
        api.post(
            f"/occurrences/{ids['occurrence']}/sources",
            {"source": {"publisher": "AP", "url": "https://apnews.com/x"}},
        ),
        api.post(f"/announcements/{ids['announcement']}/retraction", {"reason": "wrong"}),
        api.post("/actors/donald-trump/aliases", {"alias": unique("The 47th")}),
    ]
    assert [w.status_code for w in written] == [201, 200, 200, 200, 200, 200], [
        w.text for w in written
    ]
    # At the position read before, every answer is the same, byte for byte, and so is
    # its tag.
    after = _snapshot(api, paths, position)
    for path, answer in after.items():
        assert answer.content == before[path].content, path
        assert answer.headers["etag"] == before[path].headers["etag"], path
    # Now, they differ: the writes did reach these reads.
    assert api.read(f"/announcements/{ids['announcement']}").status_code == 410
    changed = [p for p in paths if api.read(p).content != before[p].content]
    assert {"/timeline", f"/statements/{ids['statement']}", "/topics"} <= set(changed), changed
