"""The page's search field, in Chromium on the demo: it lists what `/timeline?q=` finds,
counts alike, as known on any position, is kept in the URL like the other filters, and
shows any text as text."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Dialog, Page

from tests.page.conftest import Served, open_page
from tests.page.test_page import CORRECTED, OLD_SUMMARY, change_of, listed, settle


def drawn(page: Page) -> set[str]:
    ids: list[str] = page.locator("#records [data-record]").evaluate_all(
        "els => els.map(e => e.dataset.record.split(':')[1])"
    )
    return set(ids)


def search(page: Page, text: str) -> None:
    page.fill("#f-q", text)
    page.press("#f-q", "Enter")
    settle(page)


def test_the_search_field_lists_what_the_timeline_finds_and_keeps_it_in_the_url(
    demo: Served, page: Page
) -> None:
    everything = {i["id"] for i in demo.get("/timeline", limit=500).json()["items"]}
    found = {i["id"] for i in demo.get("/timeline", q="Crimea", limit=500).json()["items"]}
    assert 0 < len(found) < len(everything)
    open_page(page, f"{demo.base}/")
    assert drawn(page) == everything
    # Words typed and entered: the records the timeline finds, counted alike.
    search(page, "Crimea")
    assert parse_qs(urlsplit(page.url).query)["q"] == ["Crimea"]
    assert drawn(page) == found
    assert page.locator("#density").inner_text() == f"{len(found)} records in view."
    strip = demo.get("/timeline/counts", q="Crimea", bucket="year").json()["total"]
    assert strip == len(found)
    # A link shows the same, with the words in the field.
    open_page(page, page.url)
    assert page.input_value("#f-q") == "Crimea"
    assert drawn(page) == found
    # Clearing the filters clears the search.
    page.click("#f-clear")
    settle(page)
    assert page.input_value("#f-q") == ""
    assert "q" not in parse_qs(urlsplit(page.url).query)
    assert drawn(page) == everything


def test_a_search_as_known_before_a_correction_finds_the_old_words(
    demo: Served, page: Page
) -> None:
    corrected = change_of(demo, "corrected", CORRECTED)
    new_summary = corrected["item"]["summary"]
    before = corrected["position"] - 1
    # The old summary said "G7 group"; the new one names the reporters it was said to.
    open_page(page, f"{demo.base}/?q=rejoin+group&as_of_position={before}")
    assert OLD_SUMMARY in listed(page)
    search(page, "rejoin reporters")
    assert OLD_SUMMARY not in listed(page) and drawn(page) == set()
    # Now: the new words find the corrected record; the old ones, nothing.
    open_page(page, f"{demo.base}/?q=rejoin+reporters")
    assert new_summary in listed(page)
    search(page, "rejoin group")
    assert drawn(page) == set()


def test_any_text_in_the_search_field_stays_text(demo: Served, page: Page) -> None:
    dialogs: list[str] = []

    def seen(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", seen)
    open_page(page, f"{demo.base}/")
    hostile = '<img src=x onerror=alert(1)> "NEAR(Crimea* -'
    search(page, hostile)
    assert page.input_value("#f-q") == hostile
    assert parse_qs(urlsplit(page.url).query)["q"] == [hostile]
    assert page.locator("img").count() == 0
    # Text with no word is refused by the service, and the page says why, as text.
    search(page, "*")
    assert "must hold a word to search for" in page.locator("#status").inner_text()
    assert dialogs == []
