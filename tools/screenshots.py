"""Draw the page's main views to `docs/img/`, from `timeline demo` on a fresh store.

    python -m tools.screenshots [--chromium /usr/bin/chromium]

Needs Debian's `chromium` (or the browser given) and the dev dependencies (Playwright).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

OUT = Path(__file__).resolve().parent.parent / "docs" / "img"
WEEK = "start=2025-02-11T12:00:00.000Z&end=2025-02-14T12:00:00.000Z"
VIEWS = {
    "timeline": f"/?{WEEK}",
    "as-known-on": f"/?{WEEK}&retracted=1&as_of_position={{before}}",
    "record": f"/?{WEEK}&record=statement:{{corrected}}",
    "changes": f"/?{WEEK}&view=changes&from={{review}}",
    "who-said-what": f"/?{WEEK}&view=who&topic=negotiations",
}

TALL = {"changes", "who-said-what"}  # their lists are below the axis
# The drafts screen is shown the seed page's first posts.
ARTICLE = Path(__file__).resolve().parent.parent / "data" / "seed-gold" / "article.txt"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settle(page: Page) -> None:
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector("body[data-busy='0']", state="attached")
    page.wait_for_selector(".vis-timeline")  # shown once the axis has drawn
    page.wait_for_timeout(300)


def drafts(page: Page, base: str, key: str) -> None:
    """The drafts of the seed page's first posts, found and ready for review."""
    page.goto(f"{base}/?view=drafts")
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#d-text", ARTICLE.read_text(encoding="utf-8")[:2500])
    page.fill("#d-published", "2025-02-13T18:00Z")
    page.fill("#d-url", "https://www.bbc.com/news/live/example")
    page.fill("#d-publisher", "BBC News")
    page.fill("#d-key", key)
    page.click("#draft-form button[type=submit]")
    page.wait_for_selector("#drafts li.draft")
    page.wait_for_timeout(300)
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.screenshot(path=OUT / "drafts.png")
    page.set_viewport_size({"width": 1280, "height": 800})
    print(OUT / "drafts.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIMELINE_")}
        timeline = str(Path(sys.executable).with_name("timeline"))
        demo = subprocess.Popen(  # noqa: S603 (our own command line)
            [timeline, "demo", "--port", str(port)],
            env={**env, "TIMELINE_HOME": home},
            stdout=subprocess.DEVNULL,
        )
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            corrected = httpx.get(f"{base}/changes", params={"change": "corrected"}).json()
            record = corrected["items"][0]["id"]
            before = corrected["items"][0]["position"] - 1
            # The demo's review comes after the seed: the changes since the seed's last event.
            review = httpx.get(f"{base}/changes", params={"change": "retracted"}).json()
            since = review["items"][0]["position"] - 2
            made = subprocess.run(  # noqa: S603 (our own command line)
                [timeline, "keys", "create", "screenshots", "--scope", "write"],
                env={**env, "TIMELINE_HOME": home},
                capture_output=True,
                text=True,
                check=True,
            )
            key = made.stdout.split()[-1]
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                for name, path in VIEWS.items():
                    page.goto(base + path.format(corrected=record, before=before, review=since))
                    settle(page)
                    page.screenshot(path=OUT / f"{name}.png", full_page=name in TALL)
                    print(OUT / f"{name}.png")
                drafts(page, base, key)
                page.set_viewport_size({"width": 390, "height": 844})
                page.goto(f"{base}/?{WEEK}")
                settle(page)
                page.screenshot(path=OUT / "phone.png")
                print(OUT / "phone.png")
                browser.close()
        finally:
            demo.terminate()
            demo.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
