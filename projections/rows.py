"""Versioned rows: the storage every read model shares, and the view interface over it.

A read model is a set of rows, each one version of an entity (a record, an actor, a topic)
valid over a range of positions: `from_pos` (the event that opened it) up to `to_pos`
(the event that closed it, NULL while current). Current answers read open rows; an answer
`as_of_position=P` reads rows with `from_pos <= P < to_pos`. Links tag a row version with
the actors and topics it concerns, for filters.

A projection writes through a `RowsView` in batches: many events, one transaction, one
tracking update. Each database (`projections/sqlite.py`, `projections/postgres.py`)
implements the few storage primitives; the SQL of the read models is written once.
"""

from __future__ import annotations

import threading
import unicodedata
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from typing import Any, TypeVar, cast

import msgspec
from eventsourcing.persistence import Tracking, TrackingRecorder

from projections.shared import Memo

T = TypeVar("T")
APPLICATION = "Timeline"
ANALYZE_AFTER = 5_000  # rows written before statistics are refreshed (then at each doubling)
# The fields of a record's item that `q` searches (decision 022): an occurrence's title,
# a quote, a summary.
SEARCHED_FIELDS = ("title", "quote", "summary")


def words(text: str) -> list[str]:
    """The words of a search's text: runs of letters, digits, marks (a decomposed
    accent, a vowel sign of Hindi) and private-use characters, as SQLite's tokenizer is
    told to find them (`projections/sqlite.py`); everything else separates them."""
    return ["".join(run) for inside, run in groupby(text, _in_word) if inside]


