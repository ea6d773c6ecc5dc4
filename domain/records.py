"""Records — statements, announcements, occurrences — and the rules of their content.

A record's content is a plain dict of JSON values, checked field by field against its
kind's schema; corrections, tags and sources are events that change it, never edits.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

from eventsourcing.domain import Aggregate, event

from domain import rules
from domain.errors import InvalidInput, RuleViolation
from domain.when import parse_when
from domain.writers import Authored

Rule = Callable[[object, str], Any]
RecordKind = Literal["statement", "announcement", "occurrence"]


def _long(value: object, field: str) -> str:
    return rules.text(value, field, max_length=rules.TEXT_MAX)


def _quote(value: object, field: str) -> str:
    """A quote is kept byte for byte as given: never normalised."""
    return rules.verbatim(value, field, max_length=rules.TEXT_MAX)


def _title(value: object, field: str) -> str:
    """An occurrence's title or a place: a name (see `rules.text`)."""
    return rules.name(value, field, max_length=rules.TITLE_MAX)


def _slugs(min_items: int = 0) -> Rule:
    return lambda v, f: rules.items(v, f, rules.slug, min_items=min_items)


def _sources(value: object, field: str) -> list[dict[str, str]]:
    return rules.items(value, field, rules.source, min_items=1, max_items=rules.SOURCES_MAX)


@dataclass(frozen=True, slots=True)
class Field:
    rule: Rule
    required: bool = False
    is_list: bool = False
    actors: bool = False  # holds actor slugs
    topics: bool = False  # holds topic slugs
    unordered: bool = False  # a list whose order says nothing: compared as a set


# The lists of slugs are sets: a record tagged [a, b] is the one tagged [b, a], and so is
# one that mentions them, or whose participants they are. So is `by`: a joint announcement
# has no first author, and the derived key already sorts it (two orders, one key).
# `sources` keeps its order: the first is the one the derived key and readers cite.
_COMMON = {
    "occurred_at": Field(rules.when, required=True),
    "location": Field(_title),
    "topics": Field(_slugs(), is_list=True, topics=True, unordered=True),
    "sources": Field(_sources, required=True, is_list=True),
}
SCHEMAS: dict[str, dict[str, Field]] = {
    "statement": {
        "speaker": Field(rules.slug, required=True, actors=True),
        "quote": Field(_quote),
        "summary": Field(_long),
        "channel": Field(lambda v, f: rules.choice(v, f, rules.CHANNELS), required=True),
        "mentions": Field(_slugs(), is_list=True, actors=True, unordered=True),
        **_COMMON,
    },
    "announcement": {
        "by": Field(_slugs(min_items=1), required=True, is_list=True, actors=True, unordered=True),
        "quote": Field(_quote),
        "summary": Field(_long, required=True),
        "channel": Field(lambda v, f: rules.choice(v, f, rules.CHANNELS), required=True),
        "mentions": Field(_slugs(), is_list=True, actors=True, unordered=True),
        **_COMMON,
    },
    "occurrence": {
        "title": Field(_title, required=True),
        "summary": Field(_long),
        "kind": Field(lambda v, f: rules.choice(v, f, rules.OCCURRENCE_KINDS), required=True),
        "ended_at": Field(rules.when),
        "participants": Field(_slugs(), is_list=True, actors=True, unordered=True),
        **_COMMON,
    },
}
KINDS: tuple[str, ...] = get_args(RecordKind)
UNORDERED = frozenset(
    name for schema in SCHEMAS.values() for name, f in schema.items() if f.unordered
)


def normalise(kind: str, content: object, field: str = "") -> dict[str, Any]:
    """Check a whole record content and return it clean: lists present, no nulls."""
    schema = SCHEMAS[kind]
    raw = rules.known_keys(content, field, schema)
    prefix = f"{field}." if field else ""
    clean: dict[str, Any] = {}
    for name, spec in schema.items():
        value = raw.get(name)
        if value is None:
            if spec.required:
                raise InvalidInput("is required", field=f"{prefix}{name}")
            if spec.is_list:
                clean[name] = []
            continue
        clean[name] = spec.rule(value, f"{prefix}{name}")
    _check_whole(kind, clean, prefix)
    return clean


def _check_whole(kind: str, content: dict[str, Any], prefix: str) -> None:
    if kind == "statement" and "quote" not in content and "summary" not in content:
        raise InvalidInput("a statement needs a quote or a summary", field=f"{prefix}quote")
    if "ended_at" in content:
        start = parse_when(content["occurred_at"]).start
        if parse_when(content["ended_at"]).end <= start:
            raise InvalidInput("must not be before occurred_at", field=f"{prefix}ended_at")


def apply_changes(kind: str, content: dict[str, Any], changes: object) -> dict[str, Any]:
    """The content after a correction; `null` removes an optional field."""
    raw = rules.known_keys(changes, "changes", SCHEMAS[kind])
    if not raw:
        raise InvalidInput("must name at least one field to change", field="changes")
    merged = {**content, **raw}
    new = normalise(kind, {k: v for k, v in merged.items() if v is not None}, "changes")
    if all(new.get(k) == content.get(k) for k in raw):
        raise InvalidInput("changes nothing: every value is already current", field="changes")
    return new


