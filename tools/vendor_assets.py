"""Vendor the page's JavaScript libraries from the npm registry, pinned and checked.

`service/web/vendor/vendor.json` names each package: its version, the registry's tarball
and its `integrity` (the registry's SHA-512 of the tarball), and which files of the
package the page serves, with the SHA-256 of each as vendored.

    python -m tools.vendor_assets          # fetch each tarball, check it, write its files
    python -m tools.vendor_assets --check  # check the vendored files against vendor.json

The page loads nothing from outside the service, so the files are committed; `--check`
(run by the tests) proves they are the ones the manifest pins.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

VENDOR = Path(__file__).resolve().parent.parent / "service" / "http" / "web" / "vendor"
MANIFEST = VENDOR / "vendor.json"


def load() -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(MANIFEST.read_text())
    return manifest


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(name: str, package: dict[str, Any]) -> dict[str, str]:
    """Download a package's tarball, check its integrity, write the files the page
    serves; the SHA-256 of each, by its vendored name."""
    if not package["tarball"].startswith("https://registry.npmjs.org/"):
        raise SystemExit(f"{name}: the tarball must come from https://registry.npmjs.org/")
    with urllib.request.urlopen(package["tarball"], timeout=60) as response:  # noqa: S310
        tarball = response.read()
    algorithm, _, expected = package["integrity"].partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    if digest != expected:
        raise SystemExit(f"{name}: the tarball's {algorithm} is {digest}, not {expected}")
    hashes = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for inside, vendored in package["files"].items():
            member = archive.extractfile(f"package/{inside}")
            if member is None:
                raise SystemExit(f"{name}: {inside} is not a file of the package")
            data = member.read()
            target = VENDOR / name / vendored
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            hashes[vendored] = sha256(data)
    return hashes


def check(manifest: dict[str, Any]) -> list[str]:
    """What differs between the vendored files and the manifest (empty: nothing)."""
    problems = []
    for name, package in manifest.items():
        for vendored, expected in package["sha256"].items():
            path = VENDOR / name / vendored
            if not path.is_file():
                problems.append(f"{name}/{vendored}: missing")
            elif sha256(path.read_bytes()) != expected:
                problems.append(f"{name}/{vendored}: its SHA-256 is not the manifest's")
        if set(package["sha256"]) != set(package["files"].values()):
            problems.append(f"{name}: the manifest's files and checksums disagree")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="check, fetch nothing")
    args = parser.parse_args(argv)
    manifest = load()
    if not args.check:
        for name, package in manifest.items():
            package["sha256"] = fetch(name, package)
            print(f"{name} {package['version']}: {len(package['files'])} files")
        MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    problems = check(manifest)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
