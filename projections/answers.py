"""The shapes of the view's answers, made from what its SQL read: no SQL here.

Topics' labels spliced into stored items, the topic tree with its counts, who said what
grouped by speaker, an actor's role at an instant, the fields a change changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import msgspec

from domain.when import parse_when
from projections.rows import parse_utc, utc_text

# What every version of an item has anew: not what a change changed.
STAMPS = ("version", "position", "recorded_at")


class _Tagged(msgspec.Struct):
    """Only the topics of an item: the rest of its JSON is skipped unread."""

    topics: list[str] = []


_tagged = msgspec.json.Decoder(_Tagged).decode


def topics_of(items: list[str]) -> list[list[str]]:
    """The topics each item (stored JSON) is tagged with."""
    return [_tagged(item).topics for item in items]


def labelled(items: list[str], tagged: list[list[str]], labels: dict[str, str]) -> list[str]:
    """Items as stored (JSON), each with `topic_labels`: the label of each of its topics
    (a topic may be relabelled after the item was written). Spliced in front of the
    stored text, the rest left as it is."""
    return [
        '{"topic_labels":'
        + msgspec.json.encode({slug: labels.get(slug, slug) for slug in slugs}).decode()
        + ","
        + item[1:]
        for item, slugs in zip(items, tagged, strict=True)
    ]


def topic_tree(
    topics: dict[str, dict[str, Any]], tagged: dict[str, set[int]]
) -> list[dict[str, Any]]:
    """Every topic, depth first, with `count` (tagged directly), `total` (with
    descendants, each record once) and `depth`; `tagged`: the rows tagged with each."""
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


class _Named(msgspec.Struct):
    id: str


class _Said(msgspec.Struct):
    """Only the speakers of an item and its precision: the rest of its JSON is skipped
    unread."""

    occurred_precision: str
    speaker: _Named | None = None
    by: list[_Named] = []


_said = msgspec.json.Decoder(_Said).decode


def said_by(
    items: Iterable[tuple[str, Any]], *, raw: bool
) -> dict[str, list[tuple[Any, str, Any]]]:
    """Labelled items with their occurred starts, in order, grouped by speaker (`speaker`
    or `by`): (occurred start, its precision, record) each. `raw`: records as the stored
    JSON, to embed as they are (`msgspec.Raw`), not decoded."""
    decode = msgspec.Raw if raw else json.loads
    said: dict[str, list[tuple[Any, str, Any]]] = {}
    for body, start_at in items:
        found, record = _said(body), decode(body)
        speakers = [found.speaker.id] if found.speaker is not None else [a.id for a in found.by]
        for slug in speakers:
            said.setdefault(slug, []).append((start_at, found.occurred_precision, record))
    return said


def speakers(
    said: dict[str, list[tuple[Any, str, Any]]], actors: dict[str, dict[str, str]]
) -> list[dict[str, Any]]:
    """Who said what, by speaker: most records first, then by name."""
    out: list[dict[str, Any]] = [
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
    out.sort(key=lambda s: (-s["count"], s["actor"]["name"]))
    return out


def said_page(answer: dict[str, Any], start: int, limit: int) -> tuple[dict[str, Any], int | None]:
    """`limit` of who-said-what's records from `start`, counted through the speakers in
    their order (a record of two speakers counts for each): the speakers on the page,
    each with its records there and their `offset` among its `count`; and where the next
    page starts, when one follows."""
    end, seen, out = start + limit, 0, []
    for speaker in answer["speakers"]:
        lo, hi = max(start - seen, 0), min(end - seen, speaker["count"])
        if lo < hi:
            records = speaker["records"][lo:hi]
            out.append({**speaker, "offset": lo, "records": records})
        seen += speaker["count"]
    return {**answer, "speakers": out}, (end if seen > end else None)


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


def changed_fields(body: str, before: str) -> list[str]:
    """The item's fields whose values differ between two versions, STAMPS aside."""
    new, old = json.loads(body), json.loads(before)
    return sorted(
        k for k in new.keys() | old.keys() if k not in STAMPS and new.get(k) != old.get(k)
    )
