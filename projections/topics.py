"""The topic tree with counts: records tagged with each topic, and with it or below it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import msgspec

from projections.rows import RowsView
from projections.sql import Sql, visible


def topic_tree(view: RowsView, at: int | None) -> list[dict[str, Any]]:
    """Every topic, depth first, with `count` (tagged directly), `total` (with
    descendants, each record once) and `depth`."""
    p = view.prefix
    topics = _topics(view, at)
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
    visited: set[str] = set()

    def walk(slug: str, depth: int, extra: dict[str, Any]) -> set[int]:
        visited.add(slug)
        entry = {**topics[slug], **extra, "depth": depth, "count": len(tagged.get(slug, ()))}
        out.append(entry)
        below = set(tagged.get(slug, ()))
        for child in children.get(slug, []):
            if child not in visited:
                below |= walk(child, depth + 1, {})
        entry["total"] = len(below)
        entry["children"] = children.get(slug, [])
        return below

    for root in children.get(None, []):
        walk(root, 0, {})
    # What no root reaches is in a cycle, or below one: each cycle is listed from its
    # first topic, which says so.
    for cycle in cycles(topics):
        walk(cycle[0], 0, {"cycle": cycle})
    return out


def cycles(topics: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The cycles among topics' parents (stored before moves were serialised), each from
    its first slug, parent after parent."""
    found: list[list[str]] = []
    done: set[str] = set()
    for start in sorted(topics):
        path: list[str] = []
        at: str | None = start
        while at in topics and at not in done and at not in path:
            path.append(at)
            at = topics[at]["parent"]
        done.update(path)
        if at is not None and at in path:
            loop = path[path.index(at) :]
            first = loop.index(min(loop))
            found.append(loop[first:] + loop[:first])
    return found


def topic_cycles(view: RowsView) -> list[list[str]]:
    """The cycles of the topic tree as it stands."""
    return cycles(_topics(view, None))


def _topics(view: RowsView, at: int | None) -> dict[str, dict[str, Any]]:
    q = Sql().add(f"SELECT r.ref, r.body FROM {view.prefix}_rows r WHERE r.kind = 'topic' AND")
    return {ref: json.loads(body) for ref, body in view.query(visible(q, "r", at).text, q.params)}


class _Tagged(msgspec.Struct):
    """Only the topics of an item: the rest of its JSON is skipped unread."""

    topics: list[str] = []


_tagged = msgspec.json.Decoder(_Tagged).decode


def labelled(view: RowsView, items: list[str], at: int | None) -> list[str]:
    """Items as stored (JSON), each with `topic_labels`: the label of each of its topics
    as the topic stood at `at` (None: now), since a topic may be relabelled after the
    item was written. Spliced in front of the stored text, the rest left as it is."""
    tagged = [_tagged(item).topics for item in items]
    labels = topic_labels(view, {slug for slugs in tagged for slug in slugs}, at)
    return [
        '{"topic_labels":'
        + msgspec.json.encode({slug: labels.get(slug, slug) for slug in slugs}).decode()
        + ","
        + item[1:]
        for item, slugs in zip(items, tagged, strict=True)
    ]


def topic_labels(view: RowsView, slugs: Iterable[str], at: int | None) -> dict[str, str]:
    """The label of each of these topics, as it stood at `at` (None: now)."""
    wanted = sorted(slugs)
    if not wanted:
        return {}
    return view.fixed(("labels", *wanted), at, lambda: _read_labels(view, wanted, at))


def _read_labels(view: RowsView, wanted: list[str], at: int | None) -> dict[str, str]:
    refs, params = view.one_of("r.ref", wanted)
    q = Sql().add(
        f"SELECT r.ref, r.body FROM {view.prefix}_rows r WHERE r.kind = 'topic' AND {refs} AND",
        *params,
    )
    found = view.query(visible(q, "r", at).text, q.params)
    return {str(ref): str(json.loads(body)["label"]) for ref, body in found}
