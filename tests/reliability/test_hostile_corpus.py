"""The hostile-input corpus, whole, on the three stores, counted.

Every operation that takes input gets the corpus of tests/service/test_http_hostile.py
(NUL characters, invalid UTF-8, lone surrogates as JSON escapes, 5,000-deep nesting,
10 MB bodies, bidi and zero-width characters in slugs, numbers and naive times as dates,
SQL fragments, limit=10000, forged cursors) and more:

- bodies: lone surrogates as raw UTF-8 bytes, overlong UTF-8, a byte-order mark, numbers
  beyond any float (1e400) and any int (2**70) in every field, wrong JSON types in every
  field, look-alike slugs (Cyrillic letters, full-width letters, decomposed accents),
  dates in full-width or Arabic-Indic digits, offsets beyond ±23:59, years 0 and 10000,
  February 30th, and 10 MB bodies of valid JSON (a `413` problem);
- query parameters: non-ASCII digits, exponents, empty, repeated and 60 KB values;
- headers: non-ASCII digits and 8 KB values in `If-Match`.

Every answer must be a 4xx problem (an admin backfill: a report that rejects every
line), never a 5xx and never a success; and the whole event feed's digest must be the
same after as before.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.reliability.conftest import Figures, feed_digest
from tests.service.conftest import HTTP_STORES, NDJSON, Api, Apps, concrete, operations, record_ids
from tests.service.test_http_hostile import (
    BACKFILL_LINES,
    NO_INPUT,
    Probe,
    body_for,
    leaves,
    probes,
    refused,
    replaced,
)

HUGE_BODY = 10 * 1024 * 1024
# A valid slug's letters replaced by look-alikes: none of them is a slug.
LOOK_ALIKES = {
    "Cyrillic a": "m\u0430rk-rutte",
    "full-width letters": "\uff4d\uff41\uff52\uff4b",
    "decomposed accent": "rene\u0301",
    "NFC accent": "ren\u00e9",
    "dotless i": "\u0131ran",
    "trailing newline": "mark-rutte\n",
    "leading space": " mark-rutte",
    "upper case": "Mark-Rutte",
    "65 characters": "a" * 65,
}
BAD_DATES = {
    "full-width digits": "\uff12\uff10\uff12\uff15-02-13",
    "Arabic-Indic digits": "\u0662\u0660\u0662\u0665",
    "superscript digits": "\u00b2\u00b9\u00b2\u00b3",
    "offset +24:00": "2025-02-12T15:30:00+24:00",
    "offset -23:60": "2025-02-12T15:30:00-23:60",
    "year 0": "0000-01-01",
    "year 10000": "10000-01-01",
    "February 30": "2025-02-30",
    "hour 24": "2025-02-12T24:00:00Z",
    "trailing space": "2025-02-13 ",
    "date and space": "2025-02-12 15:30:00Z",
    "seven fraction digits": "2025-02-12T15:30:00.1234567Z",
}
WRONG_TYPES: dict[str, Any] = {
    "a number": 7,
    "a float": 2.5,
    "true": True,
    "an object": {"a": 1},
    "an int beyond 64 bits": 2**70,
}
SLUG_FIELDS = {
    "id",
    "speaker",
    "by",
    "topics",
    "mentions",
    "participants",
    "parent",
    "organization",
    "add",
    "remove",
}
DATE_FIELDS = {"occurred_at", "ended_at", "since", "until", "published_at"}
NON_ASCII_INTS = {
    "full-width digit": "%EF%BC%95",
    "superscript two": "%C2%B2",
    "Arabic-Indic three": "%D9%A3",
    "exponent": "1e2",
    "plus sign": "%2B5",
    "space": "%205",
    "underscore": "1_0",
    "hex": "0x10",
    "empty": "",
}
LONG_VALUE = "x" * 60_000  # (httpx sends URLs of at most 64 KB)


def encoded(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=True).encode()


def extra_body_probes(template: str, path: str) -> Iterator[Probe]:
    body = body_for(template)
    for field_path, name in leaves(body):
        where = ".".join(map(str, field_path))
        if name in SLUG_FIELDS:
            for what, value in LOOK_ALIKES.items():
                yield Probe(
                    f"{what} slug in {where}", path, encoded(replaced(body, field_path, value))
                )
        if name in DATE_FIELDS:
            for what, value in BAD_DATES.items():
                yield Probe(f"{what} in {where}", path, encoded(replaced(body, field_path, value)))
        for what, value in WRONG_TYPES.items():
            yield Probe(f"{what} in {where}", path, encoded(replaced(body, field_path, value)))
        # Raw bytes inside the string: a lone surrogate's UTF-8 and an overlong '/'.
        for what, raw in (
            ("raw surrogate bytes", b"\xed\xa0\x80"),
            ("overlong UTF-8", b"\xc0\xaf"),
        ):
            marked = encoded(replaced(body, field_path, "@@raw@@")).replace(b"@@raw@@", raw)
            yield Probe(f"{what} in {where}", path, marked)
    first = next(iter(leaves(body)))[0]
    number = encoded(replaced(body, first, "@@num@@")).replace(b'"@@num@@"', b"1e400")
    yield Probe("1e400 in a field", path, number)
    yield Probe("byte-order mark", path, b"\xef\xbb\xbf" + encoded(body))
    yield Probe(
        "10 MB of valid JSON", path, encoded(body)[:-1] + b"," + b" " * HUGE_BODY + b'"x": 1}'
    )
    yield Probe("10 MB list", path, b"[" + b"0," * (HUGE_BODY // 2) + b"0]")
    if "{id:" in template:
        for tag in ('"\u00b2"', '"\u00b9"', 'W/"\u00b3"', '"' + "9" * 8000 + '"'):
            headers = (("If-Match", tag),)
            yield Probe(f"If-Match {tag[:12]!r}", path, encoded(body), headers=headers)


def extra_backfill_probes() -> Iterator[Probe]:
    for line in BACKFILL_LINES:
        for field_path, name in leaves(line):
            where = ".".join(map(str, field_path))
            values: dict[str, Any] = dict(WRONG_TYPES)
            if name in SLUG_FIELDS:
                values |= LOOK_ALIKES
            if name in DATE_FIELDS:
                values |= BAD_DATES
            for what, value in values.items():
                body = encoded(replaced(line, field_path, value)) + b"\n"
                yield Probe(f"backfill: {what} in {where}", "/admin/backfill", body, NDJSON)
    yield Probe(
        "backfill: 2**70",
        "/admin/backfill",
        b'{"type": "actor", "id": 1180591620717411303424}\n',
        NDJSON,
    )


def extra_query_probes(api: Api, method: str, template: str, path: str) -> Iterator[Probe]:
    doc = api.client.get("/schema/openapi.json").json()
    spec_path = template.replace(":str}", "}").replace(":uuid}", "}").replace(":path}", "}")
    parameters = doc["paths"][spec_path][method.lower()].get("parameters", [])
    for parameter in (p for p in parameters if p["in"] == "query"):
        name, schema = parameter["name"], parameter.get("schema", {})
        types: set[object] = set()
        for one in (schema, *schema.get("oneOf", [])):  # a type, or a list of them
            kind = one.get("type")
            types.update(kind if isinstance(kind, list) else [kind])
        values = dict(NON_ASCII_INTS) if "integer" in types else {}
        if name in ("since", "until", "as_of"):
            values |= {
                what: value.replace(" ", "%20").replace("+", "%2B")
                for what, value in BAD_DATES.items()
            }
        if name in ("topic", "actor"):
            values |= {
                what: value.replace("\n", "%0A").replace(" ", "%20")
                for what, value in LOOK_ALIKES.items()
            }
        values["60 KB"] = LONG_VALUE
        for what, raw in values.items():
            yield Probe(f"{what} in ?{name}", f"{path}?{name}={raw}")
        if "integer" in types:
            yield Probe(f"?{name} twice, one bad", f"{path}?{name}=1&{name}=abc")


def corpus(api: Api, method: str, template: str) -> Iterator[Probe]:
    yield from probes(api, method, template)
    path = concrete(template, record_ids(api))
    if template == "/admin/backfill":
        yield from extra_backfill_probes()
    elif method == "POST":
        yield from extra_body_probes(template, path)
    else:
        yield from extra_query_probes(api, method, template, path)


def send(api: Api, probe: Probe) -> tuple[int, dict[str, Any] | None, bool]:
    """As the corpus's own `send`, with header values sent as raw (latin-1) bytes; and
    whether the answer is a problem document."""
    sent = {**api.auth("admin"), **dict(probe.headers)}
    if probe.body is not None:
        sent["Content-Type"] = probe.content_type
    headers = {k.encode("latin-1"): v.encode("latin-1") for k, v in sent.items()}
    if probe.body is None:
        response = api.client.get(probe.path, headers=headers)
    else:
        response = api.client.post(probe.path, content=probe.body, headers=headers)
    report = response.json() if probe.path == "/admin/backfill" and response.is_success else None
    problem = response.headers.get("content-type", "").startswith("application/problem+json")
    return response.status_code, report, problem


def category(what: str) -> str:
    """A probe's kind, for the figures: 'NUL in speaker' -> 'NUL'."""
    what = what.removeprefix("backfill: ").removeprefix("backfill line: ")
    for cut in (" in ", " slug in "):
        if cut in what:
            return what.split(cut)[0]
    return what


