"""Drafts against the store: the actors and topics its view knows, the records it holds
with the same speaker and quotation, and the source a draft cites."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from domain import rules
from domain.errors import InvalidInput
from domain.when import parse_when
from drafting.actors import Actor, actors_from
from drafting.drafts import Drafts, Source, extract
from projections.view import TimelineQuery, TimelineView

_PAGE = 500  # actors read at a time
_SEARCH_MAX = 500  # characters of a quotation looked up among the stored records


def published(value: str, field: str = "published_at") -> datetime:
    """An instant with its UTC offset, kept in that offset."""
    when = parse_when(value, field)
    if when.precision in ("year", "month", "day"):
        raise InvalidInput("give an instant with a UTC offset, like 2025-02-13T14:09Z", field=field)
    return when.start.astimezone(timezone(timedelta(minutes=when.offset_minutes)))


def source(
    text: str, at: datetime, url: str | None, publisher: str | None, title: str | None
) -> Source:
    """The source the drafts cite; without a URL, a URN of the text's digest."""
    if url is None:
        url = f"urn:sha256:{hashlib.sha256(text.encode()).hexdigest()}"
    url = rules.uri(url, "url")
    name = publisher if publisher is not None else urlsplit(url).hostname or "unknown"
    return Source(
        url=url,
        publisher=rules.name(name, "publisher"),
        title=None
        if title is None
        else rules.name(title, "title", max_length=rules.SOURCE_TITLE_MAX),
        published_at=at,
    )


def actors(view: TimelineView) -> list[Actor]:
    profiles, after = [], None
    while True:
        page = view.actors(None, _PAGE, after)
        profiles += page[:_PAGE]
        if len(page) <= _PAGE:
            return actors_from(profiles)
        after = page[_PAGE - 1]["id"]


def draft(view: TimelineView, text: str, cite: Source, *, html: bool | None = None) -> Drafts:
    """The drafts of a text with the store's actors and topics; nothing is stored."""
    topics = [(t["id"], t["label"]) for t in view.topic_tree(None)]

    def existing(speaker: str, quote: str) -> str | None:
        if not any(c.isalnum() for c in quote):
            return None
        found = view.page(TimelineQuery(actor=speaker, q=quote[:_SEARCH_MAX], limit=20))
        for item in map(json.loads, found.items):
            said = [item.get("speaker") or {}, *(item.get("by") or ())]
            if item.get("quote") == quote and any(s.get("id") == speaker for s in said):
                return str(item["id"])
        return None

    return extract(text, cite, actors(view), topics, existing, html=html)
