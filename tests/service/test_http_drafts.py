"""`POST /drafts` on every store: the seed page's statements drafted with the stored
actors, nothing stored; a draft a person accepts is recorded once however often it is
sent; what is not an article is a problem naming its field."""

from __future__ import annotations

from typing import Any

import pytest

from service.files.backfill import SEED_DIR
from tests.service.conftest import Api
from tests.service.test_http_api import assert_problem

ARTICLE = (SEED_DIR.parent / "seed-gold" / "article.txt").read_text(encoding="utf-8")
BODY = {"published_at": "2025-02-13T18:00:00Z", "url": "https://news.example/live/1"}


def drafted(api: Api, **body: Any) -> dict[str, Any]:
    response = api.post("/drafts", {**BODY, **body})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_the_seed_page_drafts_with_stored_actors_and_stores_nothing(api: Api) -> None:
    api.read("/actors")  # the view has read the seed
    head = api.services.timeline.head_position()
    drafts = drafted(api, text=ARTICLE)["drafts"]
    said = {(d.get("speaker") or d["by"][0], d.get("quote")) for d in drafts}
    assert ("mark-rutte", "grab another square mile") in said
    assert ("valerii-pekar", "Surrender is not an option") in said
    stored = next(d for d in drafts if d.get("quote") == "good possibility")
    assert (
        stored["draft"]["existing"]
        == api.read("/statements/by-key/trump-good-possibility-ending-war").json()["id"]
    )
    assert api.services.timeline.head_position() == head


def test_an_accepted_draft_is_recorded_once_however_often_it_is_sent(api: Api) -> None:
    text = "Mark Rutte said allies must “spend more, and spend it faster” this year."
    (draft,) = drafted(api, text=text)["drafts"]
    body = {k: v for k, v in draft.items() if k not in ("type", "draft")}
    first = api.post("/statements", body)
    again = api.post("/statements", body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True and again.json()["id"] == first.json()["id"]


def test_html_is_read_as_its_text(api: Api) -> None:
    html = "<p>Mark Rutte said it was <b>“a good day”</b>.</p><script>said()</script>"
    answer = drafted(api, html=html)
    assert "<" not in answer["text"] and "said()" not in answer["text"]
    assert [d["quote"] for d in answer["drafts"]] == ["a good day"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "x", "html": "<p>x</p>"}, "text"),
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "a\u0000b"}, "text"),
        ({"text": "Rutte said so.", "published_at": "2025-02-13T18:00"}, "published_at"),
        ({"text": "Rutte said so.", "published_at": "2025-02-13"}, "published_at"),
        ({"text": "Rutte said so.", "url": "ftp://x"}, "url"),
        ({"text": "Rutte said so.", "speaker": "mark-rutte"}, "speaker"),
    ],
)
def test_what_is_not_an_article_is_a_problem_naming_its_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    assert_problem(api.post("/drafts", {**BODY, **body}), 422, field)


def test_drafting_needs_a_write_key_and_a_bounded_body(api: Api) -> None:
    assert_problem(api.post("/drafts", {**BODY, "text": "x"}, who=None), 401)
    assert_problem(api.post("/drafts", {**BODY, "text": "x"}, who="read"), 403)
    assert_problem(api.post("/drafts", {**BODY, "text": "word " * 300_000}), 413)
