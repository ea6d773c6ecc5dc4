from __future__ import annotations

from typing import Any

import pytest

from domain.application import Timeline
from domain.writers import Author, writing_as

BBC = {"publisher": "BBC News", "url": "https://www.bbc.com/news/live/example"}


def statement(**overrides: Any) -> dict[str, Any]:
    """A valid statement body; tests change what they are about."""
    body: dict[str, Any] = {
        "speaker": "mark-rutte",
        "quote": "have to make sure Putin will not try to grab another square mile",
        "occurred_at": "2025-02-13",
        "channel": "press-conference",
        "topics": ["territory"],
        "mentions": ["vladimir-putin"],
        "sources": [BBC],
    }
    body.update(overrides)
    return body


@pytest.fixture
def world(timeline: Timeline) -> Timeline:
    """A store with a few actors and a small topic tree (its writer named only here)."""
    with writing_as(Author("world-builder")):
        for slug, name, kind in [
            ("mark-rutte", "Mark Rutte", "person"),
            ("vladimir-putin", "Vladimir Putin", "person"),
            ("donald-trump", "Donald Trump", "person"),
            ("kremlin", "Kremlin", "organization"),
        ]:
            timeline.register_actor({"id": slug, "name": name, "kind": kind})
        timeline.define_topic({"id": "negotiations", "label": "Negotiations"})
        timeline.define_topic({"id": "territory", "label": "Territory", "parent": "negotiations"})
    return timeline
