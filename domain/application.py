"""The `Timeline` application, and the units of work that run many use cases as one change.

`Timeline` runs each use case on its own: it reads from the store and saves at once.
`timeline.unit()` makes a `Unit`: the same use cases, whose changes the unit keeps until
its `commit()` stores them all in one transaction (a dry run never commits). Nothing
else changes what a use case does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import RecordConflictError, Recording

from domain.actors import Actor, Topic, TopicTree
from domain.errors import ConcurrentWrite
from domain.records import Record
from domain.usecases import UseCases, Written, checked, recorded_at

A = TypeVar("A", bound=Aggregate)


class Timeline(Application[UUID], UseCases):
    """The write model of the geopolitical timeline: each use case saved on its own."""

    name = "Timeline"
    # The topic tree's aggregate grows with every move and is read by every move, as is
    # the topic moved: both are read from a snapshot taken every 50 events (when saved),
    # and the events since.
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {
        TopicTree: 50,
        Topic: 50,
    }
    # Creations do not look for an existing aggregate first: a repeat fails its save on
    # the stored one's id, and is answered from it (a duplicate or a conflict), as a
    # racing writer's is. New records, the common case, then cost no read. (Set where
    # saves are cheap to fail: the service's group commit.)
    optimistic_creates = False

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        # Actors and topics are never deleted: once seen, they exist.
        self.known: set[UUID] = set()
        self.listeners: list[Callable[[int], None]] = []  # told each new head position

    def unit(self, *, optimistic: bool = False, after: Iterable[Aggregate] = ()) -> Unit:
        """A unit of work on this timeline (see `Unit`)."""
        return Unit(self, optimistic=optimistic, after=after)

    def history(self, id: UUID) -> Iterator[DomainEventProtocol[UUID]]:
        """An aggregate's domain events in version order."""
        return iter(self.events.get(id))

    def head_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def save_atomically(self, aggregates: Sequence[Any]) -> list[Recording[UUID]]:
        """Save several aggregates (or their new events) in one transaction: all are
        stored, or none."""
        try:
            recordings = self.save(*aggregates)
        except RecordConflictError:
            raise ConcurrentWrite(
                "another writer changed this first; reload and try again"
            ) from None
        if recordings:
            for listener in self.listeners:
                listener(recordings[-1].notification.id)
        return recordings

    def read(self, cls: type[A], id: UUID) -> A | None:
        """The stored aggregate, or None."""
        try:
            return checked(cls, id, self.repository.get(id))
        except AggregateNotFoundError:
            return None

    def store(self, aggregate: Aggregate, *more: Aggregate) -> list[Recording[UUID]]:
        """Store one use case's change (the aggregate's own events last: the answer's
        position is the write's last)."""
        return self.save_atomically([*more, aggregate])

    def _find(self, cls: type[A], id: UUID, *, creating: bool = False) -> A | None:
        return None if creating and self.optimistic_creates else self.read(cls, id)

    def exists(self, id: UUID) -> bool:
        """Whether anything is stored under the id (for an actor or a topic, which are
        never deleted, remembered once seen)."""
        if id not in self.known:
            if next(iter(self.events.get(id, limit=1)), None) is None:
                return False
            self.known.add(id)
        return True

    def _exists(self, id: UUID) -> bool:
        return self.exists(id)

    def _save(self, aggregate: Actor | Topic | Record, ref: str, *more: Aggregate) -> Written:
        last = self.store(aggregate, *more)[-1]
        return Written(
            aggregate.id,
            ref,
            aggregate.version,
            last.notification.id,
            recorded_at(last.domain_event),
        )

    def _position_now(self) -> int:
        return self.head_position()


class Unit(UseCases):
    """Use cases whose changes are stored together, when the unit commits, in one
    transaction: all or none. What a use case changed or created earlier in the unit, the
    later ones see. Their answers carry position 0: `recordings` gives the positions.

    `optimistic`: creations do not look for an existing aggregate first; if one exists,
    the commit fails as a whole (`ConcurrentWrite`) and the caller runs the use cases
    again in a unit without this option. Bulk imports of new history skip a query a line.

    `after`: the aggregates of a unit being stored meanwhile, which this one follows: it
    takes them as stored (the caller commits it only once that one is)."""

    def __init__(
        self, timeline: Timeline, *, optimistic: bool = False, after: Iterable[Aggregate] = ()
    ) -> None:
        self.timeline = timeline
        self.optimistic = optimistic
        self.aggregates: dict[UUID, Aggregate] = {}  # created or changed here
        self.loaded: dict[UUID, Aggregate] = {a.id: a for a in after}  # read ahead
        self.absent: set[UUID] = set()  # read ahead, and not stored
        self.recordings: list[Recording[UUID]] = []  # once committed

    def unread(self, ids: Iterable[UUID]) -> list[UUID]:
        """Those of the ids that the unit has not read or changed yet."""
        return [i for i in dict.fromkeys(ids) if i not in self.aggregates and i not in self.loaded]

    def read_ahead(self, found: Mapping[UUID, Aggregate], asked: Iterable[UUID]) -> None:
        """Aggregates read ahead for the use cases about to change them (an aggregate
        changed meanwhile by another writer fails the commit, as any stale read does);
        what was asked for and not found is not stored, and not asked for again."""
        self.loaded.update(found)
        self.absent.update(i for i in asked if i not in found)

    def events(self) -> list[Any]:
        """The new events of the unit's aggregates, taken from them."""
        return [e for a in self.aggregates.values() for e in a.collect_events()]

    def commit(self) -> list[Recording[UUID]]:
        """Store every change of the unit in one transaction."""
        if self.aggregates:
            self.recordings = self.timeline.save_atomically(list(self.aggregates.values()))
            self.stored()
        return self.recordings

    def stored(self) -> None:
        """The unit's changes are stored (by `commit`, or by a caller that stored its
        `events()`): its actors and topics exist from now on."""
        self.timeline.known.update(
            a.id for a in self.aggregates.values() if isinstance(a, (Actor, Topic))
        )

    def _find(self, cls: type[A], id: UUID, *, creating: bool = False) -> A | None:
        found = self.aggregates.get(id) or self.loaded.get(id)
        if found is not None:
            return checked(cls, id, found)
        if creating and (self.optimistic or id in self.absent):
            return None
        return self.timeline.read(cls, id)

    def _exists(self, id: UUID) -> bool:
        return id in self.aggregates or id in self.loaded or self.timeline.exists(id)

    def _save(self, aggregate: Actor | Topic | Record, ref: str, *more: Aggregate) -> Written:
        for changed in (*more, aggregate):
            self.aggregates[changed.id] = changed
        return Written(aggregate.id, ref, aggregate.version, 0, aggregate.modified_on)

    def _position_now(self) -> int:
        return 0
