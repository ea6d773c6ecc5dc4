"""The analyst's page in a real browser: Debian's Chromium driven by Playwright, against
`timeline demo` run as a user runs it, on SQLite and on PostgreSQL.

The browser is `TIMELINE_CHROMIUM` or the `chromium` on the PATH; none is downloaded. With
TIMELINE_REQUIRE_BROWSER=1 (as in CI) a browser test that would skip fails instead
(tests/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.reliability.serving import running_demo

CHROMIUM = os.environ.get("TIMELINE_CHROMIUM") or shutil.which("chromium") or ""
WAIT_MS = 30_000  # for the page to draw, on a loaded two-core machine


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Called with every test of the session: mark this folder's only.
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)


# Module-scoped: Playwright's sync API runs an event loop in the test's thread while it is
# open, and tests elsewhere start loops of their own (asyncio.run).
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM or not Path(CHROMIUM).exists():
        pytest.skip("no chromium (Debian's package) to drive")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield browser
    browser.close()


@dataclass
class Served:
    base: str
    key: str  # a write key the demo printed

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = httpx.post(
            f"{self.base}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=30,
            trust_env=False,
        )
        assert r.status_code in (200, 201), r.text
        answer: dict[str, Any] = r.json()
        return answer

    def get(self, path: str, **params: Any) -> httpx.Response:
        r = httpx.get(f"{self.base}{path}", params=params, timeout=30, trust_env=False)
        assert r.status_code == 200, r.text
        return r


def start_demo(
    home: Path, database_url: str | None, settings: dict[str, str] | None = None
) -> Iterator[Served]:
    with running_demo(home, database_url, settings) as (base, key):
        yield Served(base, key)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """`timeline demo` on its embedded SQLite store, or on a PostgreSQL schema of its own."""
    url = None
    if request.param == "postgres":
        database: str = request.getfixturevalue("postgres_database")
        url = f"{database}?schema=page_{uuid.uuid4().hex[:10]}"
    yield from start_demo(tmp_path_factory.mktemp("demo"), url)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


def open_page(page: Page, url: str) -> None:
    """Go to the page and wait until it has drawn what it was asked for."""
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector("body[data-busy='0']", state="attached")
    page.wait_for_selector(".vis-timeline")  # visible once the axis has drawn


def watched(page: Page, base: str) -> tuple[list[str], list[str]]:
    """Requests the page makes outside `base` (aborted), and the errors of its console
    and scripts; its Content-Security-Policy violations gather in `window.violations`."""
    outside: list[str] = []
    errors: list[str] = []

    def only_the_service(route: Any) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_the_service)
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "(window.violations = window.violations || []).push(e.violatedDirective))"
    )
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return outside, errors
