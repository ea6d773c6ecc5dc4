"""Every limit of a request body is the domain's, and the API and the backfill hold it
alike: a value at the limit passes both, one over it is refused by both — the API's 422
names the field, the backfill names the line and the field.

The limits are read from the bodies' JSON schemas (as msgspec builds them, and the
OpenAPI document shows them), so a limit added there is tested here at once."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from domain import records, rules
from domain.ids import record_id
from service.http import schemas
from tests.service.conftest import BBC, NDJSON, Api, unique
from tests.service.test_bodies_agree import CASES, CHANGES
from tests.service.test_http_api import assert_problem

Body = dict[str, Any]
# Each line type and its body's schema.
BODIES: dict[str, type[msgspec.Struct]] = {
    "actor": schemas.ActorIn,
    "topic": schemas.TopicIn,
    **schemas.RECORD_BODIES,
    "correction": schemas.CorrectionIn,
    "retraction": schemas.RetractionIn,
    "source": schemas.SourceIn,
}
REFERENCES = {"topics": "topic", "mentions": "actor", "participants": "actor", "by": "actor"}
SIZE = rules.LIST_MAX  # actors and topics to refer to: as many as a list may name


def _schema(node: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """A property's schema: a reference followed, `null` dropped from a choice."""
    choices = [c for c in node.get("anyOf", [node]) if c.get("type") != "null"]
    found: dict[str, Any] = choices[0]
    if "$ref" in found:
        found = components[found["$ref"].split("/")[-1]]
    return found


def limits(cls: type[msgspec.Struct]) -> Iterator[tuple[str, str, int]]:
    """(path, "chars" | "items", the most allowed) of each limit of a body. A time's
    length is its format's and a reference's the slug's (held on an `id`): neither is
    here."""
    (top,), components = msgspec.json.schema_components([cls])
    yield from _limits(_schema(top, components), components, "")


def _limits(obj: dict[str, Any], components: dict[str, Any], prefix: str) -> Iterator[Any]:
    for name, node in obj.get("properties", {}).items():
        path, schema = f"{prefix}{name}", _schema(node, components)
        if schema.get("type") == "object":
            yield from _limits(schema, components, f"{path}.")
        elif schema.get("type") == "array":
            yield path, "items", schema["maxItems"]
            item = _schema(schema["items"], components)
            if item.get("type") == "object":
                yield from _limits(item, components, f"{path}[0].")
            elif "maxLength" in item and "pattern" not in item:
                yield f"{path}[0]", "chars", item["maxLength"]
        elif "maxLength" in schema and ("pattern" not in schema or name == "id"):
            yield path, "chars", schema["maxLength"]


# A correction's changes are checked as `Changes`: those a statement (its target) has.
CHANGED = [
    ("correction", f"changes.{path}", size, n)
    for path, size, n in limits(schemas.Changes)
    if path.split("[")[0].split(".")[0] in records.SCHEMAS["statement"]
]
CASE_LIST = [(kind, *limit) for kind, cls in BODIES.items() for limit in limits(cls)] + CHANGED


def test_the_limits_found_are_the_domain_s() -> None:
    # Every limit of the domain's content rules shows in some body, and no other number.
    found = {n for _, _, _, n in CASE_LIST}
    domain = {
        rules.SLUG_MAX,
        rules.NAME_MAX,
        rules.KEY_MAX,
        rules.TITLE_MAX,
        rules.TEXT_MAX,
        rules.REASON_MAX,
        rules.DESCRIPTION_MAX,
        rules.SOURCE_TITLE_MAX,
        rules.EXCERPT_MAX,
        rules.URL_MAX,
        rules.LIST_MAX,
        rules.SOURCES_MAX,
        rules.ROLES_MAX,
    }
    assert found == domain
    assert ("statement", "sources[0].excerpt", "chars", rules.EXCERPT_MAX) in CASE_LIST
    assert ("actor", "roles", "items", rules.ROLES_MAX) in CASE_LIST
    assert ("correction", "changes.quote", "chars", rules.TEXT_MAX) in CASE_LIST


