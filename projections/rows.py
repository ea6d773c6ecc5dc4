"""Versioned rows: how the timeline's view stores what the projection folds.

The view is a set of rows, each one version of an entity (a record, an actor, a topic)
valid over a range of positions: `from_pos` (the event that opened it) up to `to_pos`
(the event that closed it, NULL while current). Current answers read open rows; an answer
`as_of_position=P` reads rows with `from_pos <= P < to_pos`. Links tag a row version with
the actors and topics it concerns, for filters, and file a record version `under` every
topic above its own, each over a range of positions of its own: a move of the tree files
the versions current then anew.

The projection writes through the view in batches: many events, one transaction, one
tracking update (`Pending`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from typing import Any, TypeVar

import msgspec

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
    """The tables of one generation of the view, and the ones its generations share.

    Every index costs each row a projection writes (decision 011); those only readers
    use are in `read_indexes`. `opened` and `closed`
    serve only what changed between two positions (`SqlView.changes`), and cost
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
        # A link carries its row's order and range of positions (to_pos closed with the
        # row), so that the rows of a topic or an actor are read in timeline order from
        # the index, a page at a time, and joined to their rows only for that page.
        f"CREATE TABLE IF NOT EXISTS {prefix}_links ("
        f" row_id {bigint} NOT NULL, rel text NOT NULL, value text NOT NULL,"
        f" start_at {instant}, first_pos {bigint} NOT NULL,"
        f" from_pos {bigint} NOT NULL, to_pos {bigint}, end_at {instant})",
        f"CREATE INDEX IF NOT EXISTS {prefix}_links_row ON {prefix}_links (row_id)",
        f"CREATE TABLE IF NOT EXISTS {prefix}_tracking ("
        f" application_name text PRIMARY KEY, notification_id {bigint} NOT NULL)",
        # Shared: when each position was recorded, the workers' state, and the generation
        # readers use.
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


def read_indexes(prefix: str) -> list[str]:
    """The indexes only the view's readers use: the projection's writes look rows up by
    `current`, close them by row id and links by `links_row` (`schema`). A rebuild fills
    its tables without these and builds them once at the end, which costs less than
    keeping them up batch by batch (decision 026)."""
    return [
        # Current and as_of answers read the same order index (decision 011): an index
        # of current rows only cost a backfill more than closed versions cost a read.
        f"CREATE INDEX IF NOT EXISTS {prefix}_order ON {prefix}_rows (start_at, first_pos)",
        f"CREATE INDEX IF NOT EXISTS {prefix}_entity ON {prefix}_rows (kind, ref, from_pos)",
        # The versions opened, and closed, in a range of positions, in position order.
        f"CREATE INDEX IF NOT EXISTS {prefix}_opened ON {prefix}_rows (from_pos)",
        f"CREATE INDEX IF NOT EXISTS {prefix}_closed ON {prefix}_rows (to_pos)"
        " WHERE to_pos IS NOT NULL",
        # One index in timeline order for current and as_of reads, covering the range of
        # positions and the end, so that a closed version, or one that ends before a
        # window, is passed over in the index (the last three columns are never
        # compared: a row links a (rel, value) once).
        f"CREATE INDEX IF NOT EXISTS {prefix}_links_in_order ON {prefix}_links"
        f" (rel, value, start_at, first_pos, row_id, from_pos, to_pos, end_at)",
    ]


# The tables' layout. A generation stored in an earlier one is emptied when it is opened
# and projected again from the log: 2 files each record version under every topic above
# its own (`under` links), so that a subtree is two index ranges, not one per topic.
LAYOUT = 2
LAYOUT_TABLE = (
    "CREATE TABLE IF NOT EXISTS rm_layout (prefix text PRIMARY KEY, version integer NOT NULL)"
)


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
        """`(row_id, rel, value, start_at, first_pos, from_pos, to_pos, end_at)` of each
        link."""
        return [
            (
                self.row_id,
                rel,
                value,
                self.start_at,
                self.first_pos,
                self.from_pos,
                self.to_pos,
                self.end_at,
            )
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
    # Stored record versions filed anew after a move of the tree (`TimelineView.refile`):
    # their `under` links closed, `(row_id, topic, position)`, and opened (link rows).
    unfiled: list[tuple[int, str, int]] = field(default_factory=list)
    filed: list[tuple[Any, ...]] = field(default_factory=list)

    def carry(self) -> Carry:
        """The current rows of what this batch changed: where the next batch starts from
        while this one is still being written (its rows already have their ids)."""
        return {key: self.current[key] for key in self.touched}


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


@dataclass(frozen=True, slots=True)
class Filing:
    """A stored record version as the tree files it: its own topics, and the topics it
    is filed under now (every topic above its own)."""

    row_id: int
    start_at: datetime | None
    end_at: datetime | None
    first_pos: int
    topics: frozenset[str]
    under: frozenset[str]


def stored_row(values: Sequence[Any]) -> Row:
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
    """Another worker moved the view's tracking: the batch is not applied."""