def _in_word(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in "LNM" or category == "Co"


def schema(prefix: str, bigint: str, instant: str) -> list[str]:
    """The tables of one read model, and the ones all read models share.

    Every index costs each row a projection writes (decision 011). `opened` and `closed`
    serve only what changed between two positions (`projections/changes.py`), and cost
    a backfill little: positions only grow, so their entries are added at the right edge
    of each index; a close is an update that PostgreSQL indexes anew in any case (not
    HOT: `to_pos` is in `current`'s condition); and `closed` holds closed versions only.
    At 28,000 events they took 0.65 and 0.17 MB beside the other indexes' 18 MB, and a
    catch-up took 3.1-3.7 s with them as without them (three runs each, alternately).
    """
    return [
        f"CREATE TABLE IF NOT EXISTS {prefix}_rows ("
        f" row_id {bigint} PRIMARY KEY, kind text NOT NULL, ref text NOT NULL,"
        f" from_pos {bigint} NOT NULL, to_pos {bigint}, first_pos {bigint} NOT NULL,"
        f" start_at {instant}, end_at {instant}, body text NOT NULL, state text NOT NULL)",
        f"CREATE UNIQUE INDEX IF NOT EXISTS {prefix}_current"
        f" ON {prefix}_rows (ref, kind) WHERE to_pos IS NULL",
        # Current and as_of answers read the same order index (decision 011): an index
        # of current rows only cost a backfill more than closed versions cost a read.
        f"CREATE INDEX IF NOT EXISTS {prefix}_order ON {prefix}_rows (start_at, first_pos)",
        f"CREATE INDEX IF NOT EXISTS {prefix}_entity ON {prefix}_rows (kind, ref, from_pos)",
        # The versions opened, and closed, in a range of positions, in position order.
        f"CREATE INDEX IF NOT EXISTS {prefix}_opened ON {prefix}_rows (from_pos)",
        f"CREATE INDEX IF NOT EXISTS {prefix}_closed ON {prefix}_rows (to_pos)"
        " WHERE to_pos IS NOT NULL",
        # A link carries its row's order and range of positions (to_pos closed with the
        # row), so that the rows of a topic or an actor are read in timeline order from
        # the index, a page at a time, and joined to their rows only for that page.
        f"CREATE TABLE IF NOT EXISTS {prefix}_links ("
        f" row_id {bigint} NOT NULL, rel text NOT NULL, value text NOT NULL,"
        f" start_at {instant}, first_pos {bigint} NOT NULL,"
        f" from_pos {bigint} NOT NULL, to_pos {bigint})",
        # One index in timeline order for current and as_of reads, covering the range of
        # positions, so that a closed version is passed over in the index (the last two
        # columns are never compared: a row links a (rel, value) once).
        f"CREATE INDEX IF NOT EXISTS {prefix}_links_in_order ON {prefix}_links"
        f" (rel, value, start_at, first_pos, row_id, from_pos, to_pos)",
        f"CREATE INDEX IF NOT EXISTS {prefix}_links_row ON {prefix}_links (row_id)",
        f"CREATE TABLE IF NOT EXISTS {prefix}_tracking ("
        f" application_name text PRIMARY KEY, notification_id {bigint} NOT NULL)",
        # Shared: when each position was recorded, and each read model's state.
        f"CREATE TABLE IF NOT EXISTS rm_clock (position {bigint} PRIMARY KEY,"
        f" recorded_at {instant} NOT NULL, high_water {instant} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rm_clock_high_water ON rm_clock (high_water, position)",
        "CREATE TABLE IF NOT EXISTS rm_status (name text PRIMARY KEY, state text NOT NULL,"
        f" error text, error_position {bigint})",
        "CREATE TABLE IF NOT EXISTS rm_registry (name text PRIMARY KEY,"
        " generation integer NOT NULL)",
        # Indexes of earlier layouts (decision 011), replaced by the ones above.
        *(
            f"DROP INDEX IF EXISTS {prefix}_{old}"
            for old in ("order_current", "links_current", "links_order")
        ),
    ]


def upgrade_links(prefix: str, bigint: str, instant: str) -> list[str]:
    """Give links stored before they carried their row's order and positions those
    columns, copied from their rows (run before `schema` when `to_pos` is missing)."""
    columns = {"start_at": instant, "first_pos": bigint, "from_pos": bigint, "to_pos": bigint}
    return [
        *(f"ALTER TABLE {prefix}_links ADD COLUMN {c} {t}" for c, t in columns.items()),
        f"UPDATE {prefix}_links SET "
        + ", ".join(
            f"{c} = (SELECT r.{c} FROM {prefix}_rows r WHERE r.row_id = {prefix}_links.row_id)"
            for c in columns
        ),
    ]


def drop(prefix: str) -> list[str]:
    return [f"DROP TABLE IF EXISTS {prefix}_{t}" for t in ("rows", "links", "tracking", "search")]


@dataclass(slots=True)
class Row:
    """One version of an entity."""

    kind: str
    ref: str
    from_pos: int
    first_pos: int
    body: dict[str, Any]
    state: dict[str, Any]
    links: list[tuple[str, str]] = field(default_factory=list)
    start_at: datetime | None = None
    end_at: datetime | None = None
    to_pos: int | None = None
    row_id: int | None = None  # set once stored
    body_text: str | None = None  # body and state as JSON, when already encoded
    state_text: str | None = None

    def texts(self) -> tuple[str, str]:
        return self.body_text or dumps(self.body), self.state_text or dumps(self.state)

    def search_text(self) -> str | None:
        """The words `q` finds this version by (None: it has none), in normal form C, as
        `q` is: a quote is stored as given, perhaps with its accents decomposed."""
        return search_text(self.body)

    def link_rows(self) -> list[tuple[Any, ...]]:
        """`(row_id, rel, value, start_at, first_pos, from_pos, to_pos)` of each link."""
        return [
            (self.row_id, rel, value, self.start_at, self.first_pos, self.from_pos, self.to_pos)
            for rel, value in self.links
        ]


Carry = dict[tuple[str, str], Row | None]  # current rows by (kind, ref), not yet stored


@dataclass(slots=True)
class Pending:
    """What a batch will write: new rows (some closed within the batch) and closes of
    rows stored before it."""

    after: int  # the tracking position the batch starts from
    rows: list[Row] = field(default_factory=list)
    current: dict[tuple[str, str], Row | None] = field(default_factory=dict)
    closes: dict[int, int] = field(default_factory=dict)  # stored row id: position
    clock: list[tuple[int, datetime]] = field(default_factory=list)
    touched: set[tuple[str, str]] = field(default_factory=set)  # entities opened or closed

    def carry(self) -> Carry:
        """The current rows of what this batch changed: where the next batch starts from
        while this one is still being written (its rows already have their ids)."""
        return {key: self.current[key] for key in self.touched}


class RowsView(TrackingRecorder):
    """The view interface shared by the read models: batched versioned rows, tracking,
    status, and waiting for a position."""

    prefix: str
    generation: int
    # Whether a runner may build its next batch while this one is written (decision 010):
    # the database must take the write from another thread, with row ids reserved first.
    pipelined = False

    def __init__(self, name: str) -> None:
        self.name = name
        self._local = threading.local()  # the batch being built, per writing thread
        self._grown = 0  # rows written since the statistics were last refreshed
        self._analyzed = 0
        self.listeners: list[Callable[[], None]] = []  # told after each commit
        self._fixed: Memo[tuple[Any, ...], Any] = Memo(4096)

    # Storage primitives, one implementation per database ------------------------------

    @abstractmethod
    def create_tables(self) -> None: ...

    @abstractmethod
    def drop_tables(self) -> None: ...

    def _fetch_current(self, kinds: Sequence[str], ref: str) -> Row | None:
        found = self.query(
            f"SELECT row_id, kind, from_pos, first_pos, body, state, start_at, end_at "
            f"FROM {self.prefix}_rows WHERE ref = %s AND to_pos IS NULL "
            f"AND kind IN ({', '.join(['%s'] * len(kinds))})",
            (ref, *kinds),
        )
        if not found:
            return None
        row_id, kind, *rest = found[0]
        return _stored_row((row_id, kind, ref, *rest))

    @abstractmethod
    def _write(self, pending: Pending, tracking: Tracking) -> None:
        """Close, insert, tick the clock and track, in one transaction."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read-only statement written with %s placeholders."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one writing statement, committed on its own."""

    @abstractmethod
    def matching(self, text: str) -> tuple[str, list[Any]]:
        """A subquery of the `row_id`s of the row versions whose searched text holds every
        word of `text` (which has one at least: see `words`), and its parameters."""

    def row_matches(self, text: str, filtered: bool) -> tuple[str, list[Any]] | None:
        """A condition that the row `r` holds every word, checked row by row as the
        timeline is read in order (by a filter's links if `filtered`), where that reads
        fewer rows than the search index names; None: read those. Only for a database
        whose planner does not choose between the two by itself (PostgreSQL's does)."""
        return None

    def unindexed(self, column: str) -> str:
        """A column to compare without choosing an index for it (see SQLite's)."""
        return column

    @abstractmethod
    def json_without(self, column: str, keys: Sequence[str]) -> str:
        """SQL for a column's JSON object without some of its keys, which `=` compares
        with another's: as values on PostgreSQL; as text on SQLite, so in the order the
        keys were written (a version keeps the order of the keys of the one before)."""

    @abstractmethod
    def day_of(self, column: str, bucket: str) -> str:
        """SQL for the first day (`YYYY-MM-DD`, UTC) of the day, week (from Monday, as
        ISO 8601), month or year that an instant column falls in."""

    def one_of(self, column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        """`column IN (%s, ...)` and its parameters. (PostgreSQL's view takes one array:
        a statement text that changes with the number of values is parsed anew by the
        driver and planned anew by the server each time.)"""
        return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)

    # Read and written the same way on every database ----------------------------------

    def max_tracking_id(self, application_name: str) -> int | None:
        found = self.query(
            f"SELECT notification_id FROM {self.prefix}_tracking WHERE application_name = %s",
            (application_name,),
        )
        return int(found[0][0]) if found else None

    def position_at(self, instant: datetime) -> tuple[int, bool]:
        """The last position recorded at or before the instant (0 if none), and whether
        that is final: whether a later position, whose high water is past the instant,
        is stored already (high waters never go back, so no position to come is in)."""
        ((at, last),) = self.query(
            "SELECT (SELECT position FROM rm_clock WHERE high_water <= %s "
            "ORDER BY high_water DESC, position DESC LIMIT 1), "
            "(SELECT high_water FROM rm_clock ORDER BY high_water DESC, position DESC LIMIT 1)",
            (instant,),
        )
        return int(at or 0), last is not None and parse_utc(last) > instant

    def save_status(self, state: str, error: str | None, error_position: int | None) -> None:
        self.execute(
            "INSERT INTO rm_status VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
            "state = excluded.state, error = excluded.error, "
            "error_position = excluded.error_position",
            (self.name, state, error, error_position),
        )

    def status(self) -> tuple[str, str | None, int | None]:
        found = self.query(
            "SELECT state, error, error_position FROM rm_status WHERE name = %s", (self.name,)
        )
        if not found:
            return ("stopped", None, None)
        state, error, error_position = found[0]
        return state, error, error_position

    # Writing in batches ---------------------------------------------------------------

    def reserve_ids(self, rows: Sequence[Row]) -> None:
        """Give rows their ids before they are written (where the database can)."""

    @contextmanager
    def batch(self, after: int, carry: Carry | None = None) -> Iterator[Pending]:
        """Build a batch after a position; `carry`: what the batch before it, not yet
        stored, changed."""
        self._local.pending = Pending(after, current=dict(carry or {}))
        try:
            yield self._local.pending
        finally:
            self._local.pending = None

    def commit(self, pending: Pending, tracking: Tracking) -> None:
        self._write(pending, tracking)
        self._grown += len(pending.rows)
        if self._grown > max(ANALYZE_AFTER, self._analyzed):
            # A table filled in batches outgrows its planner statistics long before
            # autovacuum looks; stale ones make look-ups scan every current row.
            self.analyze()
            self._analyzed += self._grown
            self._grown = 0
        for listener in self.listeners:
            listener()

    def analyze(self) -> None:
        """Refresh the planner's statistics of the tables (where the database has any)."""

    def current(self, kind: str, ref: str) -> Row | None:
        pending = self._pending()
        key = (kind, ref)
        if key not in pending.current:
            pending.current[key] = self._fetch_current((kind,), ref)
        return pending.current[key]

    def current_of(self, kinds: Sequence[str], ref: str) -> Row | None:
        """The current row of an entity whose kind is one of several (records)."""
        pending = self._pending()
        # A row opened in this batch wins over the "none" that a prefetch noted for
        # every kind before the record was created (in this same batch).
        for kind in kinds:
            if (found := pending.current.get((kind, ref))) is not None:
                return found
        if any((kind, ref) in pending.current for kind in kinds):
            return None
        row = self._fetch_current(kinds, ref)
        if row is not None:
            pending.current[(row.kind, ref)] = row
        return row

    def open(self, row: Row, *, first: bool = False) -> None:
        """Open a new version of an entity, closing its current one (`first`: it has
        none, being created by this event)."""
        if not first:
            self.close(row.kind, row.ref, row.from_pos)
        pending = self._pending()
        pending.rows.append(row)
        pending.current[(row.kind, row.ref)] = row
        pending.touched.add((row.kind, row.ref))

    def close(self, kind: str, ref: str, position: int) -> None:
        row = self.current(kind, ref)
        if row is None:
            return
        pending = self._pending()
        if row.row_id is None:  # opened in this batch
            row.to_pos = position
        else:
            pending.closes.setdefault(row.row_id, position)
        pending.current[(kind, ref)] = None
        pending.touched.add((kind, ref))

    def prefetch(self, kinds: Sequence[str], refs: Sequence[str]) -> None:
        """Look up the current rows of many entities in one query, ahead of their events."""
        pending = self._pending()
        wanted = sorted({r for r in refs if not any((k, r) in pending.current for k in kinds)})
        for chunk in range(0, len(wanted), 500):
            part = wanted[chunk : chunk + 500]
            refs_in, refs_params = self.one_of("ref", part)
            kinds_in, kinds_params = self.one_of("kind", kinds)
            found = self.query(
                f"SELECT row_id, kind, ref, from_pos, first_pos, body, state, start_at, end_at "
                f"FROM {self.prefix}_rows WHERE to_pos IS NULL AND {refs_in} AND {kinds_in}",
                (*refs_params, *kinds_params),
            )
            seen: set[str] = set()
            for values in found:
                row = _stored_row(values)
                seen.add(row.ref)
                pending.current[(row.kind, row.ref)] = row
            # None under every kind only when no row is current: `current_of` takes the
            # first kind it finds, and a record has one kind.
            for ref in part:
                if ref not in seen:
                    for kind in kinds:
                        pending.current.setdefault((kind, ref), None)

    def tick(self, position: int, recorded_at: datetime) -> None:
        self._pending().clock.append((position, recorded_at))

    def _pending(self) -> Pending:
        pending: Pending | None = getattr(self._local, "pending", None)
        if pending is None:
            raise RuntimeError("rows are written inside view.batch()")
        return pending

    # Tracking and waiting -------------------------------------------------------------

    def insert_tracking(self, tracking: Tracking) -> None:
        self.commit(Pending(self.position()), tracking)

    def position(self) -> int:
        return self.max_tracking_id(APPLICATION) or 0

    def fixed(self, key: tuple[Any, ...], at: int | None, make: Callable[[], T]) -> T:
        """`make()`, remembered when it is as of a position: what the rows held at a
        position never changes, so what frames a page (a topic, its subtree, its labels,
        the speakers' names) is read once while the position stands, not every request.
        (What it gives is shared: never changed by its callers.)"""
        if at is None:
            return make()
        return cast(T, self._fixed.get((self.prefix, *key, at), make))

    def generation_in_use(self) -> int | None:
        """The generation readers use, as the registry says (None: never registered)."""
        found = self.query("SELECT generation FROM rm_registry WHERE name = %s", (self.name,))
        return int(found[0][0]) if found else None

    def use_generation(self, generation: int) -> None:
        self.execute(
            "INSERT INTO rm_registry VALUES (%s, %s) ON CONFLICT (name) "
            "DO UPDATE SET generation = excluded.generation",
            (self.name, generation),
        )


def search_text(body: dict[str, Any]) -> str | None:
    texts = [body[f] for f in SEARCHED_FIELDS if isinstance(body.get(f), str)]
    return unicodedata.normalize("NFC", "\n".join(texts)) if texts else None


def stored_texts(
    prefix: str, read: Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]]
) -> Iterator[list[tuple[int, str]]]:
    """`(row_id, search text)` of every stored version that has one, a chunk at a time,
    read by `read(sql, params)`: what a search index made for a store written before it
    had one is filled with, in the transaction that makes it."""
    after = 0
    while chunk := read(
        f"SELECT row_id, body FROM {prefix}_rows WHERE row_id > %s ORDER BY row_id LIMIT 5000",
        (after,),
    ):
        after = int(chunk[-1][0])
        texts = ((int(row_id), search_text(_decode(body))) for row_id, body in chunk)
        yield [(row_id, text) for row_id, text in texts if text is not None]


