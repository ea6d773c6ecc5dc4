"""A JSON object that gives a key twice is refused, never read as its last value: a write
body is 400 naming the key, a backfill line is rejected by its number naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from domain.application import Timeline
from domain.writers import Author
from service.files.backfill import load, open_lines
from service.files.jsonkeys import repeated_key
from tests.service.conftest import Api, statement, unique
from tests.service.test_backfill import OUT_OF_ORDER
from tests.service.test_backfill import statement as statement_line
from tests.service.test_http_api import assert_problem


def twice(body: dict[str, object], where: str, key: str, value: str) -> bytes:
    """`body` as JSON, with `"key": value` given again right after `where` opens."""
    text = json.dumps(body)
    at = text.index(where) + len(where)
    return f"{text[:at]}{json.dumps(key)}: {json.dumps(value)}, {text[at:]}".encode()


def test_a_write_body_that_gives_a_key_twice_is_400_naming_it(api: Api) -> None:
    record = api.post("/statements", statement(quote=unique("once")))
    assert record.status_code == 201, record.text
    path = f"/statements/{record.json()['id']}"
    head = api.services.timeline.head_position()
    body = statement(quote=unique("twice"))
    cases = {
        # The top level, a key the body gives later again.
        ("/statements", "quote"): twice(body, "{", "quote", "the other words"),
        # An object in a list.
        ("/statements", "sources[0].publisher"): twice(body, '"sources": [{', "publisher", "X"),
        # The words escape a colon (\u003a), which a quick count of colons would miss.
        ("/statements", "speaker"): twice(
            statement(quote=unique("said: yes")), "{", "speaker", "vladimir-putin"
        ).replace(b"said:", b"said\\u003a"),
        # The changes of a correction, and a topic's change.
        (f"{path}/corrections", "changes.location"): twice(
            {"changes": {"location": "Kyiv"}, "reason": "place"}, '{"changes": {', "location", "X"
        ),
        ("/topics/crimea/changes", "label"): twice({"label": "Crimea"}, "{", "label", "Krym"),
    }
    for (url, field), raw in cases.items():
        assert_problem(api.post(url, content=raw), 400, field)
    # Nothing was stored.
    assert api.services.timeline.head_position() == head


def test_a_backfill_line_that_gives_a_key_twice_is_rejected_by_number_naming_it(
    timeline: Timeline, tmp_path: Path
) -> None:
    path = tmp_path / "twice.ndjson"
    good = statement_line("good", "2025-02-13")
    lines = [
        *(json.dumps(line).encode() for line in OUT_OF_ORDER[4:]),  # actors and topics
        json.dumps(good).encode(),
        twice(statement_line("quote", "2025-02-13"), "{", "quote", "other words"),
        twice(statement_line("source", "2025-02-13"), '"sources": [{', "url", "https://x.org/"),
        # A colon escaped in a value (\u003a) hides no repeat from the check.
        twice(statement_line("escaped", "2025-02-13"), "{", "channel", "interview").replace(
            b"words escaped", b"words\\u003a escaped"
        ),
        json.dumps(statement_line("colon", "2025-02-13", quote="a\u003a b")).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = load(timeline, open_lines(path), Author("importer"))
    # The repeats are rejected with their numbers, naming the key; the rest is accepted.
    assert report.accepted == 6
    assert [(r.line, r.error.split(": ")[0]) for r in report.rejected] == [
        (6, "quote"),
        (7, "sources[0].url"),
        (8, "channel"),
    ]
    assert all("twice" in r.error for r in report.rejected)


@pytest.mark.parametrize(
    "raw",
    [b'{"a": "x\\u003a", "b": 1}', b'{"a": {"b": 1}, "b": {"a": 1}}', b'[{"a": 1}, {"a": 1}]'],
)
def test_the_same_key_in_other_objects_or_beside_an_escaped_colon_is_no_repeat(
    raw: bytes,
) -> None:
    assert repeated_key(raw, msgspec.json.decode(raw)) is None
