"""A client generated from the live document by a real generator works: openapi-python-client
reads /schema/openapi.json from `timeline demo`, with no warning, and a whole story runs
through the generated code alone — two actors and a topic, a statement, its correction,
and who said what as known before and after the correction — as docs/clients.md tells
it, its code run as written."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.reliability.serving import running_demo

DOCS = Path(__file__).resolve().parents[2] / "docs" / "clients.md"
CONFIG = DOCS.with_name("openapi-python-client.yaml")
GENERATOR = str(Path(sys.executable).with_name("openapi-python-client"))
PACKAGE = "timeline_client"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`timeline demo` as a user runs it: its URL and the write key it prints."""
    with running_demo(tmp_path_factory.mktemp("demo")) as served:
        yield served


@pytest.fixture(scope="module")
def client_package(
    demo: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModuleType]:
    """The package the generator makes from the live document, imported."""
    base, _ = demo
    out = tmp_path_factory.mktemp("generated")
    # The generator formats what it writes with ruff, found on the PATH beside it.
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    done = subprocess.run(
        [
            GENERATOR,
            "generate",
            "--url",
            f"{base}/schema/openapi.json",
            "--config",
            str(CONFIG),
            "--meta",
            "none",
            "--output-path",
            PACKAGE,
            "--fail-on-warning",
        ],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    # Not a warning, not a skipped endpoint or post hook: only its one line.
    assert said.strip() == f"Generating {PACKAGE}", said
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def story() -> str:
    """The story docs/clients.md tells, as code: its first Python block after the heading,
    on the lines it has there (so that a failure names the line of the document)."""
    text = DOCS.read_text()
    start = text.index("```python\n", text.index("## The story, through a generated client"))
    start += len("```python\n")
    code = text[start : text.index("```", start)]
    return "\n" * text[:start].count("\n") + code


@pytest.mark.usefixtures("client_package")  # importable as timeline_client meanwhile
def test_a_generated_client_tells_the_whole_story(
    demo: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, key = demo
    monkeypatch.setenv("TIMELINE_URL", base)
    monkeypatch.setenv("TIMELINE_KEY", key)
    # Two actors and a topic, a statement and its correction, who said what before and
    # after it: each step asserts what the service answers.
    code = story()
    assert "correct_statement.sync(" in code and "as_of_position=" in code
    exec(compile(code, str(DOCS), "exec"), {"__name__": "story"})
