"""The analyst's page on the demo, in Chromium: the seed drawn on the axis, the record as
known on any position, what changed, a record's history, filters, live updates, and
nothing a user wrote ever run as markup."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Dialog, Page

from tests.page.conftest import Served, open_page, watched

CORRECTED = "trump-would-love-russia-back-in-g7"
OLD_SUMMARY = "Trump said he would love for Russia to rejoin the G7 group."
TWICE = "trump-love-russia-back-in-g7-entered-twice"
TWICE_SUMMARY = "Trump said he would love to have Russia back in the G7."


def settle(page: Page) -> None:
    page.wait_for_selector("body[data-busy='0']", state="attached")


def listed(page: Page) -> str:
    return page.locator("#records").inner_text()


def change_of(demo: Served, change: str, key: str) -> dict[str, Any]:
    items = demo.get("/changes", change=change, limit=500).json()["items"]
    (found,) = [c for c in items if c["item"]["key"] == key]
    return dict(found)


def test_the_seed_is_drawn_on_the_axis_each_kind_apart(demo: Served, page: Page) -> None:
    open_page(page, f"{demo.base}/")
    ids = {i["id"] for i in demo.get("/timeline", limit=500).json()["items"]}
    drawn = set(
        page.locator("#records [data-record]").evaluate_all(
            "els => els.map(e => e.dataset.record.split(':')[1])"
        )
    )
    assert drawn == ids and len(ids) >= 34
    for kind in ("statement", "announcement", "occurrence"):
        assert page.locator(f".vis-item.kind-{kind}").count() > 0
    assert int(page.locator("#timeline").get_attribute("data-items") or 0) >= len(ids)
    # The state is in the URL: the window drawn, so a link shows the same.
    query = parse_qs(urlsplit(page.url).query)
    assert query["start"][0] < "2014-02-27" and query["end"][0] > "2025-02-13"
    # A date of day precision is the span of that day; an occurrence with an end, its
    # whole span (27 February to 18 March 2014: 20 days).
    open_page(
        page, f"{demo.base}/?actor=russia&start=2014-02-15T00:00:00Z&end=2014-04-01T00:00:00Z"
    )
    seizure = page.locator(".vis-item.vis-range", has_text="Russian forces seize Crimea").first
    annexed = page.locator(".vis-item.vis-range", has_text="Russia annexes Crimea").first
    width = seizure.bounding_box()["width"] / annexed.bounding_box()["width"]  # type: ignore[index]
    assert 18 < width < 22


def test_the_slider_shows_the_record_as_known_then(demo: Served, page: Page) -> None:
    corrected = change_of(demo, "corrected", CORRECTED)
    added = change_of(demo, "added", TWICE)
    retracted = change_of(demo, "retracted", TWICE)
    assert corrected["fields"] == ["summary"]
    open_page(page, f"{demo.base}/")
    assert corrected["item"]["summary"] in listed(page)
    assert OLD_SUMMARY not in listed(page) and TWICE_SUMMARY not in listed(page)
    slider = page.locator("#known-slider")
    # Before the correction: the old summary, and the record entered twice, not yet retracted.
    slider.fill(str(corrected["position"] - 1))
    settle(page)
    assert retracted["position"] < corrected["position"]
    assert OLD_SUMMARY in listed(page) and corrected["item"]["summary"] not in listed(page)
    assert f"position {corrected['position'] - 1}" in page.locator("#known-readout").inner_text()
    assert parse_qs(urlsplit(page.url).query)["as_of_position"] == [str(corrected["position"] - 1)]
    slider.fill(str(added["position"]))
    settle(page)
    assert TWICE_SUMMARY in listed(page)
    # Before the first load: nothing at all.
    slider.fill("0")
    settle(page)
    assert page.locator(".vis-item").count() == 0
    assert page.locator("#records [data-record]").count() == 0
    assert "before anything was recorded" in page.locator("#known-readout").inner_text()
    # An instant in the date field maps to a position, shown; the whole page redraws.
    page.fill("#known-date", "2000-01-01T00:00:00Z")
    page.click("#known-go")
    settle(page)
    assert page.locator("#records [data-record]").count() == 0
    page.click("#known-now")
    settle(page)
    assert corrected["item"]["summary"] in listed(page)


def test_a_shared_link_opens_the_same_view(demo: Served, page: Page) -> None:
    open_page(page, f"{demo.base}/?topic=g7&kind=statement&view=who")
    assert page.locator("#f-topic").input_value() == "g7"
    assert page.locator("#tab-who").get_attribute("aria-selected") == "true"
    speakers = demo.get("/topics/g7/who-said-what").json()["speakers"]
    columns = page.locator("#who .speaker h3").all_inner_texts()
    assert [c.split(" (")[0] for c in columns] == [s["actor"]["name"] for s in speakers]


def test_a_topic_filter_narrows_the_items(demo: Served, page: Page) -> None:
    open_page(page, f"{demo.base}/")
    before = page.locator("#records [data-record]").count()
    page.select_option("#f-topic", "g7")
    settle(page)
    expected = {i["id"] for i in demo.get("/timeline", topic="g7", limit=500).json()["items"]}
    drawn = set(
        page.locator("#records [data-record]").evaluate_all(
            "els => els.map(e => e.dataset.record.split(':')[1])"
        )
    )
    assert drawn == expected and 0 < len(drawn) < before
    assert "topic=g7" in page.url
    # One row per topic: the rows are the topics' labels.
    page.check("input[name=rows][value=topic]")
    settle(page)
    assert "G7 and G8" in page.locator(".vis-label").all_inner_texts()


def test_clicking_an_item_opens_its_history_with_a_word_diff(demo: Served, page: Page) -> None:
    open_page(page, f"{demo.base}/")
    page.locator(".vis-item", has_text="would love").first.click()
    settle(page)
    panel = page.locator("#panel")
    assert panel.is_visible()
    versions = panel.locator(".history .version").all_inner_texts()
    assert [v.split(" · ")[1].split(" ")[0] for v in versions] == [
        "Recorded",
        "Corrected",
        "SourceAdded",
    ]
    assert "by demo-review" in versions[1] and "Reason: the summary now says" in versions[1]
    assert "Speaking to reporters" in " ".join(panel.locator(".diff ins").all_inner_texts())
    assert "group." in " ".join(panel.locator(".diff del").all_inner_texts())
    # The speaker with the role held that day; sources listed, a urn not made a link.
    assert "Donald Trump — President" in panel.inner_text()
    assert panel.locator(".sources li").count() == 2
    assert panel.locator(".sources a").count() == 0
    assert "record=statement" in page.url
    page.keyboard.press("Escape")
    assert not panel.is_visible()


def test_the_changes_view_lists_and_marks_what_changed(demo: Served, page: Page) -> None:
    open_page(page, f"{demo.base}/?view=changes")
    assert page.locator("#changes .change-corrected", has_text="summary").count() >= 1
    assert page.locator("#changes .change-retracted").count() >= 1
    assert page.locator("#changes .change-sourced").count() >= 1
    assert page.locator(".vis-item.changed").count() > 0
    # Between two positions: only what changed then.
    corrected = change_of(demo, "corrected", CORRECTED)
    page.fill("#c-from", str(corrected["position"] - 1))
    page.fill("#c-to", str(corrected["position"]))
    page.click("#changes-form button[type=submit]")
    settle(page)
    assert page.locator("#changes li").count() == 1
    assert page.locator("#changes li.change-corrected", has_text="fields: summary").count() == 1


def test_the_retracted_are_hidden_or_struck_through(demo: Served, page: Page) -> None:
    open_page(page, f"{demo.base}/")
    assert TWICE_SUMMARY not in listed(page)
    page.check("#f-retracted")
    settle(page)
    struck = page.locator("#records .retracted .struck", has_text=TWICE_SUMMARY)
    assert struck.count() == 1
    assert page.locator(".vis-item.retracted").count() >= 1


def test_a_hostile_record_appears_live_as_text(demo: Served, page: Page) -> None:
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    open_page(page, f"{demo.base}/?topic=g7")
    hostile = '<img src=x onerror="window.pwned=1;alert(1)">'
    demo.post(
        "/statements",
        {
            "speaker": "donald-trump",
            "channel": "press-conference",
            "quote": hostile,
            "summary": "<script>window.pwned=2</script>",
            "occurred_at": "2025-02-13",
            "topics": ["g7"],
            "sources": [
                {
                    "publisher": "<b>Wire</b>",
                    "url": "urn:x:<script>alert(3)</script>",
                    "excerpt": hostile,
                },
                {"publisher": "Example", "url": "https://example.org/a?b=<i>"},
            ],
        },
    )
    # Live: it appears without a reload.
    page.wait_for_function(
        "text => document.getElementById('records').innerText.includes(text)", arg=hostile
    )
    settle(page)
    page.locator("#records button", has_text=hostile).click()
    settle(page)
    assert page.locator("img").count() == 0 and page.locator("script:not([src])").count() == 0
    assert page.locator("b, i").count() == 0
    assert page.evaluate("window.pwned") is None and dialogs == []
    links = page.locator("#panel .sources a")
    assert links.count() == 1 and links.first.get_attribute("href", timeout=1000) == (
        "https://example.org/a?b=%3Ci%3E"
    )
    assert "urn:x:<script>alert(3)</script>" in page.locator("#panel .sources").inner_text()


def test_the_page_needs_nothing_but_the_service(demo: Served, page: Page) -> None:
    outside, errors = watched(page, demo.base)
    open_page(page, f"{demo.base}/")
    assert int(page.locator("#timeline").get_attribute("data-items") or 0) >= 34
    assert page.locator(".vis-item").count() > 0
    assert outside == [] and errors == []
    assert page.evaluate("window.violations || []") == []
    policy = demo.get("/").headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


def test_it_reads_at_a_phones_width_and_by_keyboard(demo: Served, page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    open_page(page, f"{demo.base}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    first = page.locator("#records button").first
    first.focus()
    page.keyboard.press("Enter")
    settle(page)
    assert page.locator("#panel").is_visible()
    assert page.evaluate("document.activeElement.id") == "panel-close"
    page.keyboard.press("Escape")
    assert not page.locator("#panel").is_visible()


def test_who_said_what_shows_every_record_when_they_fill_more_than_a_page(
    demo: Served, page: Page
) -> None:
    # A topic of 520 statements, more than the 500 a page of who-said-what holds: 300 of
    # Trump's, then 220 of Hegseth's, whose records run on from the first page.
    topic = "paged-topic"
    demo.post("/topics", {"id": topic, "label": "Paged"})
    for n in range(520):
        speaker = "donald-trump" if n < 300 else "pete-hegseth"
        last = demo.post(
            "/statements",
            {
                "speaker": speaker,
                "summary": f"Remark {n}",
                "occurred_at": f"{2000 + n // 28}-01-{1 + n % 28:02d}",
                "channel": "interview",
                "topics": [topic],
                "sources": [{"publisher": "BBC News", "url": "https://www.bbc.com/news"}],
            },
        )
    path = f"/topics/{topic}/who-said-what"
    first = demo.get(path, limit=500, min_position=last["position"]).json()
    assert first["next_cursor"] is not None
    # The page follows the cursor: one column a speaker, each with all its records.
    open_page(page, f"{demo.base}/?topic={topic}&view=who")
    columns = page.locator("#who .speaker")
    assert columns.locator("h3").all_inner_texts() == ["Donald Trump (300)", "Pete Hegseth (220)"]
    assert [columns.nth(n).locator("li").count() for n in range(2)] == [300, 220]
