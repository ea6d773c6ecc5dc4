"""The topic tree with counts: records tagged with each topic, and with it or below it."""

from __future__ import annotations

import json
from typing import Any

from projections.rows import RowsView
from projections.sql import Sql, visible


def topic_tree(view: RowsView, at: int | None) -> list[dict[str, Any]]:
    """Every topic, depth first, with `count` (tagged directly), `total` (with
    descendants, each record once) and `depth`."""
    p = view.prefix
    q = Sql().add(f"SELECT r.ref, r.body FROM {p}_rows r WHERE r.kind = 'topic' AND")
    topics = {ref: json.loads(body) for ref, body in view.query(visible(q, "r", at).text, q.params)}
    # Only records link topics, and a link knows when its row was current: the links
    # alone answer, from an index, without the rows.
    q = Sql().add(f"SELECT l.value, l.row_id FROM {p}_links l WHERE l.rel = 'topic' AND")
    tagged: dict[str, set[int]] = {}
    for slug, row_id in view.query(visible(q, "l", at).text, q.params):
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
