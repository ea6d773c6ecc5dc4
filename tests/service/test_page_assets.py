"""The page's files as the service sends them: the document and its assets with a policy
that allows only the service itself, nothing else under /static/, and the vendored
library exactly as the manifest pins it."""

from __future__ import annotations

import re

from service.http.page import ASSETS, POLICY, WEB
from tests.service.conftest import Api
from tools import vendor_assets


def test_the_page_and_its_assets_carry_the_policy(sqlite_api: Api) -> None:
    page = sqlite_api.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == POLICY
    assert "'unsafe-inline'" not in POLICY and "'unsafe-eval'" not in POLICY
    # Every script and style the document names is one of the service's own files.
    for path in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        if path.startswith("#"):
            continue
        assert path.startswith("/static/"), path
        asset = sqlite_api.client.get(path)
        assert asset.status_code == 200, path
        assert asset.headers["content-security-policy"] == POLICY
        assert asset.headers["x-content-type-options"] == "nosniff"
    # No inline script or style in the document.
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    assert "<style" not in page.text and "style=" not in page.text
    # Revalidated by its tag.
    again = sqlite_api.client.get("/", headers={"If-None-Match": page.headers["etag"]})
    assert again.status_code == 304


def test_only_the_pages_own_files_are_served(sqlite_api: Api) -> None:
    assert set(ASSETS) == {p.relative_to(WEB).as_posix() for p in WEB.rglob("*") if p.is_file()}
    for path in ("/static/nothing.js", "/static/../page.py", "/static/%2e%2e/page.py"):
        r = sqlite_api.client.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("application/problem+json")


def test_the_vendored_libraries_are_the_ones_the_manifest_pins() -> None:
    manifest = vendor_assets.load()
    assert {name: p["version"] for name, p in manifest.items()} == {
        "moment": "2.31.0",
        "vis-data": "8.0.6",
        "vis-timeline": "8.5.4",
    }
    for package in manifest.values():
        assert package["integrity"].startswith("sha512-")
        assert package["tarball"].startswith("https://registry.npmjs.org/")
        assert any(name.startswith("LICENSE") for name in package["files"].values())
    assert vendor_assets.check(manifest) == []
    # A changed file is caught.
    timeline = manifest["vis-timeline"]
    tampered = {
        **manifest,
        "vis-timeline": {**timeline, "sha256": {**timeline["sha256"], "LICENSE.md": "0" * 64}},
    }
    assert vendor_assets.check(tampered) == [
        "vis-timeline/LICENSE.md: its SHA-256 is not the manifest's"
    ]
