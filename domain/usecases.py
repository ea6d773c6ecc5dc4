"""The use cases: each loads, checks, calls one aggregate verb and saves.

They run against where aggregates are read and saved: the store itself (`Timeline`, each
use case saved on its own) or a unit of work (`Unit`, saved together when it commits).
Every write answers a `Written` with the id, version, position (notification id) and
recorded time; a repeated write answers the stored one with `duplicate=True`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate, DomainEventProtocol

from domain import records, rules
from domain.actors import Actor, Topic, TopicTree, clean_actor, clean_role, clean_topic
from domain.errors import (
    ConcurrentWrite,
    InvalidInput,
    KeyConflict,
    NotFound,
    StaleVersion,
    TopicCycle,
    UnknownReference,
)
from domain.ids import TOPIC_TREE_ID, actor_id, record_id, topic_id
from domain.records import RECORD_CLASSES, Record

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")
# An unconditional change that loses a race to another writer reloads and tries again, at
# most this many times (each loss means another writer's change was stored).
RETRIES = 32


def reapplied(use: Callable[[], T], lost: Callable[[], None] = lambda: None) -> T:
    """Run a change, and again (from a fresh read) each time it loses a race to another
    writer, RETRIES times at most; `lost` hears of each loss first, and may raise instead
    (a conditional change, whose caller asked for the version it lost)."""
    for _ in range(RETRIES):
        try:
            return use()
        except ConcurrentWrite:
            lost()
    raise ConcurrentWrite("too many writers changed this at once; try again")


@dataclass(frozen=True, slots=True)
class Written:
    """The answer to a write."""

    id: UUID
    ref: str  # the slug of an actor or topic, the UUID text of a record
    version: int
    position: int
    recorded_at: datetime
    duplicate: bool = False


def recorded_at(event: DomainEventProtocol[UUID]) -> datetime:
    """When the service learned it: the stored event's time."""
    moment = getattr(event, "timestamp", None)
    assert isinstance(moment, datetime)
    return moment


