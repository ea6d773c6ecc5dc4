"""A hostile-input corpus against every operation: every body field, query parameter,
path id and conditional header gets NUL characters, invalid UTF-8, lone surrogates,
deep nesting, huge bodies, bidi and zero-width characters, numbers and naive times
where dates belong, and SQL fragments.

Every answer must be a 4xx (never a 5xx, never a success), and the stored events must
be byte for byte what they were before (the feed's digest). The admin backfill answers
a report rather than a 4xx: there, every hostile line must be rejected.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from tests.service.conftest import (
    BBC,
    NDJSON,
    Api,
    ApiFactory,
    Apps,
    announcement,
    concrete,
    occurrence,
    operations,
    record_ids,
    statement,
)

SQL = "'; DROP TABLE x; --"
NUL = "a\x00b"
SURROGATE = "x\ud800y"  # sent as the JSON escape \ud800, or as its UTF-8 bytes in URLs
BAD_UTF8 = b"\xff\xfe\xfa"
MARK = "@@invalid-utf8@@"
BIDI = "mark\u202e-rutte"
ZERO_WIDTH = "nato\u200b"
NAIVE = "2025-02-12T15:30:00"
HUGE = 10 * 1024 * 1024
DEEP = 5000

# Fields whose values are structured (slugs, kinds, times, URLs): SQL text, bidi and
# zero-width characters must fail there. Free text (quotes, names, reasons) may hold them.
STRUCTURED = {
    "id", "kind", "type", "speaker", "by", "topics", "mentions", "participants", "parent",
    "organization", "channel", "url", "add", "remove",
    *("occurred_at", "ended_at", "since", "until", "published_at"),
}  # fmt: skip
DATES = {"occurred_at", "ended_at", "since", "until", "published_at"}
# Query parameters of free text (a search): SQL text, bidi and zero-width characters are
# words to look for there; NUL, broken Unicode and 10,000 characters still fail.
FREE_TEXT_PARAMETERS = {"q"}
CHANGE = {"changes": {"location": "NATO headquarters"}, "reason": "place confirmed"}
SEED_KEY = "rutte-not-another-square-mile"  # a statement of the seed
VALID_BODIES: dict[str, dict[str, Any]] = {
    "/actors": {"id": "hostile-actor", "name": "Hostile", "kind": "person", "aliases": ["H"]},
    "/actors/{id:str}/aliases": {"alias": "The Donald"},
    "/actors/{id:str}/roles": {"title": "Envoy", "organization": "nato", "since": "2025-02"},
    "/actors/{id:str}/roles/end": {"title": "President", "until": "2029-01-20"},
    "/topics": {"id": "hostile-topic", "label": "Hostile", "parent": "negotiations"},
    "/topics/{id:str}/changes": {"label": "Talks", "parent": "war-in-ukraine"},
    "/statements": statement(),
    "/announcements": announcement(),
    "/occurrences": occurrence(ended_at="2025-02-13"),
    "corrections": {
        # (before the end of the first seed occurrence, the 2014 seizure of Crimea)
        "changes": {"location": "Brussels", "occurred_at": "2014-02-28"},
        "reason": "r",
    },
    "retraction": {"reason": "misattributed"},
    "sources": {"source": {**BBC, "url": "https://example.org/x", "published_at": "2025-02-13"}},
    "tags": {"add": ["sanctions"], "remove": ["g7"]},
    "/drafts": {
        "text": "“Talks resume on Monday,” Donald Trump said.",
        "published_at": "2025-02-13T18:00Z",
        "url": "https://example.org/live",
        "publisher": "Wire",
        "title": "Live",
    },
}
BACKFILL_LINES: list[dict[str, Any]] = [
    {"type": "actor", "id": "hostile-actor", "name": "Hostile", "kind": "person"},
    {"type": "topic", "id": "hostile-topic", "label": "Hostile"},
    {"type": "statement", "key": "hostile-statement", **statement()},
    {"type": "correction", "target": {"kind": "statement", "key": SEED_KEY}, **CHANGE},
]


@dataclass(frozen=True, slots=True)
class Probe:
    """One hostile request."""

    what: str
    path: str
    body: bytes | None = None
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def hostile_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    apps = Apps(tmp_path_factory.mktemp("hostile"), request)
    try:
        yield apps(str(request.param), wait_timeout=0.3)
    finally:
        apps.close()


# Bodies -------------------------------------------------------------------------------


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every string in a JSON value, with its path and the name of its field."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, (*path, i))
    elif isinstance(value, str):
        yield path, next(str(p) for p in reversed(path) if isinstance(p, str))


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replaced(value[head], rest, new)}
    return [replaced(v, rest, new) if i == head else v for i, v in enumerate(value)]


def encode(value: Any) -> bytes:
    """JSON with lone surrogates escaped (\\ud800), MARK as invalid UTF-8 bytes and
    DEEP_MARK as an array DEEP levels deep (too deep for json.dumps)."""
    raw = json.dumps(value, ensure_ascii=True).encode().replace(MARK.encode(), BAD_UTF8)
    return raw.replace(f'"{DEEP_MARK}"'.encode(), DEEP_JSON)


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


DEEP_MARK = "@@deep@@"
DEEP_JSON = b"[" * DEEP + b'"bottom"' + b"]" * DEEP


def hostile_values(field: str) -> list[tuple[str, Any]]:
    values: list[tuple[str, Any]] = [
        ("NUL", NUL),
        ("lone surrogate", SURROGATE),
        ("bad UTF-8", MARK),
    ]
    if field in STRUCTURED:
        values += [("SQL", SQL), ("bidi", BIDI), ("zero-width", ZERO_WIDTH)]
    if field in DATES:
        values += [("number", 20250213), ("float", 2025.5), ("naive time", NAIVE)]
    return values


def mutations(body: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    """The body with each string field made hostile, one at a time, then whole bodies."""
    for path, field in leaves(body):
        for name, value in hostile_values(field):
            yield f"{name} in {'.'.join(map(str, path))}", encode(replaced(body, path, value))
    first = next(iter(leaves(body)))[0]
    yield f"{DEEP}-deep nesting", DEEP_JSON
    yield f"{DEEP}-deep nesting in a field", encode(replaced(body, first, DEEP_MARK))
    yield "10 MB field", encode(replaced(body, first, "x" * HUGE))
    yield "invalid UTF-8 body", BAD_UTF8 + encode(body)
    yield "raw NUL byte in a string", encode(body).replace(b'"', b'"\x00', 1)
    yield "NUL key", encode({**body, "\x00": "x"})
    yield "empty body", b""
    yield "null", b"null"
    yield "an array", encode([body])


def body_for(template: str) -> dict[str, Any]:
    return VALID_BODIES.get(template) or VALID_BODIES[template.rsplit("/", 1)[1]]


# Paths, query parameters and headers -------------------------------------------------

RAW_IDS = {
    "SQL": quote(SQL, safe=""),
    "NUL": "a%00b",
    "bad UTF-8": "%FF%FE",
    "lone surrogate": "%ED%A0%80",
    "bidi": quote(BIDI, safe=""),
    "zero-width": quote(ZERO_WIDTH, safe=""),
    "10 000 characters": "x" * 10_000,
}
RAW_DATES = {"number": "123456789", "float": "0.5", "exponent": "1e9", "naive time": NAIVE}
RAW_INTS = {
    "SQL": quote(SQL, safe=""),
    "NUL": "1%00",
    "bad UTF-8": "%FF",
    "text": "abc",
    "float": "1.5",
    "negative": "-5",
}
HUGE_INTS = {"2**63": str(2**63), "10**40": "9" * 40}


def cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


FORGED_CURSORS = {  # cursors the service never gave
    "cursor with NUL": cursor(["2014\x00", 1]),
    "cursor with a huge position": cursor(["2014-01-01T00:00:00.000000Z", 10**30]),
    "cursor with a lone surrogate": cursor("\ud800"),
    "cursor with NUL text": cursor("a\x00"),
    "cursor of an object": cursor({"a": 1}),
    "cursor of nested arrays": cursor(nested(60)),
    "cursor not base64": "%%%",
}


def query_values(name: str, schema: dict[str, Any]) -> dict[str, str]:
    """Raw (already URL-encoded) hostile values for one query parameter."""
    types = {
        t
        for s in (schema, *schema.get("oneOf", []))
        for t in (s.get("type") if isinstance(s.get("type"), list) else [s.get("type")])
    }
    if "integer" in types:
        values = dict(RAW_INTS)
        if name == "limit":
            values |= {"10000": "10000", "zero": "0"}
        return values | HUGE_INTS
    values = dict(RAW_IDS)
    if name in FREE_TEXT_PARAMETERS:
        return {k: v for k, v in values.items() if k not in ("SQL", "bidi", "zero-width")}
    if name in ("since", "until", "as_of", "from", "to"):
        values |= RAW_DATES
    if name == "cursor":
        values |= FORGED_CURSORS
    return values


def query_parameters(api: Api, method: str, template: str) -> list[dict[str, Any]]:
    doc = api.client.get("/schema/openapi.json").json()
    path = template.replace(":str}", "}").replace(":uuid}", "}").replace(":path}", "}")
    parameters: list[dict[str, Any]] = doc["paths"][path][method.lower()].get("parameters", [])
    return [p for p in parameters if p["in"] == "query"]


def probes(api: Api, method: str, template: str) -> Iterator[Probe]:
    ids = record_ids(api)
    path = concrete(template, ids)
    if "{id:" in template:
        body = encode(body_for(template)) if method == "POST" else None
        for name, raw in RAW_IDS.items():
            hostile = concrete(template, dict.fromkeys(ids, raw), slug=raw)
            yield Probe(f"{name} in the path", hostile, body)
    if template == "/admin/backfill":
        yield from backfill_probes()
        return
    if method == "POST":
        for what, body in mutations(body_for(template)):
            yield Probe(what, path, body)
        yield Probe("text/plain body", path, encode(body_for(template)), "text/plain")
        if "{id:" in template:  # a change to something that exists: If-Match applies
            for raw in (SQL, '"-1"', '"' + "9" * 19 + '"', "W/", '"\x01"'):
                headers = (("If-Match", raw),)
                yield Probe(f"If-Match {raw!r}", path, encode(body_for(template)), headers=headers)
        return
    for parameter in query_parameters(api, method, template):
        name = parameter["name"]
        for what, raw in query_values(name, parameter.get("schema", {})).items():
            yield Probe(f"{what} in ?{name}", f"{path}?{name}={raw}")
    if template == "/events/stream":
        for raw in (SQL, "-1", "abc"):
            yield Probe(f"Last-Event-ID {raw!r}", path, headers=(("Last-Event-ID", raw),))


def backfill_probes() -> Iterator[Probe]:
    for line in BACKFILL_LINES:
        for what, body in mutations(line):
            yield Probe(f"backfill line: {what}", "/admin/backfill", body + b"\n", NDJSON)
    deep = b"[" * DEEP + b"]" * DEEP
    yield Probe("backfill: deep line", "/admin/backfill", deep + b"\n", NDJSON)
    yield Probe("backfill: invalid UTF-8", "/admin/backfill", BAD_UTF8 + b"\n" + BAD_UTF8, NDJSON)
    yield Probe("backfill: 10 MB of one line", "/admin/backfill", b"x" * HUGE, NDJSON)


# The corpus ---------------------------------------------------------------------------


def send(api: Api, probe: Probe) -> tuple[int, dict[str, Any] | None]:
    headers = {**api.auth("admin"), **dict(probe.headers)}
    if probe.body is None:
        response = api.client.get(probe.path, headers=headers)
    else:
        headers["Content-Type"] = probe.content_type
        response = api.client.post(probe.path, content=probe.body, headers=headers)
    report = response.json() if probe.path == "/admin/backfill" and response.is_success else None
    return response.status_code, report


def refused(status: int, report: dict[str, Any] | None, probe: Probe) -> bool:
    """A 4xx; or, for a backfill, a report that accepted nothing and rejected every line."""
    if report is not None:
        lines = [line for line in (probe.body or b"").splitlines() if line.strip()]
        return (report["accepted"], report["duplicates"], len(report["rejected"])) == (
            0,
            0,
            len(lines),
        )
    return 400 <= status < 500


NO_INPUT = {"/projections", "/health", "/ready", "/metrics"}  # no parameters, no body


@pytest.mark.parametrize(("method", "template"), [o for o in operations() if o[1] not in NO_INPUT])
def test_hostile_input_is_refused_with_a_4xx_and_changes_nothing(
    hostile_api: Api, method: str, template: str
) -> None:
    api = hostile_api
    before = api.events_digest()
    sent = 0
    failures = []
    for probe in probes(api, method, template):
        status, report = send(api, probe)
        sent += 1
        if not refused(status, report, probe):
            failures.append(f"{probe.what}: {status} {report or ''}")
    assert sent >= 5
    assert not failures, "\n".join(failures)
    assert api.events_digest() == before


def test_the_corpus_starts_from_bodies_the_service_accepts(api_factory: ApiFactory) -> None:
    # Each hostile body differs from one of these in one place: unchanged, they pass.
    api = api_factory("sqlite")
    ids = record_ids(api)
    posts = [t for m, t in operations() if m == "POST" and t != "/admin/backfill"]
    for template in sorted(posts, key=lambda t: t.endswith("/retraction")):  # retract last
        answer = api.post(concrete(template, ids), body_for(template), who="admin")
        assert answer.status_code in (200, 201), (template, answer.text)
    report = api_factory("memory").backfill(BACKFILL_LINES)  # on a store of its own
    assert report["accepted"] == len(BACKFILL_LINES)
