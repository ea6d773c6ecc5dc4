"""Text with nothing to see is refused everywhere; the controls of bidirectional text are
refused in names, labels and titles, and kept in quotes and prose (see `rules.text`)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.service.conftest import NDJSON, Api, occurrence, statement, unique
from tests.service.test_http_api import assert_problem, assert_written, ndjson

INVISIBLE = {
    "zero-width space": "\u200b",
    "word joiner": "\u2060",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
    "spaces and joiners": " \u200b\u200d\u200c ",
    "invisible times": "\u2062\u2063",
    "Hangul filler": "\u3164",
    "Mongolian vowel separator": "\u180e",
    "variation selector": "\ufe0f",
    "tag letters": "\U000e0041\U000e0042",
    "right-to-left mark": "\u200f",
}
BIDI = {
    "LRE": "\u202a",
    "RLE": "\u202b",
    "PDF": "\u202c",
    "LRO": "\u202d",
    "RLO": "\u202e",
    "LRI": "\u2066",
    "RLI": "\u2067",
    "FSI": "\u2068",
    "PDI": "\u2069",
    "LRM": "\u200e",
    "RLM": "\u200f",
    "ALM": "\u061c",
}


def names(api: Api, text: str) -> list[tuple[str, dict[str, Any], str]]:
    """(path, body, field) for each name-like field, holding `text`."""
    record = api.post("/statements", statement(quote=unique("named")))
    assert record.status_code == 201, record.text
    slug = unique("actor").replace(" ", "-")
    source = {"publisher": "BBC", "url": "https://www.bbc.com/x"}
    return [
        ("/actors", {"id": slug, "name": text, "kind": "person"}, "name"),
        ("/actors", {"id": slug, "name": "A", "kind": "person", "aliases": [text]}, "aliases[0]"),
        ("/actors/mark-rutte/aliases", {"alias": text}, "alias"),
        ("/actors/mark-rutte/roles", {"title": text}, "role.title"),
        ("/topics", {"id": slug, "label": text}, "label"),
        ("/topics/crimea/changes", {"label": text}, "label"),
        ("/occurrences", occurrence(title=text), "title"),
        ("/statements", statement(quote=unique(), location=text), "location"),
        (
            "/statements",
            statement(quote=unique(), sources=[{**source, "publisher": text}]),
            "sources[0].publisher",
        ),
        (
            "/statements",
            statement(quote=unique(), sources=[{**source, "title": text}]),
            "sources[0].title",
        ),
        (
            f"/statements/{record.json()['id']}/corrections",
            {"changes": {"location": text}, "reason": "place"},
            "changes.location",
        ),
    ]


@pytest.mark.parametrize("what", list(INVISIBLE))
def test_text_of_only_invisible_characters_is_422_naming_the_field(api: Api, what: str) -> None:
    text = INVISIBLE[what]
    named = names(api, text)
    head = api.services.timeline.head_position()
    # Every name, and prose and quotes too: nothing to see is empty.
    prose = [
        ("/statements", statement(quote=text), "quote"),
        ("/statements", statement(quote=unique(), summary=text), "summary"),
        (
            "/topics",
            {"id": "t-" + unique().split()[-1], "label": "T", "description": text},
            "description",
        ),
    ]
    for path, body, field in [*named, *prose]:
        assert_problem(api.post(path, body), 422, field)
    # A backfill line too, rejected by its number and naming the field.
    line = {"type": "actor", "id": "invisible-actor", "name": text, "kind": "person"}
    sent = api.post("/admin/backfill", content=ndjson([line]), content_type=NDJSON, who="admin")
    assert [(r["line"], r["error"].split(":")[0]) for r in sent.json()["rejected"]] == [(1, "name")]
    # Nothing was stored.
    assert api.services.timeline.head_position() == head


@pytest.mark.parametrize("control", list(BIDI))
def test_a_bidi_control_is_refused_in_names_and_kept_in_quotes_and_prose(
    api: Api, control: str
) -> None:
    c = BIDI[control]
    named = names(api, f"Mark {c}Rutte")
    head = api.services.timeline.head_position()
    # In a name, a label, a title, a place or a publisher: 422 naming the field.
    for path, body, field in named:
        assert_problem(api.post(path, body), 422, field)
    assert api.services.timeline.head_position() == head
    # In a quote, an excerpt, a summary or a reason: kept as given.
    quote = f"{c}\u0642\u0627\u0644{c} {unique()}"
    source = {"publisher": "BBC", "url": "https://www.bbc.com/y", "excerpt": quote}
    body = statement(quote=quote, summary=f"Arabic {c}words", sources=[source])
    created = assert_written(api.post("/statements", body), 201, duplicate=False)
    api.position = created["position"]
    item = api.read(f"/statements/{created['id']}").json()
    assert (item["quote"], item["summary"], item["sources"][0]["excerpt"]) == (
        quote,
        f"Arabic {c}words",
        quote,
    )


def test_joiners_within_a_name_are_kept(api: Api) -> None:
    # A Persian word needs its zero-width non-joiner; an emoji sequence its joiner.
    joined = ["\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "\U0001f469\u200d\U0001f52c"]
    for alias in joined:
        written = api.post("/actors/valerii-pekar/aliases", {"alias": alias})
        assert written.status_code == 200, written.text
        api.position = max(api.position, written.json()["position"])
    aliases = api.read("/actors/valerii-pekar").json()["aliases"]
    assert set(joined) <= set(aliases)
