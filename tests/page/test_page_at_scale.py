"""The page over 30,000 records, ten years of them: zoomed out it draws the histogram
strip and no items; zoomed in to a week it draws that week's items. (`make bench` draws
the page over its million events.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from bench.history import write
from service.store.database import open_timeline, parse_url
from tests.page.conftest import Served, open_page, start_demo

RECORDS = 30_000


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("big")
    timeline = open_timeline(parse_url(f"sqlite:///{home}"))
    try:
        write(timeline, RECORDS)
    finally:
        timeline.close()
    yield from start_demo(Path(home), None)


def test_zoomed_out_it_draws_the_density_and_zoomed_in_the_items(big: Served, page: Page) -> None:
    open_page(page, f"{big.base}/")
    strip = page.locator("#strip")
    total = int(strip.get_attribute("data-total") or 0)
    assert total >= RECORDS
    assert strip.locator(".bar").count() > 10
    assert page.locator(".vis-item").count() == 0
    assert "zoom in" in page.locator("#density").inner_text()
    # Zoom in to one week (the window is in the URL): its items, and the strip by day.
    open_page(page, f"{big.base}/?start=2019-06-03T00:00:00.000Z&end=2019-06-10T00:00:00.000Z")
    week = big.get(
        "/timeline/counts", bucket="day", since="2019-06-03T00:00:00Z", until="2019-06-09"
    ).json()["total"]
    assert 0 < week <= 500
    assert strip.get_attribute("data-bucket") == "day"
    assert page.locator("#records [data-record]").count() >= week
    assert int(page.locator("#timeline").get_attribute("data-items") or 0) >= week
    assert page.locator(".vis-item").count() > 0
    # Zooming out with the button, past 500 in view, leaves the strip alone again.
    for _ in range(8):
        page.click("button[data-zoom='-1']")
        page.wait_for_selector("body[data-busy='0']", state="attached")
    assert page.locator(".vis-item").count() == 0
    assert page.locator("#timeline").get_attribute("data-items") == "0"
    assert int(strip.get_attribute("data-total") or 0) > 500
