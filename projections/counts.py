"""How many records the timeline holds in each day, week, month or year: one aggregation
over the visible rows, each record in the bucket of the UTC start of its occurred time.

The records are those `/timeline` would list for the same query, and each is read to be
counted: a count of the whole timeline reads every current row.
"""

from __future__ import annotations

from projections.rows import RowsView
from projections.sql import Sql, records, starts, visible
from projections.timeline import TimelineQuery, topic_slugs


def counts(view: RowsView, bucket: str, query: TimelineQuery) -> list[tuple[str, int]]:
    """`(first day of the bucket, records)` of each bucket that holds any, in order, for
    the records that the timeline query lists (its page, `limit` and `after`, aside)."""
    p = view.prefix
    slugs = None if query.topic is None else topic_slugs(view, query.topic, query.at)
    q = Sql().add(f"SELECT {view.day_of('r.start_at', bucket)}, count(*) FROM {p}_rows r WHERE")
    records(q, view, "r", query.kind, slugs, query.actor).add("AND")
    visible(q, "r", query.at)
    # As the timeline's window: the records that overlap it, found by their starts in
    # the window and the few starts before it that may still be open (`starts`), so that
    # a week of a long history reads that week's rows, not all the history before it.
    if query.since is not None or query.until is not None:
        pieces = starts(query.since, query.until)
        either = " OR ".join(
            "(" + " AND ".join(f"r.start_at {op} %s" for op, _ in piece) + ")" for piece in pieces
        )
        q.add(f"AND ({either})", *(bound for piece in pieces for _, bound in piece))
    if query.since is not None:
        q.add("AND r.end_at > %s", query.since)
    q.add("GROUP BY 1 ORDER BY 1")
    return [(str(day), int(n)) for day, n in view.query(q.text, q.params)]
