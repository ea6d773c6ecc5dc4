"""Who said what: for a topic and its descendants, the speakers and their records."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import msgspec

from projections.rows import RowsView, parse_utc, utc_text
from projections.sql import Sql, in_order, visible
from projections.timeline import topic_slugs
from projections.topics import labelled

SAID = ("statement", "announcement")


def entity(view: RowsView, kind: str, slug: str, at: int | None) -> dict[str, Any] | None:
    q = Sql().add(
        f"SELECT r.body FROM {view.prefix}_rows r WHERE r.kind = %s AND r.ref = %s AND", kind, slug
    )
    visible(q, "r", at)

    def read() -> dict[str, Any] | None:
        found = view.query(q.text, q.params)
        return json.loads(found[0][0]) if found else None

    return view.fixed(("entity", kind, slug), at, read)


def who_said_what(
    view: RowsView,
    topic: str,
    since: datetime | None,
    until: datetime | None,
    at: int | None,
    *,
    raw: bool = False,
) -> dict[str, Any] | None:
    """`{topic, speakers: [{actor, count, first_at, first_precision, last_at,
    last_precision, records}]}`, or None when the
    topic is not defined (then, or at all). `raw`: records as the stored JSON, to embed
    as they are (`msgspec.Raw`), not decoded."""
    found = entity(view, "topic", topic, at)
    if found is None:
        return None
    p = view.prefix
    slugs = topic_slugs(view, topic, at)
    # The records in order; each names its speakers (`speaker` or `by`) in its body.
    q = in_order("r.body, d.start_at", p, ("topic", slugs), SAID, (since, until), at)
    q.add("ORDER BY d.start_at, d.first_pos")
    decode = msgspec.Raw if raw else json.loads
    rows = view.query(q.text, q.params)
    # By speaker: (occurred start, its precision, record).
    said: dict[str, list[tuple[Any, str, Any]]] = {}
    for body, (_, start_at) in zip(labelled(view, [r[0] for r in rows], at), rows, strict=True):
        found_said, record = _said(body), decode(body)
        for slug in _speakers(found_said):
            said.setdefault(slug, []).append((start_at, found_said.occurred_precision, record))
    actors = _profiles(view, list(said), at)
    speakers: list[dict[str, Any]] = [
        {
            "actor": actors[slug],
            "count": len(records),
            # As each record's occurred_at says: the UTC start of its occurred time, and
            # to what precision it is known.
            "first_at": utc_text(parse_utc(records[0][0])),
            "first_precision": records[0][1],
            "last_at": utc_text(parse_utc(records[-1][0])),
            "last_precision": records[-1][1],
            "records": [record for _, _, record in records],
        }
        for slug, records in said.items()
    ]
    speakers.sort(key=lambda s: (-s["count"], s["actor"]["name"]))
    return {"topic": {"id": topic, "label": found["label"]}, "speakers": speakers}


def page(answer: dict[str, Any], start: int, limit: int) -> tuple[dict[str, Any], int | None]:
    """`limit` of the answer's records from `start`, counted through the speakers in their
    order (a record of two speakers counts for each): the speakers on the page, each with
    its records there and their `offset` among its `count`; and where the next page
    starts, when one follows."""
    end, seen, speakers = start + limit, 0, []
    for speaker in answer["speakers"]:
        lo, hi = max(start - seen, 0), min(end - seen, speaker["count"])
        if lo < hi:
            records = speaker["records"][lo:hi]
            speakers.append({**speaker, "offset": lo, "records": records})
        seen += speaker["count"]
    return {**answer, "speakers": speakers}, (end if seen > end else None)


class _Named(msgspec.Struct):
    id: str


class _Said(msgspec.Struct):
    """Only the speakers of an item and its precision: the rest of its JSON is skipped
    unread."""

    occurred_precision: str
    speaker: _Named | None = None
    by: list[_Named] = []


_said = msgspec.json.Decoder(_Said).decode


def _speakers(said: _Said) -> list[str]:
    return [said.speaker.id] if said.speaker is not None else [a.id for a in said.by]


def _profiles(view: RowsView, slugs: list[str], at: int | None) -> dict[str, dict[str, str]]:
    """`{id, name, kind}` of each speaker as it stood; a speaker never registered (a
    record from before the rule) is shown by its slug."""
    return view.fixed(("profiles", *slugs), at, lambda: _read_profiles(view, slugs, at))


def _read_profiles(view: RowsView, slugs: list[str], at: int | None) -> dict[str, dict[str, str]]:
    found: dict[str, Any] = {}
    if slugs:
        refs, params = view.one_of("a.ref", slugs)
        q = Sql().add(
            f"SELECT a.ref, a.body FROM {view.prefix}_rows a WHERE a.kind = 'actor' AND {refs} AND",
            *params,
        )
        found = {
            ref: json.loads(body) for ref, body in view.query(visible(q, "a", at).text, q.params)
        }
    out = {}
    for slug in slugs:
        actor = found.get(slug) or {"name": slug, "kind": "person"}
        out[slug] = {"id": slug, "name": actor["name"], "kind": actor["kind"]}
    return out
