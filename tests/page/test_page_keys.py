"""When reads need a key, the page asks for one and keeps it for the tab only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.page.conftest import WAIT_MS, Served, start_demo


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from start_demo(
        tmp_path_factory.mktemp("locked"), None, {"TIMELINE_READ_REQUIRES_KEY": "true"}
    )


def test_the_page_asks_for_a_read_key_and_keeps_it_for_the_tab(
    locked: Served, browser: Browser
) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{locked.base}/")
        page.wait_for_selector("#key-dialog[open]")
        assert page.locator(".vis-item").count() == 0
        page.fill("#key-input", "tlk_not-a-key")
        page.click("#key-form button")
        page.wait_for_selector("#key-dialog[open]")  # asked again: that key is refused
        page.fill("#key-input", locked.key)
        page.click("#key-form button")
        page.wait_for_selector("body[data-ready='1']")
        page.wait_for_selector("body[data-busy='0']", state="attached")
        assert int(page.locator("#timeline").get_attribute("data-items") or 0) >= 34
        assert page.evaluate("sessionStorage.getItem('timeline-key')") == locked.key
        assert page.evaluate("localStorage.length") == 0 and "tlk_" not in page.url
        # Another tab of the same browser has no key.
        other = context.new_page()
        other.goto(f"{locked.base}/")
        other.wait_for_selector("#key-dialog[open]")
    finally:
        context.close()
