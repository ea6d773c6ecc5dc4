"""What changed in what we know between two positions of the log: read from the row
versions of the timeline (decision 004), never by replaying events.

Each event of a record opens a version of its row at the event's position and closes the
one before it there (a correction, a source, a tag), or, a retraction, closes the last
one and opens none. So the span `(start, end]` is walked position by position, in order
(`rm_clock` holds each), looking up the version opened and the version closed at each
(the indexes `opened` and `closed` of `projections/rows.py`):
- a version of a record opened: `added` when it is the record's first (`from_pos =
  first_pos`); otherwise it is compared with the version closed there, `sourced` when
  only their `sources` differ, `tagged` when only their `topics` do, `corrected` when
  anything else does;
- a version of a record closed where none opened: `retracted`. (A change of an actor or
  a topic always opens its next version where it closes one.)

A position is one event, so it is a change's key. A page reads about as many positions
as it lists changes, plus the events of actors and topics among them; a filter is
checked at each position in turn, so one that few of a long span's changes meet reads
much of the span.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from projections.rows import RowsView, parse_utc, utc_text
from projections.sql import Sql, records
from projections.timeline import topic_slugs
from projections.topics import labelled

# What every version of an item has anew: not what a change changed.
STAMPS = ("version", "position", "recorded_at")


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
    fields: list[str]  # the item's fields that the change changed (STAMPS aside)
    item: str  # the record's item after the change (retracted: before it), labelled


@dataclass(frozen=True, slots=True)
class ChangePage:
    items: list[Change]
    next: int | None  # the last position of this page, when more changes follow


def changes(view: RowsView, query: ChangesQuery) -> ChangePage:
    p = view.prefix
    slugs = None if query.topic is None else topic_slugs(view, query.topic, query.end)

    def rest(alias: str, *more: str) -> str:
        return view.json_without(f"{alias}.body", [*STAMPS, *more])

    # At each position: `o`, the version opened there, and `c`, the one closed there. (A
    # version that differs from the one before in nothing but its stamps, which no rule
    # of the domain makes, is neither sourced nor tagged.)
    change = (
        "CASE WHEN o.row_id IS NULL THEN 'retracted' "
        "WHEN o.from_pos = o.first_pos THEN 'added' "
        f"WHEN {rest('o')} = {rest('c')} THEN 'corrected' "
        f"WHEN {rest('o', 'topics')} = {rest('c', 'topics')} THEN 'tagged' "
        f"WHEN {rest('o', 'sources')} = {rest('c', 'sources')} THEN 'sourced' "
        "ELSE 'corrected' END"
    )
    after, end = max(query.start, query.after or 0), query.end
    # Each look-up bounded to the span too: PostgreSQL would otherwise merge the whole
    # index before the span's start with it.
    q = Sql().add(
        f"SELECT k.position, k.recorded_at, {change}, r.kind, r.ref, r.body, "
        "CASE WHEN o.row_id IS NULL THEN NULL ELSE c.body END FROM rm_clock k "
        f"LEFT JOIN {p}_rows o ON o.from_pos = k.position AND o.from_pos > %s "
        f"AND o.from_pos <= %s LEFT JOIN {p}_rows c ON c.to_pos = k.position "
        f"AND c.to_pos > %s AND c.to_pos <= %s "
        f"JOIN {p}_rows r ON r.row_id = coalesce(o.row_id, c.row_id) "
        "WHERE k.position > %s AND k.position <= %s AND",
        *(after, end) * 3,
    )
    records(q, view, "r", query.kind, slugs, query.actor)
    # The cheap tests first: only a correction, a source or a tag compares JSON.
    if query.change == "added":
        q.add("AND o.from_pos = o.first_pos")
    elif query.change == "retracted":
        q.add("AND o.row_id IS NULL")
    elif query.change is not None:
        q.add(f"AND o.from_pos <> o.first_pos AND {change} = %s", query.change)
    q.add("ORDER BY k.position LIMIT %s", query.limit + 1)
    rows = view.query(q.text, q.params)
    more, rows = len(rows) > query.limit, rows[: query.limit]
    # Each item with its topics' labels as they stood at the span's end.
    items = labelled(view, [row[5] for row in rows], query.end)
    found = [
        Change(
            position=int(position),
            recorded_at=utc_text(parse_utc(recorded_at)),
            change=change,
            kind=kind,
            id=ref,
            fields=[] if previous is None else _fields(body, previous),
            item=item,
        )
        for (position, recorded_at, change, kind, ref, body, previous), item in zip(
            rows, items, strict=True
        )
    ]
    return ChangePage(found, found[-1].position if more else None)


def _fields(body: str, before: str) -> list[str]:
    """The item's fields whose values differ between two versions, STAMPS aside."""
    new, old = json.loads(body), json.loads(before)
    return sorted(
        k for k in new.keys() | old.keys() if k not in STAMPS and new.get(k) != old.get(k)
    )