@pytest.fixture(scope="module", params=HTTP_STORES)
def hostile_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    apps = Apps(tmp_path_factory.mktemp("corpus"), request)
    try:
        yield apps(str(request.param), wait_timeout=0.3)
    finally:
        apps.close()


def test_every_hostile_input_is_refused_with_a_4xx_and_changes_nothing(
    hostile_api: Api, figures: Figures
) -> None:
    api = hostile_api
    before = feed_digest(api)
    head = api.services.timeline.head_position()
    sent, statuses, kinds = 0, Counter[int](), Counter[str]()
    failures = []
    for method, template in operations():
        if template in NO_INPUT:
            continue
        for probe in corpus(api, method, template):
            position = api.services.timeline.head_position()
            status, report, problem = send(api, probe)
            if api.services.timeline.head_position() != position:
                failures.append(f"{method} {template}: {probe.what}: {status}, stored events")
            sent += 1
            statuses[status] += 1
            kinds[category(probe.what)] += 1
            if not refused(status, report, probe):
                failures.append(f"{method} {template}: {probe.what}: {status} {report or ''}")
            elif report is None and not problem:
                failures.append(f"{method} {template}: {probe.what}: {status}, not a problem")
    assert failures == [], "\n".join(failures[:60]) + f"\n({len(failures)} in all)"
    assert feed_digest(api) == before
    assert api.services.timeline.head_position() == head
    server_errors = sum(n for s, n in statuses.items() if s >= 500)
    figures(
        store=api.services.store.kind,
        probes=sent,
        refused_4xx=sum(n for s, n in statuses.items() if 400 <= s < 500),
        backfill_reports_rejecting_all=statuses[200],
        server_errors=server_errors,
        accepted=len(failures),
        by_status=dict(sorted(statuses.items())),
        kinds=len(kinds),
        events_before=before[1],
        digest_unchanged=True,
    )


