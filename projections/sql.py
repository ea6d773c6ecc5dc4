"""Building the read models' SQL: placeholders in order, the as-of predicate, subtopics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.when import starts_open_at
from projections.rows import RowsView

RECORD_KINDS = ("statement", "announcement", "occurrence")


@dataclass
class Sql:
    """SQL text with %s placeholders and their values, appended in order."""

    parts: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, text: str, *params: Any) -> Sql:
        self.parts.append(text)
        self.params.extend(params)
        return self

    @property
    def text(self) -> str:
        return " ".join(self.parts)


def visible(q: Sql, alias: str, at: int | None) -> Sql:
    """Rows current now, or at position `at`."""
    if at is None:
        return q.add(f"{alias}.to_pos IS NULL")
    return q.add(
        f"{alias}.from_pos <= %s AND ({alias}.to_pos IS NULL OR {alias}.to_pos > %s)", at, at
    )


def in_list(q: Sql, column: str, values: tuple[str, ...] | list[str]) -> Sql:
    return q.add(f"{column} IN ({', '.join(['%s'] * len(values))})", *values)


def records(
    q: Sql,
    view: RowsView,
    alias: str,
    kind: str | None,
    topics: list[str] | None,
    actor: str | None,
) -> Sql:
    """The rows `alias` that are records a timeline filter keeps: of the kind, linked to
    one of the topics (a topic and its descendants) and to the actor. Written to be
    checked on each row that a scan of positions or of times finds: SQLite is kept from
    choosing an index of these instead (`unindexed`)."""
    in_list(q, view.unindexed(f"{alias}.kind"), [kind] if kind else RECORD_KINDS)
    for rel, values in (("topic", topics), ("actor", None if actor is None else [actor])):
        if values is not None:
            # By the row's own links, not by all the links of a value.
            q.add(
                f"AND EXISTS (SELECT 1 FROM {view.prefix}_links l "
                f"WHERE l.row_id = {alias}.row_id AND {view.unindexed('l.rel')} = %s AND",
                rel,
            )
            in_list(q, "l.value", values).add(")")
    return q


def subtopics(q: Sql, prefix: str, topic: str, at: int | None) -> Sql:
    """`WITH RECURSIVE sub(slug)`: the topic and its descendants, as the tree stood."""
    q.add(
        f"WITH RECURSIVE sub(slug) AS (SELECT %s UNION SELECT t.ref FROM {prefix}_rows t "
        f"JOIN {prefix}_links l ON l.row_id = t.row_id AND l.rel = 'parent' "
        f"JOIN sub ON l.value = sub.slug WHERE t.kind = 'topic' AND",
        topic,
    )
    visible(q, "t", at)
    return q.add(")")


def subtree(prefix: str, topic: str, at: int | None) -> Sql:
    """The topic and its descendants as the tree stood, in slug order."""
    return subtopics(Sql(), prefix, topic, at).add("SELECT slug FROM sub ORDER BY slug")


def in_order(
    select: str,
    prefix: str,
    links: tuple[str, list[str]] | None,
    kinds: tuple[str, ...] | list[str],
    window: tuple[datetime | None, datetime | None],
    at: int | None,
    *,
    where: Sql | None = None,
    after: tuple[datetime, int] | None = None,
    limit: int | None = None,
) -> Sql:
    """`SELECT {select} FROM (...) d JOIN rows r`: `d` holds the `row_id, start_at,
    first_pos` of the first `limit` rows `r` of these kinds visible at `at`, in the
    window, after the cursor and meeting `where` (on `r`), in timeline order, each once.

    They come from a UNION ALL of scans that each read an index in timeline order, and
    stop at `limit`: of the rows, or of the links `(rel, [values])` for each value. The
    database merges them and reads about as many index entries as the page needs, not
    every row of a topic. (A scan per value, each with its ORDER BY and LIMIT: PostgreSQL
    15 sorts all a scan of `value IN (...)` finds, and merges UNION ALL branches in order
    only when each is ordered on its own.)

    A window's rows are those that start in it, or that started before it and are still
    open at its start: the few starts `starts_open_at` names, not all history before it.
    """
    a = "r" if links is None else "l"
    rel, values = links if links is not None else ("", [None])
    # Only records link topics and actors: the rows are needed only to filter.
    join = (
        links is None
        or set(kinds) != set(RECORD_KINDS)
        or window[0] is not None
        or where is not None
    )
    # A row may come from the scans of two of the values (a record with two topics of a
    # subtree): the scans then also order by row, and the duplicates are dropped.
    several = len(values) > 1
    order = f"{a}.start_at, {a}.first_pos" + (f", {a}.row_id" if several else "")
    q = Sql().add(f"SELECT {select} FROM (SELECT {'DISTINCT ' if several else ''}* FROM (")
    for n, (value, piece) in enumerate(
        (value, piece) for value in values for piece in starts(*window)
    ):
        if n:
            q.add("UNION ALL")
        q.add(f"SELECT * FROM (SELECT {a}.row_id, {a}.start_at, {a}.first_pos")
        if value is None:
            q.add(f"FROM {prefix}_rows r WHERE")
            in_list(q, "r.kind", kinds).add("AND")
        else:
            q.add(f"FROM {prefix}_links l")
            if join:
                q.add(f"JOIN {prefix}_rows r ON r.row_id = l.row_id")
            q.add("WHERE l.rel = %s AND l.value = %s AND", rel, value)
            if join:
                in_list(q, "r.kind", kinds).add("AND")
        visible(q, a, at)
        for op, bound in piece:
            q.add(f"AND {a}.start_at {op} %s", bound)
        if window[0] is not None:
            q.add("AND r.end_at > %s", window[0])
        if after is not None:
            q.add(f"AND ({a}.start_at, {a}.first_pos) > (%s, %s)", *after)
        if where is not None:
            q.add("AND").add(where.text, *where.params)
        q.add(f"ORDER BY {order}")
        if limit is not None:
            q.add("LIMIT %s", limit)
        q.add(f") a{n}")
    q.add(f") u ORDER BY {order.replace(a + '.', 'u.')}")
    if limit is not None:
        q.add("LIMIT %s", limit)
    return q.add(f") d JOIN {prefix}_rows r ON r.row_id = d.row_id")


def overlapping(q: Sql, since: datetime | None, until: datetime | None) -> Sql:
    """`AND` the rows `r` that overlap the window, as the timeline's scans find them:
    their starts in the window and the few starts before it that may still be open
    (`starts`), so that a week of a long history reads that week's rows, not all the
    history before it."""
    if since is None and until is None:
        return q
    pieces = starts(since, until)
    either = " OR ".join(
        "(" + " AND ".join(f"r.start_at {op} %s" for op, _ in piece) + ")" for piece in pieces
    )
    q.add(f"AND ({either})", *(bound for piece in pieces for _, bound in piece))
    if since is not None:
        q.add("AND r.end_at > %s", since)
    return q


def matching(q: Sql, view: RowsView, words: str | None) -> Sql:
    """`AND` the rows `r` whose searched text holds every word (none: every row)."""
    if words is None:
        return q
    found, params = view.matching(words)
    return q.add(f"AND r.row_id IN ({found})", *params)


def starts(since: datetime | None, until: datetime | None) -> list[list[tuple[str, datetime]]]:
    """Conditions on start_at, one list per index scan, that together hold every row
    overlapping [since, until) (rows that end by `since` are left to the caller)."""
    bound = [] if until is None else [("<", until)]
    if since is None:
        return [bound]
    after, exactly = starts_open_at(since)
    return [[(">", after), *bound]] + [
        [("=", start)] for start in exactly if until is None or start < until
    ]
