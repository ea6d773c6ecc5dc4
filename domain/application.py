"""The use cases: each loads, checks, calls one aggregate verb and saves.

Every write answers a `Written` with the id, version, position (notification id) and
recorded time; a repeated write answers the stored one with `duplicate=True`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
    project_aggregate,
)
from eventsourcing.domain import Aggregate, DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import RecordConflictError, Recording

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
from domain.group import GroupCommit
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
class Author:
    """Who writes: the API key's name, and the import batch when there is one."""

    writer: str
    batch_id: str | None = None


@dataclass(slots=True)
class Unit:
    """Aggregates created or changed by the use cases of one unit of work."""

    aggregates: dict[UUID, Aggregate] = field(default_factory=dict)
    recordings: list[Recording[UUID]] = field(default_factory=list)
    optimistic: bool = False
    loaded: dict[UUID, Aggregate] = field(default_factory=dict)  # read ahead, unchanged
    absent: set[UUID] = field(default_factory=set)  # read ahead, and not stored


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


class Timeline(Application[UUID]):
    """The write model of the geopolitical timeline."""

    name = "Timeline"
    # The topic tree's aggregate grows with every move and is read by every move, as is
    # the topic moved: both are read from a snapshot taken every 50 events (when saved),
    # and the events since.
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {
        TopicTree: 50,
        Topic: 50,
    }

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        # Actors and topics are never deleted: once seen, they exist.
        self._known: set[UUID] = set()
        self._local = threading.local()  # the unit of work of this thread, if any
        self.listeners: list[Callable[[int], None]] = []  # told each new head position
        self.group: GroupCommit | None = None  # see enable_group_commit
        self.optimistic_creates = False

    def enable_group_commit(self, max_events: int = 500) -> None:
        """Concurrent writes (of other threads) share transactions from now on; each is
        still answered only after its own events are committed.

        Creations then also stop looking for an existing aggregate first: a repeat
        fails its save on the stored one's id, and is answered from it (a duplicate or a
        conflict), as a racing writer's is. New records, the common case, cost no read."""
        if self.group is None:
            self.group = GroupCommit(self.save_atomically, max_events=max_events)
        self.optimistic_creates = True

    def close(self) -> None:
        if self.group is not None:
            self.group.close()
        super().close()

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's `save`, for the aggregates and events of this service only: its
        `collect_events` tests each object against runtime-checkable Protocols, which
        took a tenth of a backfill's Python time (decision 011)."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, Aggregate):
                processing.events.extend(obj.collect_events())
                processing.aggregates[obj.id] = obj
            elif obj is not None:
                processing.events.append(obj)
        processing.saved_kwargs.update(kwargs)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        if recordings:
            for listener in self.listeners:
                listener(recordings[-1].notification.id)
        return recordings

    # Actors ---------------------------------------------------------------------------

    def register_actor(self, data: Mapping[str, object], by: Author) -> Written:
        clean = clean_actor(data)
        return self._create_once(
            Actor, Actor.Registered, actor_id(clean["slug"]), clean["slug"], clean, by, field="id"
        )

    def add_alias(
        self, slug: str, alias: object, by: Author, expected_version: int | None = None
    ) -> Written:
        actor = self.get_actor(slug, expected_version)
        name = rules.name(alias, "alias")
        if name in actor.aliases or name == actor.name:
            return self._unchanged(actor, slug)
        actor.add_alias(alias=name, writer=by.writer, batch_id=by.batch_id)
        return self._save(actor, slug)

    def assume_role(
        self, slug: str, role: object, by: Author, expected_version: int | None = None
    ) -> Written:
        actor = self.get_actor(slug, expected_version)
        clean = clean_role(role)
        if clean in actor.roles:
            return self._unchanged(actor, slug)
        actor.assume_role(role=clean, writer=by.writer, batch_id=by.batch_id)
        return self._save(actor, slug)

    def end_role(
        self,
        slug: str,
        title: object,
        until: object,
        by: Author,
        expected_version: int | None = None,
    ) -> Written:
        actor = self.get_actor(slug, expected_version)
        open_title = rules.name(title, "title")
        actor.open_role(open_title)
        actor.end_role(
            title=open_title,
            until=rules.when(until, "until"),
            writer=by.writer,
            batch_id=by.batch_id,
        )
        return self._save(actor, slug)

    def get_actor(self, slug: str, expected_version: int | None = None) -> Actor:
        return self._load(Actor, actor_id(rules.slug(slug, "id")), expected_version, "actor")

    # Topics ---------------------------------------------------------------------------

    def define_topic(self, data: Mapping[str, object], by: Author) -> Written:
        clean = clean_topic(data)
        if clean["parent"] is not None:
            self._check_exists(topic_id(clean["parent"]), "parent", "topic", clean["parent"])
        return self._create_once(
            Topic, Topic.Defined, topic_id(clean["slug"]), clean["slug"], clean, by, field="id"
        )

    def relabel_topic(
        self, slug: str, label: object, by: Author, expected_version: int | None = None
    ) -> Written:
        topic = self.get_topic(slug, expected_version)
        topic.relabel(label=rules.name(label, "label"), writer=by.writer, batch_id=by.batch_id)
        return self._save(topic, slug)

    def move_topic(
        self, slug: str, parent: object, by: Author, expected_version: int | None = None
    ) -> Written:
        """Move a topic under another (or to the top). Moves are serialised by the tree:
        it is read before any parent is, and saved with the move."""
        topic = self.get_topic(slug, expected_version)
        new_parent = None if parent is None else rules.slug(parent, "parent")
        tree = self._find(TopicTree, TOPIC_TREE_ID) or TopicTree()
        if new_parent is not None:
            self._check_exists(topic_id(new_parent), "parent", "topic", new_parent)
            self.check_no_cycle(topic.slug, new_parent, tree)
        topic.move(parent=new_parent, writer=by.writer, batch_id=by.batch_id)
        tree.record_move(
            topic=topic.slug, parent=new_parent, writer=by.writer, batch_id=by.batch_id
        )
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

    def record(self, kind: str, data: Mapping[str, object], by: Author) -> Written:
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
            by,
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
        by: Author,
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
        rec.correct(
            changes=delta,
            reason=rules.text(reason, "reason", max_length=rules.REASON_MAX),
            writer=by.writer,
            batch_id=by.batch_id,
        )
        return self._save(rec, str(id))

    def retract(
        self,
        kind: str,
        id: UUID,
        reason: object,
        by: Author,
        expected_version: int | None = None,
    ) -> Written:
        rec = self.get_record(kind, id, expected_version)
        if rec.retracted is not None:
            return self._unchanged(rec, str(id))  # retracting again changes nothing
        rec.retract(
            reason=rules.text(reason, "reason", max_length=rules.REASON_MAX),
            writer=by.writer,
            batch_id=by.batch_id,
        )
        return self._save(rec, str(id))

    def add_source(
        self,
        kind: str,
        id: UUID,
        source: object,
        by: Author,
        expected_version: int | None = None,
    ) -> Written:
        rec = self.get_record(kind, id, expected_version)
        clean = rules.source(source, "source")
        if rec.has_source(clean["url"]):
            return self._unchanged(rec, str(id))
        rec.check_not_retracted()
        rec.add_source(source=clean, writer=by.writer, batch_id=by.batch_id)
        return self._save(rec, str(id))

    def tag(
        self,
        kind: str,
        id: UUID,
        topics: object,
        by: Author,
        expected_version: int | None = None,
    ) -> Written:
        rec = self.get_record(kind, id, expected_version)
        slugs = rules.items(topics, "topics", rules.slug, min_items=1)
        for i, slug in enumerate(slugs):
            self._check_exists(topic_id(slug), "topics", "topic", slug, i)
        new = [s for s in slugs if s not in rec.content.get("topics", [])]
        if not new:
            return self._unchanged(rec, str(id))
        rec.tag(topics=new, writer=by.writer, batch_id=by.batch_id)
        return self._save(rec, str(id))

    def untag(
        self,
        kind: str,
        id: UUID,
        topics: object,
        by: Author,
        expected_version: int | None = None,
    ) -> Written:
        rec = self.get_record(kind, id, expected_version)
        slugs = rules.items(topics, "topics", rules.slug, min_items=1)
        gone = [s for s in slugs if s in rec.content.get("topics", [])]
        if not gone:
            return self._unchanged(rec, str(id))
        rec.untag(topics=gone, writer=by.writer, batch_id=by.batch_id)
        return self._save(rec, str(id))

    def get_record(self, kind: str, id: UUID, expected_version: int | None = None) -> Record:
        if kind not in RECORD_CLASSES:
            raise InvalidInput(f"must be one of {', '.join(RECORD_CLASSES)}", field="kind")
        return self._load(RECORD_CLASSES[kind], id, expected_version, kind)

    def history(self, id: UUID) -> Iterator[DomainEventProtocol[UUID]]:
        """An aggregate's domain events in version order."""
        return iter(self.events.get(id))

    # Plumbing -------------------------------------------------------------------------

    def head_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    # Units of work: many use cases, one transaction ------------------------------------

    @contextmanager
    def unit(
        self,
        *,
        save: bool = True,
        optimistic: bool = False,
        after: Iterable[Aggregate] = (),
    ) -> Iterator[Unit]:
        """Run use cases whose changes are saved together at the end, in one transaction
        (or never, with `save=False`: a dry run). Aggregates changed or created earlier in
        the unit are seen by later use cases in it.

        `optimistic`: creations do not look for an existing aggregate first; if one
        exists, the save fails as a whole (`ConcurrentWrite`) and the caller runs the unit
        again without this option. Bulk imports of new history skip a query a line.

        `after`: the aggregates of a unit being saved meanwhile, which this one follows:
        it takes them as stored (the caller saves it only once that unit is)."""
        unit = Unit(optimistic=optimistic, loaded={a.id: a for a in after})
        self._local.unit = unit
        try:
            yield unit
            if save and unit.aggregates:
                unit.recordings = self.save_atomically(list(unit.aggregates.values()))
                self.saved(unit)
        finally:
            self._local.unit = None

    def saved(self, unit: Unit) -> None:
        """After a unit's changes are stored: its actors and topics exist from now on."""
        self._known.update(a.id for a in unit.aggregates.values() if isinstance(a, (Actor, Topic)))

    def preload(self, ids: Iterable[UUID]) -> None:
        """Read many aggregates ahead into the unit of work, in one query where the
        recorder can (`select_many`), for the use cases about to change them. An
        aggregate changed meanwhile by another writer fails the unit's save, as any
        stale read does."""
        unit = self._unit()
        if unit is None:
            return
        wanted = [
            i for i in dict.fromkeys(ids) if i not in unit.aggregates and i not in unit.loaded
        ]
        select_many = getattr(self.recorder, "select_many", None)
        if not wanted or select_many is None:
            return
        events: dict[UUID, list[Any]] = {}
        for stored in select_many(wanted):
            event = self.mapper.to_domain_event(stored)
            events.setdefault(event.originator_id, []).append(event)
        for id, history in events.items():
            aggregate: Aggregate | None = project_aggregate(None, history)
            if aggregate is not None:
                unit.loaded[id] = aggregate
        # What is not stored need not be asked for again, line by line, in this unit.
        unit.absent.update(i for i in wanted if i not in unit.loaded)

    def _unit(self) -> Unit | None:
        unit: Unit | None = getattr(self._local, "unit", None)
        return unit

    def _find(self, cls: type[A], id: UUID, *, creating: bool = False) -> A | None:
        unit = self._unit()
        found: Aggregate
        if unit is not None and id in unit.aggregates:
            found = unit.aggregates[id]
        elif unit is not None and id in unit.loaded:
            found = unit.loaded[id]
        elif creating and (
            (unit.optimistic or id in unit.absent) if unit is not None else self.optimistic_creates
        ):
            return None
        else:
            try:
                found = self.repository.get(id)
            except AggregateNotFoundError:
                return None
        if not isinstance(found, cls):
            raise NotFound(f"{id} is a {type(found).__name__.lower()}, not a {cls.__name__}")
        return found

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
        unit = self._unit()
        if id in self._known or (unit is not None and (id in unit.aggregates or id in unit.loaded)):
            return
        if next(iter(self.events.get(id, limit=1)), None) is None:
            hint = "register it first" if what == "actor" else "define it first"
            named = field if index is None else f"{field}[{index}]"
            raise UnknownReference(f"no {what} {slug!r}: {hint}", field=named)
        self._known.add(id)

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

    def _position_now(self) -> int:
        """For an answer that stored nothing: a position that includes what it found
        (0 inside a unit, whose report gives positions)."""
        return 0 if self._unit() is not None else self.head_position()

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
        by: Author,
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
        aggregate = cls._create(
            created,
            id=id,
            **fields,
            **more,
            fingerprint=print_,
            writer=by.writer,
            batch_id=by.batch_id,
        )
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

    def _save(self, aggregate: Actor | Topic | Record, ref: str, *more: Aggregate) -> Written:
        """Save an aggregate (and `more` that its change keeps consistent, together)."""
        unit = self._unit()
        if unit is not None:
            for changed in (*more, aggregate):
                unit.aggregates[changed.id] = changed
            return Written(aggregate.id, ref, aggregate.version, 0, aggregate.modified_on)
        # The aggregate's own events last: the answer's position is the write's last.
        # (With `more`, a topic's move, not in a group: saved as aggregates, snapshots of
        # them are taken.)
        if self.group is not None and not more:
            recordings = self.group.save(list(aggregate.collect_events()))
        else:
            recordings = self.save_atomically([*more, aggregate])
        last = recordings[-1]
        return Written(
            aggregate.id,
            ref,
            aggregate.version,
            last.notification.id,
            recorded_at(last.domain_event),
        )

    def save_atomically(self, aggregates: Sequence[Any]) -> list[Recording[UUID]]:
        """Save several aggregates (or their new events) in one transaction: all are
        stored, or none."""
        try:
            return self.save(*aggregates)
        except RecordConflictError:
            raise ConcurrentWrite(
                "another writer changed this first; reload and try again"
            ) from None