def merge(content: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Content after a correction's changes; a None value removes the field."""
    merged = {**content, **changes}
    return {k: v for k, v in merged.items() if v is not None}


def correction_print(changes: object, reason: object) -> str:
    """What makes a correction the same correction again."""
    return fingerprint({"changes": changes, "reason": reason})


def references(
    kind: str, content: dict[str, Any], fields: Container[str]
) -> Iterator[tuple[str, int | None, str, str]]:
    """Each (field, index in its list or None, 'actor' | 'topic', slug) that the content
    refers to in the given fields."""
    for name, spec in SCHEMAS[kind].items():
        if not (spec.actors or spec.topics) or name not in content or name not in fields:
            continue
        what = "actor" if spec.actors else "topic"
        if spec.is_list:
            for i, slug in enumerate(content[name]):
                yield name, i, what, slug
        else:
            yield name, None, what, content[name]


# Fingerprints are stored in events: this text must never change. (One encoder for all
# calls: `json.dumps` with options builds a new one each time, a fifth of its cost.)
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def fingerprint(content: dict[str, Any]) -> str:
    """A digest of content, independent of key order and of the Unicode normal form of
    its text (a quote is stored as given, but the same words in another normal form are
    the same content)."""
    canonical = _CANONICAL.encode(content)
    return hashlib.sha256(unicodedata.normalize("NFC", canonical).encode()).hexdigest()


def content_print(content: dict[str, Any]) -> str:
    """What makes a record's content the same content again: its `fingerprint`, with the
    lists whose order says nothing (UNORDERED) sorted first."""
    return fingerprint(
        {k: sorted(v) if k in UNORDERED and isinstance(v, list) else v for k, v in content.items()}
    )


def derive_key(kind: str, content: dict[str, Any]) -> str:
    """A key from who, the occurred day, what, and the first source."""
    who = content.get("speaker") or sorted(content.get("by") or content.get("participants", []))
    what = content.get("quote") or content.get("summary") or content.get("title")
    day = parse_when(content["occurred_at"]).text[:10]
    first_url = content["sources"][0]["url"]
    basis = json.dumps([kind, who, day, what, first_url], ensure_ascii=False)
    return "auto-" + hashlib.sha256(unicodedata.normalize("NFC", basis).encode()).hexdigest()[:32]


class Record(Aggregate):
    """One entry of the timeline; `KIND` says which schema its content follows."""

    KIND: ClassVar[str]

    class Event(Authored):
        """Each event says who wrote it (see domain.writers)."""

    class Recorded(Aggregate.Created):
        """v2 added `fingerprint`; v3 made it a `content_print`, which reads the unordered
        lists as sets. Events of v1 and v2 get it computed from their content (which is
        what it was computed from), so a repeat of their content, in any order of those
        lists, is found a duplicate."""

        class_version = 3
        key: str
        content: dict[str, Any]
        fingerprint: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["fingerprint"] = fingerprint(state["content"])

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["fingerprint"] = content_print(state["content"])

    @event(Recorded)
    def __init__(
        self,
        key: str,
        content: dict[str, Any],
        fingerprint: str,
    ) -> None:
        self.key = key
        self.content = content
        self.fingerprint = fingerprint
        self.retracted: str | None = None  # the reason, once retracted
        self.corrections: list[str] = []  # fingerprints of the corrections applied

    class Corrected(Aggregate.Event):
        """`changes` maps each changed field to its new value (None: removed)."""

        changes: dict[str, Any]
        reason: str

    class Retracted(Aggregate.Event):
        reason: str

    class SourceAdded(Aggregate.Event):
        source: dict[str, Any]

    class TopicsTagged(Aggregate.Event):
        topics: list[str]

    class TopicsUntagged(Aggregate.Event):
        topics: list[str]

    def check_not_retracted(self) -> None:
        if self.retracted is not None:
            raise RuleViolation(f"this {self.KIND} was retracted and cannot change", field="id")

    @event(Corrected)
    def correct(self, changes: dict[str, Any], reason: str) -> None:
        self.check_not_retracted()
        self.content = merge(self.content, changes)
        self.corrections.append(correction_print(changes, reason))

    @event(Retracted)
    def retract(self, reason: str) -> None:
        self.check_not_retracted()
        self.retracted = reason

    @event(SourceAdded)
    def add_source(self, source: dict[str, Any]) -> None:
        self.check_not_retracted()
        self.content = {**self.content, "sources": [*self.content["sources"], source]}

    @event(TopicsTagged)
    def tag(self, topics: list[str]) -> None:
        self.check_not_retracted()
        self.content = {**self.content, "topics": [*self.content.get("topics", []), *topics]}

    @event(TopicsUntagged)
    def untag(self, topics: list[str]) -> None:
        self.check_not_retracted()
        kept = [t for t in self.content.get("topics", []) if t not in topics]
        self.content = {**self.content, "topics": kept}

    def has_source(self, url: str) -> bool:
        return any(s["url"] == url for s in self.content["sources"])


class Statement(Record):
    KIND = "statement"
    __init__ = Record.__init__  # aggregates are dataclasses: keep the decorated one


class Announcement(Record):
    KIND = "announcement"
    __init__ = Record.__init__  # aggregates are dataclasses: keep the decorated one


class Occurrence(Record):
    KIND = "occurrence"
    __init__ = Record.__init__  # aggregates are dataclasses: keep the decorated one


RECORD_CLASSES: dict[str, type[Record]] = {
    cls.KIND: cls for cls in (Statement, Announcement, Occurrence)
}
