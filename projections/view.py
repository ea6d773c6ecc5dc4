"""The timeline's view: the questions the service asks of the read side, and the writes
the projection makes, named. One implementation per database (`projections/postgres.py`,
`projections/sqlite.py`), over the SQL they share (`projections/sqlview.py`).

A new read query goes here as an abstract method named for what it answers, with its
SQL in `SqlView` (and a dialect hook on a database's view where the two differ).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from eventsourcing.persistence import Tracking, TrackingRecorder

from projections.rows import Carry, Filing, Pending, Row

Bucket = Literal["day", "week", "month", "year"]
Entity = Literal["actor", "topic"]
# An occurred-time window, UTC: the start of `since` up to the end of `until` (exclusive).
Window = tuple[datetime | None, datetime | None]


@dataclass(frozen=True, slots=True)
class TimelineQuery:
    topic: str | None = None
    actor: str | None = None
    kind: str | None = None
    since: datetime | None = None  # occurred-time window, UTC: the start of `since`...
    until: datetime | None = None  # ...and the end of `until` (exclusive)
    at: int | None = None  # as_of_position; None for the current answer
    limit: int = 50
    after: tuple[datetime, int] | None = None  # keyset cursor: (occurred start, first position)
    q: str | None = None  # words the record's title, quote or summary holds, every one


@dataclass(frozen=True, slots=True)
class Page:
    items: list[str]  # JSON bodies with their topics' labels, ready to embed
    next: tuple[datetime, int] | None


@dataclass(frozen=True, slots=True)
class ChangesQuery:
    start: int  # the changes after this position...
    end: int  # ...up to this one, included
    topic: str | None = None  # with its descendants, as the tree stood at `end`
    actor: str | None = None
    kind: str | None = None
    change: str | None = None  # added, corrected, sourced, tagged or retracted
    after: int | None = None  # keyset cursor: the last position of the page before
    limit: int = 50


@dataclass(frozen=True, slots=True)
class Change:
    position: int
    recorded_at: str
    change: str
    kind: str
    id: str
    fields: list[str]  # the item's fields that the change changed (stamps aside)
    item: str  # the record's item after the change (retracted: before it), labelled


@dataclass(frozen=True, slots=True)
class ChangePage:
    items: list[Change]
    next: int | None  # the last position of this page, when more changes follow


class TimelineView(TrackingRecorder):
    """Versioned rows of records, actors and topics (decision 004), read as the API asks."""

    name: str  # of its status, registry entry and lease
    generation: int
    # Whether a runner may build its next batch while this one is written (decision 010).
    pipelined: bool = False
    listeners: list[Callable[[], None]]  # told after each commit

    # What the service asks ----------------------------------------------------------

    @abstractmethod
    def page(self, query: TimelineQuery) -> Page:
        """A page of the timeline: records in occurred order, filtered, by keyset."""

    @abstractmethod
    def record(self, kind: str, id: str, at: int | None) -> str | None:
        """One record's item (JSON) now or as it stood at a position, labelled."""

    @abstractmethod
    def history(self, id: str) -> dict[int, int]:
        """The position of each of a record's events, by version."""

    @abstractmethod
    def knows(self, kind: Entity, slug: str, at: int | None) -> bool:
        """Whether an actor or a topic is defined (now, or at a position)."""

    @abstractmethod
    def subtopics(self, topic: str, at: int | None) -> list[str]:
        """The topic and its descendants as the tree stood, in slug order."""

    @abstractmethod
    def who_said_what(
        self, topic: str, window: Window, at: int | None, *, raw: bool = False
    ) -> dict[str, Any] | None:
        """A topic's speakers and their records; None when the topic is not defined."""

    @abstractmethod
    def actors(self, at: int | None, limit: int, after: str | None) -> list[dict[str, Any]]:
        """Actor profiles in slug order, from the slug after `after` (`limit` + 1 of them)."""

    @abstractmethod
    def actor(self, slug: str, at: int | None) -> dict[str, Any] | None:
        """An actor's profile with its record count, counts by topic and latest records."""

    @abstractmethod
    def topic_tree(self, at: int | None) -> list[dict[str, Any]]:
        """Every topic, depth first, with its counts."""

    @abstractmethod
    def topic_cycles(self) -> list[list[str]]:
        """The cycles of the topic tree as it stands."""

    @abstractmethod
    def counts(self, bucket: Bucket, query: TimelineQuery) -> list[tuple[str, int]]:
        """How many records the timeline query lists in each day, week, month or year."""

    @abstractmethod
    def changes(self, query: ChangesQuery) -> ChangePage:
        """What changed in what we know between two positions, a page at a time."""

    @abstractmethod
    def position(self) -> int:
        """The position of the log this view has applied."""

    @abstractmethod
    def position_at(self, instant: datetime) -> tuple[int, bool]:
        """The last position recorded at or before an instant, and whether that is final."""

    @abstractmethod
    def status(self) -> tuple[str, str | None, int | None]:
        """The worker's state, its error and the position it failed at."""

    @abstractmethod
    def save_status(self, state: str, error: str | None, error_position: int | None) -> None: ...

    # What the workers manage --------------------------------------------------------

    @abstractmethod
    def create_tables(self, *, indexed: bool = True) -> None:
        """Make what is missing of the tables and their indexes; `indexed=False`: only
        the indexes the projection's writes use, for a rebuild to fill before it builds
        the rest (once, at the end: cheaper than batch by batch)."""

    @abstractmethod
    def drop_tables(self) -> None: ...

    @abstractmethod
    def generation_in_use(self) -> int | None:
        """The generation readers use, as the registry says (None: never registered)."""

    @abstractmethod
    def use_generation(self, generation: int) -> None: ...

    @abstractmethod
    def batch(self, after: int, carry: Carry | None = None) -> AbstractContextManager[Pending]:
        """Build a batch after a position; `carry`: what the batch before, not yet stored,
        changed."""

    @abstractmethod
    def reserve_ids(self, rows: Sequence[Row]) -> None:
        """Give rows their ids before they are written (where the database can)."""

    @abstractmethod
    def commit(self, pending: Pending, tracking: Tracking) -> None:
        """Write a batch's rows, clock and tracking in one transaction."""

    # What the projection writes, inside `batch` -------------------------------------

    @abstractmethod
    def current(self, kind: Entity, ref: str) -> Row | None:
        """The current version of an actor or a topic."""

    @abstractmethod
    def current_record(self, ref: str) -> Row | None:
        """The current version of a record, of whichever kind."""

    @abstractmethod
    def prefetch_records(self, refs: Sequence[str]) -> None:
        """Look up the current versions of many records in one query, ahead of events."""

    @abstractmethod
    def current_refs(self, kind: Entity) -> Iterator[str]:
        """The slugs of every current actor, or topic."""

    @abstractmethod
    def open(self, row: Row, *, first: bool = False) -> None:
        """Open an entity's next version, closing its current one (`first`: it has none)."""

    @abstractmethod
    def close(self, kind: str, ref: str, position: int) -> None:
        """Close an entity's current version at a position (a retraction)."""

    @abstractmethod
    def parents(self) -> dict[str, str | None]:
        """Each current topic's parent (None: a root), as the batch stands."""

    @abstractmethod
    def filed_under(self, topic: str) -> list[Filing]:
        """The current record versions of a topic's subtree (linked to it, or filed
        under it), as stored: a change of the tree starts a batch of its own, after every
        batch before it is stored (`TimelineProjection.settles`)."""

    @abstractmethod
    def refile(self, filing: Filing, under: frozenset[str], position: int) -> None:
        """From `position` on, file a stored record version under these topics."""

    @abstractmethod
    def tick(self, position: int, recorded_at: datetime) -> None:
        """Note when a position was recorded."""
