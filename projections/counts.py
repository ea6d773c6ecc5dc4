"""How many records the timeline holds in each day, week, month or year: one aggregation
over the visible rows, each record in the bucket of the UTC start of its occurred time.

The records are those `/timeline` would list for the same query (its search `q` too), and
each is read to be counted: a count of the whole timeline reads every current row.
"""

from __future__ import annotations

from projections.rows import RowsView
from projections.sql import Sql, matching, overlapping, records, visible
from projections.timeline import TimelineQuery, topic_slugs


def counts(view: RowsView, bucket: str, query: TimelineQuery) -> list[tuple[str, int]]:
    """`(first day of the bucket, records)` of each bucket that holds any, in order, for
    the records that the timeline query lists (its page, `limit` and `after`, aside)."""
    p = view.prefix
    slugs = None if query.topic is None else topic_slugs(view, query.topic, query.at)
    q = Sql().add(f"SELECT {view.day_of('r.start_at', bucket)}, count(*) FROM {p}_rows r WHERE")
    records(q, view, "r", query.kind, slugs, query.actor).add("AND")
    visible(q, "r", query.at)
    overlapping(q, query.since, query.until)
    matching(q, view, query.q)
    q.add("GROUP BY 1 ORDER BY 1")
    return [(str(day), int(n)) for day, n in view.query(q.text, q.params)]
