"""The topic tree with counts: records tagged with each topic, and with it or below it."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from projections.base import RowsProjection
from projections.rows import RowsView
from projections.sql import RECORD_KINDS, Sql, in_list, visible


class TopicsProjection(RowsProjection):
    name = "topics"
    record_kinds: ClassVar[tuple[str, ...]] = RECORD_KINDS


def topic_tree(view: RowsView, at: int | None) -> list[dict[str, Any]]:
    """Every topic, depth first, with `count` (tagged directly), `total` (with
    descendants, each record once) and `depth`."""
    p = view.prefix
    q = Sql().add(f"SELECT r.ref, r.body FROM {p}_rows r WHERE r.kind = 'topic' AND")
    topics = {ref: json.loads(body) for ref, body in view.query(visible(q, "r", at).text, q.params)}
    q = Sql().add(
        f"SELECT l.value, r.row_id FROM {p}_rows r JOIN {p}_links l "
        "ON l.row_id = r.row_id AND l.rel = 'topic' WHERE"
    )
    in_list(q, "r.kind", RECORD_KINDS).add("AND")
    tagged: dict[str, set[int]] = {}
    for slug, row_id in view.query(visible(q, "r", at).text, q.params):
        tagged.setdefault(slug, set()).add(row_id)
    children: dict[str | None, list[str]] = {}
    for slug in sorted(topics):
        parent = topics[slug]["parent"]
        children.setdefault(parent if parent in topics else None, []).append(slug)

    out: list[dict[str, Any]] = []

    def walk(slug: str, depth: int) -> set[int]:
        entry = {**topics[slug], "depth": depth, "count": len(tagged.get(slug, ()))}
        out.append(entry)
        below = set(tagged.get(slug, ()))
        for child in children.get(slug, []):
            below |= walk(child, depth + 1)
        entry["total"] = len(below)
        entry["children"] = children.get(slug, [])
        return below

    for root in children.get(None, []):
        walk(root, 0)
    return out