@pytest.fixture(scope="module")
def vocabulary(api: Api) -> dict[str, list[str]]:
    """As many actors and topics as a list may name, stored."""
    tag = uuid.uuid4().hex[:8]
    made = {what: [f"lim-{tag}-{what}-{i}" for i in range(SIZE)] for what in ("actor", "topic")}
    lines = [{"type": "actor", "id": s, "name": s, "kind": "person"} for s in made["actor"]]
    lines += [{"type": "topic", "id": s, "label": s} for s in made["topic"]]
    sent = api.post("/admin/backfill", content=_ndjson(*lines), content_type=NDJSON, who="admin")
    assert sent.status_code == 200 and sent.json()["accepted"] == len(lines), sent.text
    return made


def _value(path: str, kind: str, n: int, vocabulary: dict[str, list[str]]) -> Any:
    """A value of `n` characters or items for the field at `path`, valid but for its size."""
    name = path.split(".")[-1].split("[")[0]
    if kind == "items":
        if name in REFERENCES:
            return (
                vocabulary[REFERENCES[name]][:n]
                if n <= SIZE
                else [*vocabulary[REFERENCES[name]], "one-more"]
            )
        if name == "sources":
            return [{"publisher": "P", "url": f"urn:x:{uuid.uuid4().hex}-{i}"} for i in range(n)]
        if name == "roles":
            return [{"title": f"role {i}"} for i in range(n)]
        return [f"{name} {i}" for i in range(n)]  # aliases
    if name == "id":
        return f"lim-{uuid.uuid4().hex[:8]}".ljust(n, "x")
    if name == "url":
        return f"https://example.org/{uuid.uuid4().hex}".ljust(n, "x")
    return unique(name).ljust(n, "x")


def _put(body: Body, path: str, value: Any) -> None:
    """Set `sources[0].url`, `roles[0].title`, `aliases[0]` or `source.title` in a body."""
    *parents, last = path.split(".")
    for part in parents:
        key, _, index = part.partition("[")
        if index:
            body[key] = body.get(key) or [{"title": "t"} if key == "roles" else dict(BBC)]
            body = body[key][0]
        else:
            body = body[key]
    key, _, index = last.partition("[")
    if index:
        body[key] = [value]
    else:
        body[key] = value


def _ndjson(*lines: Body) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def _target(api: Api) -> str:
    """A statement to correct, retract or source; its key."""
    key = unique("limit-target")
    body = {**CASES["statement"][0](), "key": key}
    assert api.post("/statements", body).status_code == 201
    return key


@pytest.mark.parametrize("over", [False, True], ids=["at", "over"])
@pytest.mark.parametrize(("kind", "path", "size", "n"), CASE_LIST)
def test_the_api_and_the_backfill_hold_each_limit_alike(
    api: Api, vocabulary: dict[str, list[str]], kind: str, path: str, size: str, n: int, over: bool
) -> None:
    make, _, route = CASES[kind]
    body = copy.deepcopy(make())
    _put(body, path, _value(path, size, n + over, vocabulary))
    key = _target(api) if kind in CHANGES else ""
    target = {"target": {"kind": "statement", "key": key}} if kind in CHANGES else {}
    # The backfill (a dry run: the API's write below is then new)...
    sent = api.post(
        "/admin/backfill?dry_run=true",
        content=_ndjson({"type": kind, **target, **body}),
        content_type=NDJSON,
        who="admin",
    )
    assert sent.status_code == 200, sent.text
    rejected = sent.json()["rejected"]
    answer = api.post(route(str(record_id("statement", key))), body)
    if not over:
        # ...and the API take a value at the limit...
        assert rejected == []
        assert answer.status_code in (200, 201), answer.text
    else:
        # ...and refuse one over it: the backfill naming the line and the field, the API
        # the field.
        assert [(r["line"], r["error"].split(":")[0]) for r in rejected] == [(1, path)]
        assert_problem(answer, 422, path)
