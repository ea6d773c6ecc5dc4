"""Building the view's SQL: placeholders in order, the as-of predicate, subtopics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.when import starts_open_at

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


def subtree(prefix: str, topic: str, at: int | None) -> Sql:
    """The topic and its descendants as the tree stood, in slug order."""
    q = Sql().add(
        f"WITH RECURSIVE sub(slug) AS (SELECT %s UNION SELECT t.ref FROM {prefix}_rows t "
        f"JOIN {prefix}_links l ON l.row_id = t.row_id AND l.rel = 'parent' "
        f"JOIN sub ON l.value = sub.slug WHERE t.kind = 'topic' AND",
        topic,
    )
    return visible(q, "t", at).add(") SELECT slug FROM sub ORDER BY slug")


def in_order(
    select: str,
    prefix: str,
    links: list[tuple[str, str]] | None,
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
    stop at `limit`: of the rows, or of each of the links `(rel, value)`. The database
    merges them and reads about as many index entries as the page needs, not every row
    of a topic. (A scan per link, each with its ORDER BY and LIMIT: PostgreSQL 15 sorts
    all a scan of `value IN (...)` finds, and merges UNION ALL branches in order only
    when each is ordered on its own.)

    A window's rows are those that start in it, or that started before it and are still
    open at its start: the few starts `starts_open_at` names, not all history before it.
    """
    scan = _Scan(prefix, links, kinds, window, at, where, after, limit)
    # A row may come from the scans of two of the links (a record linked to a topic and
    # filed under it through another): the scans then also order by row, and the
    # duplicates are dropped.
    q = Sql().add(f"SELECT {select} FROM (SELECT {'DISTINCT ' if scan.several else ''}* FROM (")
    branches = [(link, piece) for link in scan.links_or_rows for piece in starts(*window)]
    for n, (link, piece) in enumerate(branches):
        if n:
            q.add("UNION ALL")
        scan.branch(q, link, piece).add(f") a{n}")
    q.add(f") u ORDER BY {scan.order.replace(scan.alias + '.', 'u.')}")
    if limit is not None:
        q.add("LIMIT %s", limit)
    return q.add(f") d JOIN {prefix}_rows r ON r.row_id = d.row_id")


@dataclass(frozen=True, slots=True)
class _Scan:
    """One branch of `in_order`'s UNION ALL: an index read in timeline order."""

    prefix: str
    links: list[tuple[str, str]] | None
    kinds: tuple[str, ...] | list[str]
    window: tuple[datetime | None, datetime | None]
    at: int | None
    where: Sql | None
    after: tuple[datetime, int] | None
    limit: int | None

    @property
    def alias(self) -> str:
        return "r" if self.links is None else "l"

    @property
    def links_or_rows(self) -> list[tuple[str, str] | None]:
        return [None] if self.links is None else list(self.links)

    @property
    def several(self) -> bool:
        return len(self.links_or_rows) > 1

    @property
    def order(self) -> str:
        a = self.alias
        return f"{a}.start_at, {a}.first_pos" + (f", {a}.row_id" if self.several else "")

    @property
    def join(self) -> bool:
        """Only records link topics and actors, and a link knows its row's order, end and
        positions: the rows are needed only to filter by kind or by `where`."""
        return self.links is None or set(self.kinds) != set(RECORD_KINDS) or self.where is not None

    def branch(
        self, q: Sql, link: tuple[str, str] | None, piece: list[tuple[str, datetime]]
    ) -> Sql:
        a, p = self.alias, self.prefix
        q.add(f"SELECT * FROM (SELECT {a}.row_id, {a}.start_at, {a}.first_pos")
        if link is None:
            q.add(f"FROM {p}_rows r WHERE")
            in_list(q, "r.kind", self.kinds).add("AND")
        else:
            q.add(f"FROM {p}_links l")
            if self.join:
                q.add(f"JOIN {p}_rows r ON r.row_id = l.row_id")
            q.add("WHERE l.rel = %s AND l.value = %s AND", *link)
            if self.join:
                in_list(q, "r.kind", self.kinds).add("AND")
        visible(q, a, self.at)
        for op, bound in piece:
            q.add(f"AND {a}.start_at {op} %s", bound)
        if self.window[0] is not None:
            q.add(f"AND {a}.end_at > %s", self.window[0])
        if self.after is not None:
            q.add(f"AND ({a}.start_at, {a}.first_pos) > (%s, %s)", *self.after)
        if self.where is not None:
            q.add("AND").add(self.where.text, *self.where.params)
        q.add(f"ORDER BY {self.order}")
        if self.limit is not None:
            q.add("LIMIT %s", self.limit)
        return q


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
