"""Building the read models' SQL: placeholders in order, the as-of predicate, subtopics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


def has_topic_in_sub(q: Sql, prefix: str) -> Sql:
    return q.add(
        f"EXISTS (SELECT 1 FROM {prefix}_links lt WHERE lt.row_id = r.row_id "
        "AND lt.rel = 'topic' AND lt.value IN (SELECT slug FROM sub))"
    )
