"""The API's docs page (/schema) in Chromium, on the demo: every operation with its
summary, description, parameters (their descriptions and closed sets), body example and
responses, drawn from the document with nothing loaded from elsewhere, and no text of
the document run as markup."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from service.http import openapi
from tests.page.conftest import Served, start_demo, watched


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`timeline demo` on its embedded store: the page reads only the document."""
    yield from start_demo(tmp_path_factory.mktemp("demo"), None)


def open_docs(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")


def test_the_docs_page_shows_each_operation_as_a_person_reads_it(demo: Served, page: Page) -> None:
    outside, errors = watched(page, demo.base)
    open_docs(page, f"{demo.base}/schema#op-getWhoSaidWhat")
    # Every operation is listed with its summary.
    shown = page.locator("details.op > summary").all_inner_texts()
    assert len(shown) == len(openapi.OPERATIONS)
    assert any("/topics/{id}/who-said-what" in s and "Who said what" in s for s in shown)
    # The linked operation is open: its description and each parameter's.
    who = page.locator("#op-getWhoSaidWhat")
    assert who.get_attribute("open") is not None
    text = who.inner_text()
    for described in (
        openapi.OPERATIONS[("GET", "/topics/{id}/who-said-what")].description,
        openapi.PARAMETERS["as_of"],
        openapi.PARAMETERS["since"],
    ):  # `code` spans shown as code
        assert described.replace("`", "") in text
    assert who.locator("code", has_text="2025-02-13T12:00:00Z").count() == 1
    assert "application/problem+json" in text and "404" in text
    # A closed set shows its values; a body, its example.
    page.locator("#op-listTimeline > summary").click()
    assert (
        'RecordKind (one of: "statement", "announcement", "occurrence")'
        in page.locator("#op-listTimeline").inner_text()
    )
    page.locator("#op-createStatement > summary").click()
    example = page.locator("#op-createStatement pre").inner_text()
    assert '"key": "rutte-ukraine-strongest-position"' in example
    # The schemas, each field with its type.
    assert "No other fields." in page.locator("#schema-StatementIn").inner_text()
    assert outside == [] and errors == []
    assert page.evaluate("window.violations || []") == []
    # Text of the document is text: the page holds no element the document named.
    assert page.locator("#operations script, #operations img").count() == 0
