"""An analyst's offline replay: the timeline's view rebuilt from the event log in memory, then
asked the same questions the API answers, written to JSON, NDJSON or CSV; and exports of
the timeline (backfill NDJSON that re-imports with the same ids, CSV, TimelineJS)."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import datetime
from typing import Any

from domain.application import Timeline
from projections.answers import said_page
from projections.sqlite import MEMORY, SqliteDatabase, SqliteView
from projections.timeline import TimelineProjection
from projections.view import TimelineQuery, TimelineView
from projections.workers import Runner

QUESTIONS = ("timeline", "who-said-what")  # what `timeline replay` answers
FORMATS = ("json", "ndjson", "csv")
EXPORTS = ("ndjson", "csv", "timelinejs", "events")  # events: service/files/backup.py


def replay(app: Timeline) -> TimelineView:
    """The timeline's view, rebuilt in memory from every event in the log."""
    view = SqliteView(SqliteDatabase(MEMORY))
    view.create_tables()
    Runner(app, TimelineProjection(view), batch_size=2000).catch_up()
    return view


def position_for(
    view: TimelineView, as_of: datetime | None, as_of_position: int | None
) -> int | None:
    if as_of_position is not None:
        return as_of_position
    if as_of is not None:
        return view.position_at(as_of)[0]  # replayed to the head: final
    return None


def all_items(view: TimelineView, query: TimelineQuery) -> list[dict[str, Any]]:
    """Every page of a timeline query."""
    out: list[dict[str, Any]] = []
    after = None
    while True:
        page = view.page(TimelineQuery(**{**_fields(query), "after": after, "limit": 500}))
        out += [json.loads(i) for i in page.items]
        if page.next is None:
            return out
        after = page.next


def _fields(query: TimelineQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in TimelineQuery.__slots__}


def who_said(view: TimelineView, topic: str, query: TimelineQuery) -> dict[str, Any] | None:
    """The whole answer, as the API's one page that holds every record."""
    answer = view.who_said_what(topic, (query.since, query.until), query.at)
    if answer is None:
        return None
    every = sum(speaker["count"] for speaker in answer["speakers"])
    return {**said_page(answer, 0, every)[0], "next_cursor": None}


CSV_COLUMNS = (
    "kind",
    "id",
    "key",
    "occurred_at",
    "occurred_precision",
    "occurred_as_given",
    "who",
    "title",
    "quote",
    "summary",
    "channel",
    "location",
    "topics",
    "sources",
    "version",
    "position",
    "recorded_at",
)


def items_csv(items: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for item in items:
        who = item.get("speaker") or item.get("by") or item.get("participants") or []
        names = [who["name"]] if isinstance(who, dict) else [a["name"] for a in who]
        writer.writerow(
            [
                item["kind"],
                item["id"],
                item["key"],
                item["occurred_at"],
                item["occurred_precision"],
                item["occurred_as_given"],
                "; ".join(names),
                item.get("title", ""),
                item.get("quote", ""),
                item.get("summary", ""),
                item.get("channel", ""),
                item.get("location", ""),
                " ".join(item.get("topics", [])),
                " ".join(s["url"] for s in item.get("sources", [])),
                item["version"],
                item["position"],
                item["recorded_at"],
            ]
        )
    return out.getvalue()


def write_answer(answer: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(answer, ensure_ascii=False, indent=2) + "\n"
    items = answer if isinstance(answer, list) else _records_of(answer)
    if fmt == "ndjson":
        return "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items)
    return items_csv(items)


def _records_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for s in answer.get("speakers", []) for r in s["records"]]


# Exports ---------------------------------------------------------------------------------


def backfill_lines(view: TimelineView, at: int | None) -> list[dict[str, Any]]:
    """The store's actors, topics and current records as backfill lines: an empty store
    that imports them has the same record ids and the same answers."""
    lines: list[dict[str, Any]] = []
    for actor in view.actors(at, 10**9, None):
        lines.append(
            {
                "type": "actor",
                "id": actor["id"],
                "name": actor["name"],
                "kind": actor["kind"],
                "aliases": actor["aliases"],
                "roles": actor["roles"],
            }
        )
    for topic in view.topic_tree(at):
        line = {"type": "topic", "id": topic["id"], "label": topic["label"]}
        for optional in ("parent", "description"):
            if topic.get(optional):
                line[optional] = topic[optional]
        lines.append(line)
    for item in all_items(view, TimelineQuery(at=at)):
        lines.append(_record_line(item))
    return lines


_DERIVED = {
    "kind",
    "id",
    "occurred_at",
    "occurred_precision",
    "occurred_as_given",
    "version",
    "position",
    "recorded_at",
    "first_recorded_at",
    "occurrence_kind",
    "topic_labels",
}


def _record_line(item: dict[str, Any]) -> dict[str, Any]:
    line: dict[str, Any] = {"type": item["kind"], "key": item["key"]}
    for name, value in item.items():
        if name in _DERIVED or name == "key":
            continue
        if name == "speaker":
            line[name] = value["id"]
        elif name in ("by", "participants", "mentions"):
            line[name] = [a["id"] for a in value]
        else:
            line[name] = value
    line["occurred_at"] = item["occurred_as_given"]
    if item["kind"] == "occurrence":
        line["kind"] = item["occurrence_kind"]
    return line


def timelinejs(items: list[dict[str, Any]], title: str) -> dict[str, Any]:
    """The Knight Lab TimelineJS JSON format. TimelineJS renders headlines and texts as
    HTML: every text in them is escaped, and a source is a link only to an http(s)
    address (any other, a URN say, is shown as text)."""
    events = []
    for item in items:
        date = _tl_date(item["occurred_as_given"])
        who = item.get("speaker") or item.get("by") or []
        names = [who["name"]] if isinstance(who, dict) else [a["name"] for a in who]
        headline = item.get("title") or ", ".join(names) or item["kind"]
        text = (item.get("quote") and f"“{item['quote']}”") or item.get("summary", "")
        sources = "".join(_source(s) for s in item.get("sources", []))
        events.append(
            {
                "start_date": date,
                "unique_id": item["id"],
                "group": item["kind"],
                "text": {"headline": _escape(headline), "text": _escape(text) + sources},
            }
        )
    return {"title": {"text": {"headline": _escape(title)}}, "events": events}


def _source(source: dict[str, Any]) -> str:
    publisher, url = _escape(source["publisher"]), str(source["url"])
    if _WEB.fullmatch(url):
        return f'<p><a href="{_escape(url)}">{publisher}</a></p>'
    return f"<p>{publisher}: {_escape(url)}</p>"


# An address a link may go to: http(s), with nothing a browser would drop or read twice.
_WEB = re.compile(r"https?://[^\s\x00-\x1f\x7f]+", re.IGNORECASE)


def _tl_date(given: str) -> dict[str, str]:
    date: dict[str, str] = {"year": given[:4]}
    if len(given) >= 7:
        date["month"] = str(int(given[5:7]))
    if len(given) >= 10:
        date["day"] = str(int(given[8:10]))
    return date


def _escape(text: str) -> str:
    return html.escape(text, quote=True)
