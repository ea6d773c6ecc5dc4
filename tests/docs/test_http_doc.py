"""The examples of docs/http.md run on `timeline demo` (started as the document says) and
answer the headers it shows after each of them."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.serving import running_demo

DOC = Path(__file__).resolve().parents[2] / "docs" / "http.md"
DEMO = "http://127.0.0.1:8000"


def examples() -> list[tuple[str, list[str]]]:
    """Each shell block of the document and the lines of the text block after it."""
    pairs = re.findall(r"```sh\n(.*?)```\s*```text\n(.*?)```", DOC.read_text(), re.S)
    return [(script, shown.strip().splitlines()) for script, shown in pairs]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = {"TIMELINE_CORS_ORIGINS": "http://localhost:3000"}
    with running_demo(tmp_path_factory.mktemp("http-doc"), settings=settings) as (base, _):
        yield base


def test_the_document_has_an_example_of_each_part() -> None:
    scripts = " ".join(script for script, _ in examples())
    for shown in ("Accept-Encoding: gzip", "If-None-Match", "as_of_position", "OPTIONS"):
        assert shown in scripts, shown


@pytest.mark.parametrize(("script", "shown"), examples())
def test_an_example_answers_the_headers_it_shows(demo: str, script: str, shown: list[str]) -> None:
    done = subprocess.run(
        ["bash", "-c", f"set -euo pipefail; {script.replace(DEMO, demo)}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
    lines = [line.rstrip("\r") for line in done.stdout.splitlines()]
    status, *headers = shown
    assert status in lines, done.stdout
    answered = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:])
    }
    for line in headers:
        name, _, value = line.partition(": ")
        pattern = ".+".join(re.escape(part) for part in value.split("…"))
        assert re.fullmatch(pattern, answered.get(name, "")), (line, done.stdout)
