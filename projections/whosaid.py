"""Who said what: for a topic and its descendants, the speakers and their records."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar

from projections.base import RowsProjection
from projections.rows import RowsView
from projections.sql import Sql, has_topic_in_sub, subtopics, visible

SAID = ("statement", "announcement")


class WhoSaidWhatProjection(RowsProjection):
    name = "who_said_what"
    record_kinds: ClassVar[tuple[str, ...]] = SAID
    speaker_links: ClassVar[bool] = True


def entity(view: RowsView, kind: str, slug: str, at: int | None) -> dict[str, Any] | None:
    q = Sql().add(
        f"SELECT r.body FROM {view.prefix}_rows r WHERE r.kind = %s AND r.ref = %s AND", kind, slug
    )
    found = view.query(visible(q, "r", at).text, q.params)
    return json.loads(found[0][0]) if found else None


def who_said_what(
    view: RowsView, topic: str, since: datetime | None, until: datetime | None, at: int | None
) -> dict[str, Any] | None:
    """`{topic, speakers: [{actor, count, first_at, last_at, records}]}`, or None when the
    topic is not defined (then, or at all)."""
    found = entity(view, "topic", topic, at)
    if found is None:
        return None
    p = view.prefix
    q = subtopics(Sql(), p, topic, at)
    q.add(
        f"SELECT l.value, r.body FROM {p}_rows r JOIN {p}_links l ON l.row_id = r.row_id "
        "AND l.rel = 'speaker' WHERE r.kind IN ('statement', 'announcement') AND"
    )
    visible(q, "r", at)
    if since is not None:
        q.add("AND r.end_at > %s", since)
    if until is not None:
        q.add("AND r.start_at < %s", until)
    has_topic_in_sub(q.add("AND"), p)
    q.add("ORDER BY r.start_at, r.first_pos")
    by_speaker: dict[str, list[Any]] = {}
    for slug, body in view.query(q.text, q.params):
        by_speaker.setdefault(slug, []).append(json.loads(body))
    speakers = []
    for slug, records in by_speaker.items():
        actor = entity(view, "actor", slug, at) or {"id": slug, "name": slug, "kind": "person"}
        speakers.append(
            {
                "actor": {"id": slug, "name": actor["name"], "kind": actor["kind"]},
                "count": len(records),
                "first_at": records[0]["occurred_at"],
                "last_at": records[-1]["occurred_at"],
                "records": records,
            }
        )
    speakers.sort(key=lambda s: (-s["count"], s["actor"]["name"]))
    return {"topic": {"id": topic, "label": found["label"]}, "speakers": speakers}
