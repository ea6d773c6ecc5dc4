"""Actor profiles: roles, aliases, counts by topic, latest records with the role then held."""

from __future__ import annotations

import json
from typing import Any

from domain.when import parse_when
from projections.rows import RowsView, parse_utc
from projections.sql import RECORD_KINDS, Sql, in_list, visible
from projections.topics import labelled
from projections.whosaid import entity

LATEST = 10


def actors(view: RowsView, at: int | None, limit: int, after: str | None) -> list[dict[str, Any]]:
    """Profiles in slug order, from the slug after `after`."""
    q = Sql().add(f"SELECT r.body FROM {view.prefix}_rows r WHERE r.kind = 'actor' AND")
    visible(q, "r", at)
    if after is not None:
        q.add("AND r.ref > %s", after)
    q.add("ORDER BY r.ref LIMIT %s", limit + 1)
    return [json.loads(b) for (b,) in view.query(q.text, q.params)]


def profile(view: RowsView, slug: str, at: int | None) -> dict[str, Any] | None:
    found = entity(view, "actor", slug, at)
    if found is None:
        return None
    p = view.prefix
    # EXISTS, not a join: a record may name the actor twice (a speaker who mentions
    # themselves) and still counts once.
    concerns = (
        f"EXISTS (SELECT 1 FROM {p}_links la WHERE la.row_id = r.row_id "
        "AND la.rel = 'actor' AND la.value = %s) AND"
    )
    q = Sql().add(
        f"SELECT lt.value, count(*) FROM {p}_rows r JOIN {p}_links lt "
        f"ON lt.row_id = r.row_id AND lt.rel = 'topic' WHERE {concerns}",
        slug,
    )
    in_list(q, "r.kind", RECORD_KINDS).add("AND")
    visible(q, "r", at).add("GROUP BY lt.value ORDER BY count(*) DESC, lt.value")
    by_topic = [{"topic": t, "count": int(n)} for t, n in view.query(q.text, q.params)]
    q = Sql().add(f"SELECT r.body FROM {p}_rows r WHERE {concerns}", slug)
    in_list(q, "r.kind", RECORD_KINDS).add("AND")
    visible(q, "r", at)
    total_q = Sql(list(q.parts), list(q.params))
    q.add("ORDER BY r.start_at DESC, r.first_pos DESC LIMIT %s", LATEST)
    found_latest = [str(b) for (b,) in view.query(q.text, q.params)]
    latest = [json.loads(b) for b in labelled(view, found_latest, at)]
    for item in latest:
        item["actor_role"] = role_at(found["roles"], item["occurred_at"])
    (count,) = view.query(
        total_q.text.replace("SELECT r.body", "SELECT count(*)", 1), total_q.params
    )[0]
    return {**found, "records": int(count), "by_topic": by_topic, "latest": latest}


def role_at(roles: list[dict[str, Any]], instant: str) -> dict[str, Any] | None:
    """The role held at an instant: since at or before it, until after it (or open)."""
    moment = parse_utc(instant)
    held = None
    for role in roles:
        since = parse_when(role["since"]).start if "since" in role else None
        until = parse_when(role["until"]).end if "until" in role else None
        if (since is None or since <= moment) and (until is None or moment < until):
            held = role
    return held
