"""The backfill line format (docs/backfill.md): one line turned into its use case.

Lines are parsed JSON objects; `type` says which use case, `target` names an existing
record by `{kind, key}` or `{kind, id}`. The use cases run against a unit of work (or the
timeline itself); the writer and batch are named by the caller (`writing_as`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from domain import rules
from domain.errors import InvalidInput
from domain.ids import actor_id, record_id, topic_id
from domain.records import KINDS
from domain.usecases import UseCases, Written, reapplied

# Lines are applied in this order of their types, so that a record may come before
# the actors and topics it names in the same file.
TYPE_ORDER = {
    "actor": 0,
    "topic": 1,
    "statement": 2,
    "announcement": 2,
    "occurrence": 2,
    "correction": 3,
    "retraction": 3,
    "source": 3,
}


def line_type(line: object) -> str:
    if not isinstance(line, dict):
        raise InvalidInput("each line must be a JSON object", field="line")
    kind = line.get("type")
    if not isinstance(kind, str) or kind not in TYPE_ORDER:
        raise InvalidInput(f"must be one of {', '.join(TYPE_ORDER)}", field="type")
    return kind


def line_key(line: Mapping[str, Any]) -> str | None:
    """What a report calls the line by: its key, id or target."""
    for name in ("key", "id"):
        if isinstance(line.get(name), str):
            return str(line[name])[:200]
    target = line.get("target")
    if isinstance(target, dict):
        found = target.get("key") or target.get("id")
        return str(found)[:200] if found is not None else None
    return None


def apply_line(app: UseCases, line: object) -> Written:
    """A line's use case; its `draft` (what `timeline extract` found it by) is not stored."""
    kind = line_type(line)
    assert isinstance(line, dict)
    body = {k: v for k, v in line.items() if k not in ("type", "draft")}
    if kind == "actor":
        return app.register_actor(body)
    if kind == "topic":
        return app.define_topic(body)
    if kind in KINDS:
        return app.record(kind, body)
    return _apply_change(app, kind, body)


_CHANGE_FIELDS = {
    "correction": ("target", "changes", "reason"),
    "retraction": ("target", "reason"),
    "source": ("target", "source"),
}


def _apply_change(app: UseCases, kind: str, body: dict[str, Any]) -> Written:
    rules.known_keys(body, "", dict.fromkeys(_CHANGE_FIELDS[kind]))
    for name in _CHANGE_FIELDS[kind]:
        if name not in body:
            raise InvalidInput("is required", field=name)
    record_kind, id = resolve_target(body["target"])

    def change() -> Written:
        if kind == "correction":
            return app.correct(record_kind, id, body["changes"], body["reason"])
        if kind == "retraction":
            return app.retract(record_kind, id, body["reason"])
        return app.add_source(record_kind, id, body["source"])

    # A change line expects no version: when another writer (an API client, say) saves
    # its record between our read and our save, it is read and applied again, as the API
    # does with a change sent without If-Match.
    return reapplied(change)


def targets(lines: Iterable[object], *, created: bool = False) -> list[UUID]:
    """The records that the corrections, retractions and sources among the lines change
    (lines with a bad target are left for their use case to refuse); with `created`, also
    what the other lines create where they name its id or key, so that a re-run finds what
    is stored in one read, not a query a line."""
    found = []
    for line in lines:
        if not isinstance(line, dict):
            continue
        kind, name = line.get("type"), line.get("key" if line.get("type") in KINDS else "id")
        try:
            if kind in _CHANGE_FIELDS:
                found.append(resolve_target(line.get("target"))[1])
            elif not created or not isinstance(name, str):
                continue
            elif kind in KINDS:
                found.append(record_id(str(kind), name))
            elif kind in ("actor", "topic"):
                found.append(actor_id(name) if kind == "actor" else topic_id(name))
        except InvalidInput:
            continue
    return found


def resolve_target(target: object) -> tuple[str, UUID]:
    """`{kind, key}` or `{kind, id}` to the record's kind and id."""
    raw = rules.known_keys(target, "target", dict.fromkeys(("kind", "key", "id")))
    kind = rules.choice(raw.get("kind"), "target.kind", frozenset(KINDS))
    if ("key" in raw) == ("id" in raw):
        raise InvalidInput("give either key or id", field="target")
    if "key" in raw:
        return kind, record_id(kind, rules.key(raw["key"], "target.key"))
    try:
        return kind, UUID(rules.text(raw["id"], "target.id", max_length=64))
    except ValueError:
        raise InvalidInput("must be a UUID", field="target.id") from None
