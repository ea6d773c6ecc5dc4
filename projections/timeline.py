"""The timeline: every current record in occurred order, filtered and paged by keyset."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from projections.base import ACTOR_FIELDS, RowsProjection
from projections.rows import RowsView, parse_utc
from projections.sql import RECORD_KINDS, Sql, has_topic_in_sub, in_list, subtopics, visible


class TimelineProjection(RowsProjection):
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
    items: list[str]  # JSON bodies, ready to embed
    next: tuple[datetime, int] | None


def timeline(view: RowsView, query: TimelineQuery) -> Page:
    p = view.prefix
    q = Sql()
    if query.topic is not None:
        subtopics(q, p, query.topic, query.at)
    q.add(f"SELECT r.body, r.start_at, r.first_pos FROM {p}_rows r WHERE")
    in_list(q, "r.kind", [query.kind] if query.kind else list(RECORD_KINDS)).add("AND")
    visible(q, "r", query.at)
    if query.since is not None:
        q.add("AND r.end_at > %s", query.since)
    if query.until is not None:
        q.add("AND r.start_at < %s", query.until)
    if query.topic is not None:
        has_topic_in_sub(q.add("AND"), p)
    if query.actor is not None:
        q.add(
            f"AND EXISTS (SELECT 1 FROM {p}_links la WHERE la.row_id = r.row_id "
            "AND la.rel = 'actor' AND la.value = %s)",
            query.actor,
        )
    if query.after is not None:
        q.add("AND (r.start_at, r.first_pos) > (%s, %s)", *query.after)
    q.add("ORDER BY r.start_at, r.first_pos LIMIT %s", query.limit + 1)
    rows = view.query(q.text, q.params)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    last = (parse_utc(rows[-1][1]), int(rows[-1][2])) if more else None
    return Page([r[0] for r in rows], last)


def record(view: RowsView, kind: str, id: str, at: int | None) -> str | None:
    """One record's current item (or as it stood at a position)."""
    q = Sql().add(
        f"SELECT r.body FROM {view.prefix}_rows r WHERE r.ref = %s AND r.kind = %s AND", id, kind
    )
    found = view.query(visible(q, "r", at).text, q.params)
    return str(found[0][0]) if found else None


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
