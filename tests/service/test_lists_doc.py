"""The walks of docs/lists.md run on `timeline demo` as written (with `curl` and `jq`)
and print what the document says they print."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.reliability.serving import running_demo

DOC = Path(__file__).resolve().parents[2] / "docs" / "lists.md"
DEMO = "http://127.0.0.1:8000"


def blocks() -> list[tuple[str, str]]:
    """The document's fenced blocks: (language, text)."""
    found: list[tuple[str, str]] = []
    language: str | None = None
    lines: list[str] = []
    for line in DOC.read_text().splitlines():
        if line.startswith("```") and language is None:
            language, lines = line[3:], []
        elif line.startswith("```") and language is not None:
            found.append((language, "".join(f"{text}\n" for text in lines)))
            language = None
        elif language is not None:
            lines.append(line)
    return found


def examples() -> list[tuple[str, list[str]]]:
    """Each shell block, and what it prints: the plain block that follows it, or else
    its own `# ` lines."""
    found = []
    every = blocks()
    for (language, text), (after_language, after) in zip(
        every, [*every[1:], ("", "")], strict=True
    ):
        if language == "sh":
            comments = [
                line.removeprefix("# ") for line in text.splitlines() if line.startswith("# ")
            ]
            found.append((text, after.splitlines() if not after_language and after else comments))
    return found


def test_the_walks_of_the_lists_document_print_what_it_says(tmp_path: Path) -> None:
    assert len(examples()) >= 4
    with running_demo(tmp_path / "home") as (base, _):
        # One shell runs the blocks in turn, as a reader would paste them.
        script = "set -euo pipefail\n" + "".join(
            f"{text.replace(DEMO, base)}\necho '--- end of example ---'\n" for text, _ in examples()
        )
        done = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
        printed = done.stdout.split("--- end of example ---\n")
        for (text, expected), got in zip(examples(), printed, strict=False):
            assert [line.rstrip() for line in got.splitlines()] == expected, text
