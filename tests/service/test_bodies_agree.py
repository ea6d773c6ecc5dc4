"""The API and the backfill take the same records with the same requirements: for every
line type, the smallest body one accepts the other accepts, and a body without any one
of its required fields is refused by both, naming that field."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from domain.ids import record_id
from tests.service.conftest import BBC, NDJSON, Api, unique
from tests.service.test_http_api import assert_problem

Body = dict[str, Any]


def _slug() -> str:
    return unique("x").replace(" ", "-")[:40]


def _record(api: Api) -> str:
    """A statement to correct, retract or source; its key."""
    key = unique("target")
    body = {
        "key": key,
        "speaker": "mark-rutte",
        "quote": unique(),
        "occurred_at": "2025",
        "channel": "other",
        "sources": [BBC],
    }
    assert api.post("/statements", body).status_code == 201, body
    return key


# Each line type: (its smallest body, made afresh; its required fields; the API's path
# for it, given the target's id).
Case = tuple[Callable[[], Body], tuple[str, ...], Callable[[str], str]]
CASES: dict[str, Case] = {
    "actor": (
        lambda: {"id": _slug(), "name": "A", "kind": "person"},
        ("id", "name", "kind"),
        lambda _: "/actors",
    ),
    "topic": (lambda: {"id": _slug(), "label": "A"}, ("id", "label"), lambda _: "/topics"),
    "statement": (
        lambda: {
            "speaker": "mark-rutte",
            "quote": unique(),
            "occurred_at": "2025",
            "channel": "other",
            "sources": [BBC],
        },
        ("speaker", "quote", "occurred_at", "channel", "sources"),
        lambda _: "/statements",
    ),
    "announcement": (
        lambda: {
            "by": ["mark-rutte"],
            "summary": unique(),
            "occurred_at": "2025",
            "channel": "other",
            "sources": [BBC],
        },
        ("by", "summary", "occurred_at", "channel", "sources"),
        lambda _: "/announcements",
    ),
    "occurrence": (
        lambda: {"title": unique(), "kind": "other", "occurred_at": "2025", "sources": [BBC]},
        ("title", "kind", "occurred_at", "sources"),
        lambda _: "/occurrences",
    ),
    "correction": (
        lambda: {"changes": {"location": unique()[:60]}, "reason": "r"},
        ("changes", "reason"),
        lambda id: f"/statements/{id}/corrections",
    ),
    "retraction": (lambda: {"reason": "r"}, ("reason",), lambda id: f"/statements/{id}/retraction"),
    "source": (
        lambda: {"source": {"publisher": "P", "url": f"urn:x:{_slug()}"}},
        ("source",),
        lambda id: f"/statements/{id}/sources",
    ),
}
CHANGES = ("correction", "retraction", "source")


def _backfill(api: Api, line: Body) -> list[str]:
    """The errors a dry run of the backfill reports for one line (none: accepted)."""
    sent = api.post(
        "/admin/backfill?dry_run=true", content=_ndjson(line), content_type=NDJSON, who="admin"
    )
    assert sent.status_code == 200, sent.text
    report = sent.json()
    assert report["accepted"] + len(report["rejected"]) == 1, report
    return [r["error"] for r in report["rejected"]]


def _ndjson(line: Body) -> bytes:
    return json.dumps(line).encode() + b"\n"


def _id(key: str) -> str:
    return str(record_id("statement", key))


@pytest.mark.parametrize("kind", list(CASES))
def test_the_smallest_body_one_accepts_the_other_accepts(api: Api, kind: str) -> None:
    make, _, path = CASES[kind]
    body = make()
    key = _record(api) if kind in CHANGES else ""
    target = {"target": {"kind": "statement", "key": key}} if kind in CHANGES else {}
    # The backfill accepts the line (a dry run, so that the API's write is new)...
    assert _backfill(api, {"type": kind, **target, **body}) == []
    # ...and the API the same body.
    answer = api.post(path(_id(key)), body)
    assert answer.status_code in (200, 201), answer.text


@pytest.mark.parametrize(
    ("kind", "field"),
    [(kind, field) for kind, (_, required, _) in CASES.items() for field in required]
    + [(kind, "target") for kind in CHANGES],
)
def test_a_body_without_a_required_field_is_refused_by_both_naming_it(
    api: Api, kind: str, field: str
) -> None:
    make, _, path = CASES[kind]
    key = _record(api) if kind in CHANGES else ""
    line: Body = {"type": kind, **make()}
    if kind in CHANGES:
        line["target"] = {"kind": "statement", "key": key}
    del line[field]
    # The backfill names the field...
    errors = _backfill(api, line)
    assert len(errors) == 1 and errors[0].startswith(f"{field}:"), errors
    # ...and so does the API (whose path names the target).
    if field != "target":
        body = {k: v for k, v in line.items() if k not in ("type", "target")}
        assert_problem(api.post(path(_id(key)), body), 422, field)
