"""The analyst's page in headless Chromium, timed from navigation to what it draws.

The page marks `timeline:strip` when it has drawn the histogram strip and
`timeline:items` when it has drawn items on the axis (`performance.mark`, whose times count
from the navigation's start). Each run is a fresh browser context: nothing cached.
"""

from __future__ import annotations

import json
import shutil
import statistics
import urllib.request
from typing import Any

WEEK = "start=2019-06-03T00:00:00.000Z&end=2019-06-10T00:00:00.000Z"
COUNTS = "/timeline/counts?bucket=day&since=2019-06-03T00:00:00Z&until=2019-06-10T00:00:00Z"
# Topics from wide to narrow: the week is filtered by the first of them whose records in
# the week the page draws (500 or fewer); a large history holds more in a week unfiltered.
TOPICS = ("", "topic-1", "topic-5", "topic-6", "topic-21", "topic-30")
DRAWN_AT_MOST = 500
TIMEOUT_MS = 60_000


def chromium() -> str | None:
    """Debian's Chromium, if installed."""
    return shutil.which("chromium")


def _mark(page: Any, name: str) -> float:
    page.wait_for_function(
        "name => performance.getEntriesByName(name).length > 0", arg=name, timeout=TIMEOUT_MS
    )
    return float(page.evaluate("name => performance.getEntriesByName(name)[0].startTime", name))


def week_filter(base: str) -> tuple[str, int]:
    """The widest topic filter (or none) under which the week holds few enough records
    for the page to draw them, and how many it holds."""
    for topic in TOPICS:
        url = base + COUNTS + (f"&topic={topic}" if topic else "")
        with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 (our own service)
            total = int(json.load(response)["total"])
        if 0 < total <= DRAWN_AT_MOST:
            return topic, total
    raise RuntimeError("no topic leaves the week few enough records to draw")


def measure(base: str, runs: int) -> dict[str, Any]:
    """Milliseconds from navigation to the first histogram (the whole history in view)
    and to the items of a one-week window: each run's figure and the medians."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    if executable is None:
        return {"skipped": "no chromium"}
    topic, in_week = week_filter(base)
    week = WEEK + (f"&topic={topic}" if topic else "")
    strip: list[float] = []
    items: list[float] = []
    week_strip: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            for _ in range(runs):
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
                page.goto(f"{base}/")
                strip.append(_mark(page, "timeline:strip"))
                context.close()
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
                page.goto(f"{base}/?{week}")
                week_strip.append(_mark(page, "timeline:strip"))
                items.append(_mark(page, "timeline:items"))
                context.close()
        finally:
            browser.close()
    return {
        "runs": runs,
        "week_topic": topic,
        "week_records": in_week,
        "first_histogram_ms": strip,
        "week_histogram_ms": week_strip,
        "week_items_ms": items,
        "first_histogram_median_ms": statistics.median(strip),
        "week_items_median_ms": statistics.median(items),
    }
