"""The timeline: every current record in occurred order, filtered and paged by keyset."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from projections.base import ACTOR_FIELDS, RowsProjection
from projections.rows import RowsView, parse_utc
from projections.sql import (
    RECORD_KINDS,
    Sql,
    in_list,
    in_order,
    matching,
    overlapping,
    records,
    subtree,
    visible,
)
from projections.topics import labelled


class TimelineProjection(RowsProjection):
    """The rows of all four read models: every record version linked to the actors it
    names (`actor`: speakers too) and to its topics. (Who-said-what finds the speakers in
    the records themselves: links of their own cost a backfill a fifth more links.)"""

    name = "timeline"
    actor_link_fields: ClassVar[tuple[str, ...]] = ACTOR_FIELDS


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


def timeline(view: RowsView, query: TimelineQuery) -> Page:
    p = view.prefix
    kinds = [query.kind] if query.kind else list(RECORD_KINDS)
    slugs = None if query.topic is None else topic_slugs(view, query.topic, query.at)
    # Read in order from the most selective index: the actor's links, the topics' links
    # (a page from each, merged), or the rows themselves.
    links = None
    if query.actor is not None:
        links = ("actor", [query.actor])
    elif slugs is not None:
        links = ("topic", slugs)
    where = None
    if query.actor is not None and slugs is not None:
        where = Sql().add(
            f"EXISTS (SELECT 1 FROM {p}_links lt WHERE lt.row_id = r.row_id "
            "AND lt.rel = 'topic' AND"
        )
        in_list(where, "lt.value", slugs).add(")")
    if query.q is not None:
        # A search reads from its index, unless it is cheaper to check each row as the
        # timeline is read in order (`row_matches`).
        check = view.row_matches(query.q, filtered=links is not None)
        if check is None:
            return _paged(view, view.query(*_found(view, query, slugs)), query)
        where = (Sql() if where is None else where.add("AND")).add(check[0], *check[1])
    q = in_order(
        "r.body, d.start_at, d.first_pos",
        p,
        links,
        kinds,
        (query.since, query.until),
        query.at,
        where=where,
        after=query.after,
        limit=query.limit + 1,
    )
    q.add("ORDER BY d.start_at, d.first_pos")
    return _paged(view, view.query(q.text, q.params), query)


def _found(view: RowsView, query: TimelineQuery, slugs: list[str] | None) -> tuple[str, list[Any]]:
    """A page of the records a search finds, in timeline order: the search index names
    the versions that hold the words, and the filters are checked on each of those. (On
    PostgreSQL the planner may instead read the timeline in order and look each row up
    in the search table by its key, when the words are common.)"""
    p = view.prefix
    q = Sql().add("SELECT r.body, d.start_at, d.first_pos FROM (SELECT r.row_id, r.start_at,")
    q.add(f"r.first_pos FROM {p}_rows r WHERE")
    records(q, view, "r", query.kind, slugs, query.actor).add("AND")
    visible(q, "r", query.at)
    overlapping(q, query.since, query.until)
    matching(q, view, query.q)
    if query.after is not None:
        q.add("AND (r.start_at, r.first_pos) > (%s, %s)", *query.after)
    q.add("ORDER BY r.start_at, r.first_pos LIMIT %s", query.limit + 1)
    # Only the page's bodies are read: not carried through the sort.
    q.add(f") d JOIN {p}_rows r ON r.row_id = d.row_id ORDER BY d.start_at, d.first_pos")
    return q.text, q.params


def _paged(view: RowsView, rows: list[tuple[Any, ...]], query: TimelineQuery) -> Page:
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    last = (parse_utc(rows[-1][1]), int(rows[-1][2])) if more else None
    return Page(labelled(view, [r[0] for r in rows], query.at), last)


def topic_slugs(view: RowsView, topic: str, at: int | None) -> list[str]:
    """The topic and its descendants, as the tree stood."""
    q = subtree(view.prefix, topic, at)
    return view.fixed(
        ("subtree", topic), at, lambda: [str(slug) for (slug,) in view.query(q.text, q.params)]
    )


def record(view: RowsView, kind: str, id: str, at: int | None) -> str | None:
    """One record's current item (or as it stood at a position), with its topics'
    labels then."""
    q = Sql().add(
        f"SELECT r.body FROM {view.prefix}_rows r WHERE r.ref = %s AND r.kind = %s AND", id, kind
    )
    found = view.query(visible(q, "r", at).text, q.params)
    return labelled(view, [str(found[0][0])], at)[0] if found else None


def positions(view: RowsView, id: str) -> dict[int, int]:
    """The position of each of a record's events, by version: each opened a row version,
    and a retraction closed the last one."""
    found = view.query(
        f"SELECT r.from_pos, r.to_pos, r.body FROM {view.prefix}_rows r WHERE r.ref = %s "
        "ORDER BY r.from_pos",
        (id,),
    )
    out: dict[int, int] = {}
    for from_pos, to_pos, body in found:
        version = int(json.loads(body)["version"])
        out[version] = int(from_pos)
        if to_pos is not None:
            out.setdefault(version + 1, int(to_pos))
    return out
