"""Who said what: for a topic and its descendants, the speakers and their records."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import msgspec

from projections.rows import RowsView, parse_utc, utc_text
from projections.sql import Sql, in_order, visible
from projections.timeline import topic_slugs

SAID = ("statement", "announcement")


def entity(view: RowsView, kind: str, slug: str, at: int | None) -> dict[str, Any] | None:
    q = Sql().add(
        f"SELECT r.body FROM {view.prefix}_rows r WHERE r.kind = %s AND r.ref = %s AND", kind, slug
    )
    found = view.query(visible(q, "r", at).text, q.params)
    return json.loads(found[0][0]) if found else None


def who_said_what(
    view: RowsView,
    topic: str,
    since: datetime | None,
    until: datetime | None,
    at: int | None,
    *,
    raw: bool = False,
) -> dict[str, Any] | None:
    """`{topic, speakers: [{actor, count, first_at, last_at, records}]}`, or None when the
    topic is not defined (then, or at all). `raw`: records as the stored JSON, to embed
    as they are (`msgspec.Raw`), not decoded."""
    found = entity(view, "topic", topic, at)
    if found is None:
        return None
    p = view.prefix
    slugs = topic_slugs(view, topic, at)
    # One statement for every speaker: records in order, each with its speakers' profiles.
    q = in_order(
        "s.value, a.body, r.body, d.start_at", p, ("topic", slugs), SAID, (since, until), at
    )
    q.add(
        f"JOIN {p}_links s ON s.row_id = r.row_id AND s.rel = 'speaker' "
        f"LEFT JOIN {p}_rows a ON a.kind = 'actor' AND a.ref = s.value AND"
    )
    visible(q, "a", at).add("ORDER BY d.start_at, d.first_pos")
    decode = msgspec.Raw if raw else json.loads
    actors: dict[str, dict[str, str]] = {}
    said: dict[str, list[tuple[Any, Any]]] = {}  # by speaker: (occurred start, record)
    for slug, profile, body, start_at in view.query(q.text, q.params):
        if slug not in actors:
            actor = json.loads(profile) if profile is not None else {"name": slug, "kind": "person"}
            actors[slug] = {"id": slug, "name": actor["name"], "kind": actor["kind"]}
        said.setdefault(slug, []).append((start_at, decode(body)))
    speakers: list[dict[str, Any]] = [
        {
            "actor": actors[slug],
            "count": len(records),
            # As each record's occurred_at says: the UTC start of its occurred time.
            "first_at": utc_text(parse_utc(records[0][0])),
            "last_at": utc_text(parse_utc(records[-1][0])),
            "records": [record for _, record in records],
        }
        for slug, records in said.items()
    ]
    speakers.sort(key=lambda s: (-s["count"], s["actor"]["name"]))
    return {"topic": {"id": topic, "label": found["label"]}, "speakers": speakers}
