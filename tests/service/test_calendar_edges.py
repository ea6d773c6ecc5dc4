"""The calendar's edges: every instant from 0001-01-01 to 9999-12-31T23:59:59.999999, with
any offset from -14:00 to +14:00, is taken or refused naming its field, by every parser
(API, backfill, cursor, command line); nothing answers 500 or stops an import."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from domain.application import Timeline
from domain.errors import InvalidTime
from domain.usecases import UseCases
from domain.when import LAST, parse_when
from domain.writers import Author
from service import cli
from service.files.backfill import load
from service.http.params import encode_cursor
from tests.service.conftest import BBC, Api, Apps, statement

EDGE = "9999-12-31T23:59:59Z"
_OFFSETS = st.integers(-14 * 60, 14 * 60).map(
    lambda m: "Z" if m == 0 else f"{'-' if m < 0 else '+'}{abs(m) // 60:02}:{abs(m) % 60:02}"
)
# Every precision, anywhere in the calendar, with any offset of the world; and a few
# offsets past ±14:00, which must be refused.
TIMES = st.one_of(
    st.datetimes(datetime(1, 1, 1), datetime.max).flatmap(
        lambda d: st.sampled_from(
            [
                f"{d:%Y}",
                f"{d:%Y-%m}",
                f"{d:%Y-%m-%d}",
                f"{d:%Y-%m-%dT%H:%M}",
                f"{d:%Y-%m-%dT%H:%M:%S}",
                f"{d:%Y-%m-%dT%H:%M:%S.%f}",
            ]
        ).flatmap(
            lambda text: (
                st.just(text)
                if "T" not in text
                else st.one_of(_OFFSETS, st.sampled_from(["+14:01", "-15:00", "+23:59"])).map(
                    lambda tz: text + tz
                )
            )
        )
    ),
    st.sampled_from(
        [
            EDGE,
            "9999-12-31T23:59Z",
            "9999-12-31T23:59:59.999999Z",
            "9999-12-31T23:59:59.999999-14:00",
            "9999-12-31T10:00+14:00",
            "9999",
            "9999-12",
            "9999-12-31",
            "0001",
            "0001-01-01T00:00Z",
            "0001-01-01T00:00+14:00",
            "0001-01-01T13:59-14:00",
        ]
    ),
)


@pytest.fixture(scope="module")
def memory_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    apps = Apps(tmp_path_factory.mktemp("edges"), request)
    try:
        yield apps("memory")
    finally:
        apps.close()


def _refused_naming(response: Any, *fields: str) -> None:
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert {e["field"] for e in response.json()["errors"]} & set(fields), response.text


def test_the_last_instant_is_kept_and_an_end_past_it_ends_there() -> None:
    # The last day, month and year end at the last instant, not past it.
    for text in ("9999", "9999-12", "9999-12-31", "9999-12-31T23:59Z", EDGE):
        when = parse_when(text)
        assert when.end == LAST
        assert when.start <= when.end
    # Any offset from -14:00 to +14:00 is taken, none wider.
    assert parse_when("2025-02-12T10:00+14:00").start == datetime(2025, 2, 11, 20, tzinfo=UTC)
    assert parse_when("2025-02-12T10:00-14:00").start == datetime(2025, 2, 13, 0, tzinfo=UTC)
    for offset in ("+14:01", "-15:00", "+23:59"):
        with pytest.raises(InvalidTime, match="offsets run from -14:00 to") as caught:
            parse_when(f"2025-02-12T10:00{offset}", "as_of")
        assert caught.value.field == "as_of"
    # A local time whose UTC instant falls outside the calendar is refused, by name.
    with pytest.raises(InvalidTime, match="outside the times") as caught:
        parse_when("9999-12-31T23:59-01:00", "until")
    assert caught.value.field == "until"


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=TIMES)
def test_every_parser_takes_any_instant_of_the_calendar_or_refuses_it_by_name(
    memory_api: Api, tmp_path: Path, text: str
) -> None:
    # The domain's parser: a time, or its own error naming the field.
    try:
        when = parse_when(text, "occurred_at")
    except InvalidTime as e:
        refused: InvalidTime | None = e
    else:
        refused = None
        assert when.start <= when.end <= LAST
    assert refused is None or refused.field == "occurred_at"
    # Reads: every time parameter of the timeline, and a cursor made from the instant.
    for name in ("as_of", "since", "until"):
        response = memory_api.client.get("/timeline", params={name: text})
        if response.status_code != 200:
            _refused_naming(response, name)
    response = memory_api.client.get("/timeline", params={"cursor": encode_cursor([text, 1])})
    if response.status_code != 200:
        _refused_naming(response, "cursor")
    response = memory_api.client.get(
        "/topics/negotiations/who-said-what", params={"as_of": text, "until": text}
    )
    if response.status_code == 404:  # before the topic was defined
        assert response.json()["errors"][0]["field"] == "id"
    elif response.status_code != 200:
        _refused_naming(response, "as_of", "until")
    # Writes: a statement occurred then, from a source published then.
    body = statement(
        key=f"edge {text}",
        occurred_at=text,
        sources=[{**BBC, "published_at": text}],
    )
    response = memory_api.post("/statements", body)
    if response.status_code not in (200, 201):
        _refused_naming(response, "occurred_at", "sources[0].published_at")
    # A backfill line: accepted, or rejected with its number and field.
    report = memory_api.post(
        "/admin/backfill",
        content=json.dumps({"type": "statement", **body, "key": f"line {text}"}).encode(),
        content_type="application/x-ndjson",
        who="admin",
    )
    assert report.status_code == 200, report.text
    for rejected in report.json()["rejected"]:
        assert rejected["line"] == 1
        assert rejected["error"].startswith(("occurred_at:", "sources[0].published_at:"))
    # The command line: an answer, or an error message and exit status 2.
    result = CliRunner().invoke(
        cli.app,
        ["replay", "-o", str(tmp_path / "out.json"), "--until", text, "--since", text],
        env={"TIMELINE_DATABASE_URL": "memory://"},
    )
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("text", [EDGE, "9999-12-31T23:59Z"])
def test_the_last_instant_is_a_time_like_any_other_on_every_store(api: Api, text: str) -> None:
    # A statement occurred at the calendar's last minute, from a source published then...
    body = statement(key=f"last {text}", occurred_at=text, sources=[{**BBC, "published_at": text}])
    created = api.post("/statements", body)
    assert created.status_code == 201, created.text
    id = created.json()["id"]
    # ...corrected to end an occurrence there, and an actor's role that starts then.
    ended = api.post(
        "/occurrences",
        {
            "key": f"until the end {text}",
            "title": "The longest meeting",
            "kind": "meeting",
            "occurred_at": "2025-02-12",
            "ended_at": text,
            "sources": [BBC],
        },
    )
    assert ended.status_code == 201, ended.text
    corrected = api.post(
        f"/statements/{id}/corrections",
        {"changes": {"occurred_at": "9999-12-31"}, "reason": "the day only"},
    )
    assert corrected.status_code == 200, corrected.text
    role = api.post("/actors/mark-rutte/roles", {"title": f"Keeper {text}", "since": text})
    assert role.status_code == 200, role.text
    # Every read takes the instant as a bound and as a point of view.
    for params in ({"since": text}, {"until": text}, {"as_of": text}, {"since": "9999"}):
        page = api.read("/timeline", params)
        assert page.status_code == 200, page.text
    last = api.read("/timeline", {"since": "9999-12-31T23:00Z"}).json()["items"]
    assert id in [item["id"] for item in last]
    for path in (
        "/topics/territory/who-said-what",
        "/actors",
        "/actors/mark-rutte",
        "/topics",
        f"/statements/{id}",
    ):
        response = api.read(path, {"as_of": text})
        assert response.status_code == 200, (path, response.text)


def test_a_tampered_cursor_is_refused_not_a_server_error(api: Api) -> None:
    # A cursor this service never gives: an instant in year 1 that UTC cannot hold.
    for cursor in ("WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzE0OjAwIiwgMV0", encode_cursor([EDGE, 2**70])):
        _refused_naming(api.read("/timeline", {"cursor": cursor}), "cursor")


@pytest.mark.parametrize("mode", ["batches", "atomic", "dry_run"])
def test_a_line_that_breaks_our_own_code_is_reported_and_the_import_goes_on(
    timeline: Timeline, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The seed's actors and topics, then lines, one of which trips a bug of ours.
    lines = [
        {"type": "actor", "id": "mark-rutte", "name": "Mark Rutte", "kind": "person"},
        {"type": "topic", "id": "territory", "label": "Territory"},
        *(
            {
                "type": "statement",
                **statement(key=f"k{i}", quote=f"words {i}", occurred_at="2025-02-13"),
                "mentions": [],
            }
            for i in range(6)
        ),
    ]
    lines[4]["quote"] = "the line that breaks"
    record = UseCases.record

    def broken(self: UseCases, kind: str, data: Any) -> Any:
        if data.get("quote") == "the line that breaks":
            raise OverflowError("date value out of range")
        return record(self, kind, data)

    monkeypatch.setattr(UseCases, "record", broken)
    numbered = [(n, json.dumps(line).encode()) for n, line in enumerate(lines, start=1)]
    report = load(
        timeline,
        numbered,
        Author("importer"),
        batch_size=3,
        atomic=mode == "atomic",
        dry_run=mode == "dry_run",
    )
    # The line is reported with its number; the others are applied (all or none: none).
    assert [(r.line, r.key) for r in report.rejected] == [(5, "k2")]
    assert "unexpected OverflowError" in report.rejected[0].error
    assert report.accepted == (0 if mode == "atomic" else 7)


def test_replay_answers_at_the_last_instant(tmp_path: Path) -> None:
    env = {"TIMELINE_DATABASE_URL": f"sqlite:///{tmp_path}/store"}
    runner = CliRunner()
    assert runner.invoke(cli.app, ["seed"], env=env).exit_code == 0
    out = tmp_path / "answer.json"
    result = runner.invoke(
        cli.app, ["replay", "-o", str(out), "--as-of", EDGE, "--until", EDGE], env=env
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())) == 34  # every record of the seed
    # The year after the calendar is no instant: an error message, not a traceback.
    result = runner.invoke(cli.app, ["replay", "-o", str(out), "--until", "10000"], env=env)
    assert result.exit_code == 2
    assert "--until" in result.output


def test_an_edge_line_in_a_backfill_file_is_taken_and_the_rest_follow(
    timeline: Timeline, tmp_path: Path
) -> None:
    edge = {
        "type": "occurrence",
        "key": "to the end",
        "title": "t",
        "kind": "other",
        "occurred_at": EDGE,
        "ended_at": "9999-12-31T23:59:59.999999Z",
        "sources": [{**BBC, "published_at": EDGE}],
    }
    bad = {**edge, "key": "past the end", "occurred_at": "9999-12-31T23:59:59-00:01"}
    lines = [edge, bad, {**edge, "key": "after", "occurred_at": "2025"}]
    numbered = [(n, json.dumps(line).encode()) for n, line in enumerate(lines, start=1)]
    report = load(timeline, numbered, Author("importer"))
    assert report.accepted == 2
    assert [(r.line, r.error.split(":")[0]) for r in report.rejected] == [(2, "occurred_at")]
    assert datetime.max.replace(tzinfo=UTC) - parse_when(EDGE).start < timedelta(seconds=1)