class UseCases(ABC):
    """The verbs of the timeline. Where they read and save aggregates is a subclass's:
    `_find`, `_exists`, `_save` and `_position_now`."""

    @abstractmethod
    def _find(self, cls: type[A], id: UUID, *, creating: bool = False) -> A | None:
        """The aggregate, or None when it is not stored. `creating`: looked for only to
        create it if absent (an optimistic store may answer None without looking)."""

    @abstractmethod
    def _exists(self, id: UUID) -> bool:
        """Whether the actor or topic of that id exists."""

    @abstractmethod
    def _save(self, aggregate: Actor | Topic | Record, ref: str, *more: Aggregate) -> Written:
        """Save an aggregate (and `more` that its change keeps consistent, together)."""

    @abstractmethod
    def _position_now(self) -> int:
        """For an answer that stored nothing: a position that includes what it found."""

    # Actors ---------------------------------------------------------------------------

    def register_actor(self, data: Mapping[str, object]) -> Written:
        clean = clean_actor(data)
        return self._create_once(
            Actor, Actor.Registered, actor_id(clean["slug"]), clean["slug"], clean, field="id"
        )

    def add_alias(self, slug: str, alias: object, expected_version: int | None = None) -> Written:
        actor = self.get_actor(slug, expected_version)
        name = rules.name(alias, "alias")
        if name in actor.aliases or name == actor.name:
            return self._unchanged(actor, slug)
        actor.add_alias(alias=name)
        return self._save(actor, slug)

    def assume_role(self, slug: str, role: object, expected_version: int | None = None) -> Written:
        actor = self.get_actor(slug, expected_version)
        clean = clean_role(role)
        if clean in actor.roles:
            return self._unchanged(actor, slug)
        actor.assume_role(role=clean)
        return self._save(actor, slug)

    def end_role(
        self, slug: str, title: object, until: object, expected_version: int | None = None
    ) -> Written:
        actor = self.get_actor(slug, expected_version)
        open_title = rules.name(title, "title")
        actor.open_role(open_title)
        actor.end_role(title=open_title, until=rules.when(until, "until"))
        return self._save(actor, slug)

    def get_actor(self, slug: str, expected_version: int | None = None) -> Actor:
        return self._load(Actor, actor_id(rules.slug(slug, "id")), expected_version, "actor")

    # Topics ---------------------------------------------------------------------------

    def define_topic(self, data: Mapping[str, object]) -> Written:
        clean = clean_topic(data)
        if clean["parent"] is not None:
            self._check_exists(topic_id(clean["parent"]), "parent", "topic", clean["parent"])
        return self._create_once(
            Topic, Topic.Defined, topic_id(clean["slug"]), clean["slug"], clean, field="id"
        )

    def relabel_topic(
        self, slug: str, label: object, expected_version: int | None = None
    ) -> Written:
        topic = self.get_topic(slug, expected_version)
        topic.relabel(label=rules.name(label, "label"))
        return self._save(topic, slug)

    def move_topic(self, slug: str, parent: object, expected_version: int | None = None) -> Written:
        """Move a topic under another (or to the top). Moves are serialised by the tree:
        it is read before any parent is, and saved with the move."""
        topic = self.get_topic(slug, expected_version)
        new_parent = None if parent is None else rules.slug(parent, "parent")
        tree = self._find(TopicTree, TOPIC_TREE_ID) or TopicTree()
        if new_parent is not None:
            self._check_exists(topic_id(new_parent), "parent", "topic", new_parent)
            self.check_no_cycle(topic.slug, new_parent, tree)
        topic.move(parent=new_parent)
        tree.record_move(topic=topic.slug, parent=new_parent)
        return self._save(topic, slug, tree)

    def check_no_cycle(self, slug: str, parent: str, tree: TopicTree) -> None:
        """A topic may not become its own ancestor. (The walk ends at a topic met twice:
        a cycle stored before moves were serialised is not looped on.)"""
        seen: set[str] = set()
        at: str | None = parent
        while at is not None and at not in seen:
            if at == slug:
                raise TopicCycle(
                    f"{parent!r} is {slug!r} or below it: a topic cannot move below itself",
                    field="parent",
                )
            seen.add(at)
            at = tree.moved[at] if at in tree.moved else self.get_topic(at).parent

    def get_topic(self, slug: str, expected_version: int | None = None) -> Topic:
        return self._load(Topic, topic_id(rules.slug(slug, "id")), expected_version, "topic")

    # Records --------------------------------------------------------------------------

    def record(self, kind: str, data: Mapping[str, object]) -> Written:
        """Record a statement, announcement or occurrence, once per key."""
        body = dict(data)
        given_key = body.pop("key", None)
        content = records.normalise(kind, body)
        self._check_references(kind, content, content)
        key = (
            records.derive_key(kind, content) if given_key is None else rules.key(given_key, "key")
        )
        cls = RECORD_CLASSES[kind]
        id = record_id(kind, key)
        return self._create_once(
            cls,
            cls.Recorded,
            id,
            str(id),
            {"content": content},
            field="key",
            print_=records.content_print(content),
            key=key,
        )

    def correct(
        self,
        kind: str,
        id: UUID,
        changes: object,
        reason: object,
        expected_version: int | None = None,
    ) -> Written:
        rec = self.get_record(kind, id, expected_version)
        if records.correction_print(changes, reason) in rec.corrections:
            return self._unchanged(rec, str(id))  # the same correction again
        rec.check_not_retracted()
        new = records.apply_changes(kind, rec.content, changes)
        assert isinstance(changes, dict)
        delta = {name: new.get(name) for name in changes}
        self._check_references(kind, new, delta)
        rec.correct(changes=delta, reason=rules.text(reason, "reason", max_length=rules.REASON_MAX))
        return self._save(rec, str(id))

    def retract(
        self, kind: str, id: UUID, reason: object, expected_version: int | None = None
    ) -> Written:
        rec = self.get_record(kind, id, expected_version)
        if rec.retracted is not None:
            return self._unchanged(rec, str(id))  # retracting again changes nothing
        rec.retract(reason=rules.text(reason, "reason", max_length=rules.REASON_MAX))
        return self._save(rec, str(id))

    def add_source(
        self, kind: str, id: UUID, source: object, expected_version: int | None = None
    ) -> Written:
        rec = self.get_record(kind, id, expected_version)
        clean = rules.source(source, "source")
        if rec.has_source(clean["url"]):
            return self._unchanged(rec, str(id))
        rec.check_not_retracted()
        rec.add_source(source=clean)
        return self._save(rec, str(id))

    def tag(
        self, kind: str, id: UUID, topics: object, expected_version: int | None = None
    ) -> Written:
        rec = self.get_record(kind, id, expected_version)
        slugs = rules.items(topics, "topics", rules.slug, min_items=1)
        for i, slug in enumerate(slugs):
            self._check_exists(topic_id(slug), "topics", "topic", slug, i)
        new = [s for s in slugs if s not in rec.content.get("topics", [])]
        if not new:
            return self._unchanged(rec, str(id))
        rec.tag(topics=new)
        return self._save(rec, str(id))

    def untag(
        self, kind: str, id: UUID, topics: object, expected_version: int | None = None
    ) -> Written:
        rec = self.get_record(kind, id, expected_version)
        slugs = rules.items(topics, "topics", rules.slug, min_items=1)
        gone = [s for s in slugs if s in rec.content.get("topics", [])]
        if not gone:
            return self._unchanged(rec, str(id))
        rec.untag(topics=gone)
        return self._save(rec, str(id))

    def get_record(self, kind: str, id: UUID, expected_version: int | None = None) -> Record:
        if kind not in RECORD_CLASSES:
            raise InvalidInput(f"must be one of {', '.join(RECORD_CLASSES)}", field="kind")
        return self._load(RECORD_CLASSES[kind], id, expected_version, kind)

    def _load(self, cls: type[A], id: UUID, expected_version: int | None, what: str) -> A:
        found = self._find(cls, id)
        if found is None:
            raise NotFound(f"no {what} {id}", field="id")
        if expected_version is not None and expected_version != found.version:
            raise StaleVersion(
                f"expected version {expected_version}, the {what} is at {found.version}",
                current=found.version,
            )
        return found

    def _check_exists(
        self, id: UUID, field: str, what: str, slug: str, index: int | None = None
    ) -> None:
        """That the actor or topic exists; else an error naming the field, and the item's
        index in it (made only then: most references are known already)."""
        if not self._exists(id):
            hint = "register it first" if what == "actor" else "define it first"
            named = field if index is None else f"{field}[{index}]"
            raise UnknownReference(f"no {what} {slug!r}: {hint}", field=named)

    def _check_references(
        self, kind: str, content: dict[str, Any], fields: Mapping[str, object]
    ) -> None:
        for name, index, what, slug in records.references(kind, content, fields):
            id = actor_id(slug) if what == "actor" else topic_id(slug)
            self._check_exists(id, name, what, slug, index)

    def _duplicate(
        self, existing: Actor | Topic | Record, ref: str, print_: str, field: str
    ) -> Written:
        if existing.fingerprint != print_:
            raise KeyConflict(f"{ref} was recorded before with other content", field=field)
        return Written(
            existing.id,
            ref,
            existing.version,
            self._position_now(),
            existing.created_on,
            duplicate=True,
        )

    def _unchanged(self, aggregate: Actor | Topic | Record, ref: str) -> Written:
        """Asked for what is already so: nothing is stored."""
        return Written(
            aggregate.id,
            ref,
            aggregate.version,
            self._position_now(),
            aggregate.modified_on,
            duplicate=True,
        )

    def _create_once(
        self,
        cls: type[Actor | Topic | Record],
        created: type[Any],
        id: UUID,
        ref: str,
        fields: dict[str, Any],
        *,
        field: str,
        print_: str | None = None,
        **more: Any,
    ) -> Written:
        """Create an aggregate under a stable id, once: the same content again (the same
        `print_`, by default the fields' fingerprint) is a duplicate, other content a
        conflict."""
        print_ = print_ or records.fingerprint(fields)
        existing = self._find(cls, id, creating=True)
        if existing is not None:
            return self._duplicate(existing, ref, print_, field=field)
        aggregate = cls._create(created, id=id, **fields, **more, fingerprint=print_)
        return self._save_new(aggregate, ref, print_, field=field)

    def _save_new(
        self, aggregate: Actor | Topic | Record, ref: str, print_: str, field: str
    ) -> Written:
        try:
            return self._save(aggregate, ref)
        except ConcurrentWrite:
            # Another writer created it between our look and our save.
            winner = self._find(type(aggregate), aggregate.id)
            assert winner is not None
            return self._duplicate(winner, ref, print_, field)


def checked(cls: type[A], id: UUID, found: Aggregate) -> A:
    """The aggregate found under an id, if it is of the class asked for."""
    if not isinstance(found, cls):
        raise NotFound(f"{id} is a {type(found).__name__.lower()}, not a {cls.__name__}")
    return found