def _stored_row(values: Sequence[Any]) -> Row:
    """A Row from `row_id, kind, ref, from_pos, first_pos, body, state, start_at, end_at`."""
    row_id, kind, ref, from_pos, first_pos, body, state, start_at, end_at = values
    return Row(
        kind,
        ref,
        from_pos,
        first_pos,
        _decode(body),
        _decode(state),
        start_at=None if start_at is None else parse_utc(start_at),
        end_at=None if end_at is None else parse_utc(end_at),
        row_id=row_id,
    )


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode  # a third of json.loads' time on stored rows


def dumps(value: Any) -> str:
    return _encode(value).decode()


def utc_text(moment: datetime) -> str:
    """A sortable UTC text form, as SQLite stores instants (and as the API shows them):
    `2025-02-13T09:00:00.000000Z`. (Made twice for every record version a projection
    stores: `isoformat` in C takes a third less time than formatting each field.)"""
    m = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return m.isoformat(timespec="microseconds")[:-6] + "Z"  # without "+00:00"


def parse_utc(value: datetime | str) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def clock_rows(
    previous_high: datetime | None, ticks: Sequence[tuple[int, datetime]]
) -> list[tuple[int, datetime, datetime]]:
    """(position, recorded_at, high_water): the high water never goes back, so that an
    instant maps to a prefix of the log even when a writer's clock runs behind."""
    out = []
    high = previous_high
    for position, recorded_at in ticks:
        high = recorded_at if high is None or recorded_at > high else high
        out.append((position, recorded_at, high))
    return out


class TrackingConflict(Exception):
    """Another worker moved this read model's tracking: the batch is not applied."""
