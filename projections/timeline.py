"""The timeline: every current record in occurred order, filtered and paged by keyset."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from projections.base import ACTOR_FIELDS, RowsProjection
from projections.rows import RowsView, parse_utc
from projections.sql import RECORD_KINDS, Sql, in_list, in_order, subtree, visible
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
    rows = view.query(q.text, q.params)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    last = (parse_utc(rows[-1][1]), int(rows[-1][2])) if more else None
    return Page(labelled(view, [r[0] for r in rows], query.at), last)


def topic_slugs(view: RowsView, topic: str, at: int | None) -> list[str]:
    """The topic and its descendants, as the tree stood."""
    q = subtree(view.prefix, topic, at)
    return [str(slug) for (slug,) in view.query(q.text, q.params)]


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