def test_a_change_in_two_parts_is_stored_whole_or_not_at_all(hostile_api: Api) -> None:
    """A topic relabelled and moved, a record tagged and untagged: when the second part
    is refused, the first is not stored either (it used to be, under a 422)."""
    api = hostile_api
    head = api.services.timeline.head_position()
    label = api.read("/topics/crimea").json()["label"]
    statement_id = record_ids(api)["statement"]
    refused: list[tuple[str, dict[str, Any], str, int]] = [
        (
            "/topics/crimea/changes",
            {"label": "Relabelled", "parent": "no-such-topic"},
            "parent",
            422,
        ),
        ("/topics/crimea/changes", {"label": "Relabelled", "parent": "crimea"}, "parent", 409),
        (
            "/topics/crimea/changes",
            {"label": "Relabelled", "parent": "war-in-ukraine\n"},
            "parent",
            422,
        ),
        (
            f"/statements/{statement_id}/tags",
            {"add": ["sanctions"], "remove": ["g7\n"]},
            "topics",
            422,
        ),
        (
            f"/statements/{statement_id}/tags",
            {"add": ["sanctions", "no-such-topic"]},
            "topics",
            422,
        ),
    ]
    for path, body, field, status in refused:
        answer = api.post(path, body)
        assert answer.status_code == status, (path, body, answer.text)
        assert answer.json()["errors"][0]["field"].startswith(field), answer.text
    assert api.services.timeline.head_position() == head
    assert api.read("/topics/crimea").json()["label"] == label
