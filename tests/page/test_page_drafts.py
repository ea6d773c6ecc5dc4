"""The Drafts tab in Chromium, on the demo: an article pasted, its drafts reviewed (a
topic added, one without a speaker refused, one dropped, one stored already left out),
the kept ones recorded through the API — once, however often the button is pressed —
and nothing the article says run as markup."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Dialog, Page

from tests.page.conftest import Served, open_page, start_demo, watched

ARTICLE = (
    "Harbour talks resume\n\n"
    "Nato Secretary General Mark Rutte said allies must “spend more, and spend it faster”.\n\n"
    "Olga Marsh, a fisheries expert, said the deal was “<img src=x onerror=alert(1)>”.\n\n"
    "The weather was calm and nobody said anything else.\n\n"
    "Earlier, Trump said there was now a “good possibility” of ending the war."
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # One store is enough here: POST /drafts and the record writes are tested on each.
    yield from start_demo(tmp_path_factory.mktemp("drafts"), None)


def test_drafts_are_reviewed_and_the_kept_ones_recorded_once(demo: Served, page: Page) -> None:
    outside, errors = watched(page, demo.base)
    dialogs: list[str] = []

    def dismissed(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismissed)
    open_page(page, f"{demo.base}/?view=drafts")
    # Paste the article: two drafts, the unknown speaker left blank, never guessed.
    page.fill("#d-text", ARTICLE)
    page.fill("#d-published", "2025-02-13T18:00Z")
    page.fill("#d-url", "https://news.example/live/harbour")
    page.fill("#d-publisher", "Example News")
    page.fill("#d-key", demo.key)
    page.click("#draft-form button[type=submit]")
    page.wait_for_selector("#drafts li.draft >> nth=2")
    rows = page.locator("#drafts li.draft")
    assert rows.count() == 3
    rutte, marsh, stored_already = rows.nth(0), rows.nth(1), rows.nth(2)
    # The seed holds Trump's remark: its draft starts dropped, so it is not stored twice.
    assert stored_already.locator(".d-drop").is_checked()
    assert rutte.locator(".d-speaker").input_value() == "mark-rutte"
    assert marsh.locator(".d-speaker").input_value() == ""
    # The quoted markup is text in a field and in the sentence, never an element.
    assert "<img" in marsh.locator(".draft-sentence").inner_text()
    assert page.locator("#view-drafts img").count() == 0
    # Review: a topic added to the first; the second, with no speaker, is refused.
    rutte.locator(".d-topics").fill("defence-spending")
    page.click("#drafts-record")
    page.wait_for_selector("#drafts-summary:has-text('1 recorded')")
    assert marsh.locator(".draft-result").inner_text().startswith("Not recorded: name who")
    assert stored_already.locator(".draft-result").inner_text() == ""
    key = rutte.get_attribute("data-key")
    stored = demo.get(f"/statements/by-key/{key}").json()
    assert stored["speaker"]["id"] == "mark-rutte" and stored["topics"] == ["defence-spending"]
    assert stored["quote"] == "spend more, and spend it faster"
    # The second dropped and the button pressed again: already recorded, nothing stored.
    events = len(demo.get("/events", after=0, limit=500).json()["events"])
    marsh.locator(".d-drop").check()
    page.click("#drafts-record")
    page.wait_for_selector("#drafts-summary:has-text('0 recorded, 1 already recorded, 0 not')")
    assert rutte.locator(".draft-result").inner_text() == "Already recorded."
    assert len(demo.get("/events", after=0, limit=500).json()["events"]) == events
    assert dialogs == [] and outside == [] and errors == []
    # A refusal of the service names the field it is about (the browser logs the 422).
    rutte.locator(".d-when").fill("the other day")
    page.click("#drafts-record")
    page.wait_for_selector("#drafts-summary:has-text('1 not recorded')")
    assert "(occurred_at)" in rutte.locator(".draft-result").inner_text()
    assert all("422" in e for e in errors)
