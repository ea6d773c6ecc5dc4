"""Every example of the README runs on `timeline demo` as written: each `curl` of its
shell blocks succeeds (`-f`: no 4xx or 5xx) and answers JSON, and no list in an answer is
empty — an example that shows nothing on the demo teaches nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.serving import running_demo

README = Path(__file__).resolve().parents[2] / "README.md"
DEMO = "http://127.0.0.1:8000"


def examples() -> list[str]:
    """The README's shell commands that call the demo, continuation lines joined."""
    found = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.strip()
            if command.startswith("curl ") and DEMO in command:
                found.append(command)
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with running_demo(tmp_path_factory.mktemp("readme")) as served:
        yield served


def test_the_readme_has_examples() -> None:
    commands = examples()
    assert len(commands) >= 8, commands
    assert any("-X POST" in c for c in commands)
    assert any("as_of" in c for c in commands)


@pytest.mark.parametrize("command", examples())
def test_a_readme_example_answers_on_the_demo(demo: tuple[str, str], command: str) -> None:
    base, key = demo
    done = subprocess.run(
        ["bash", "-c", f"set -euo pipefail; {command.replace(DEMO, base)}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KEY": key},
        check=False,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    answer = json.loads(done.stdout)
    assert isinstance(answer, dict), command
    empty = [name for name, value in answer.items() if value == []]
    assert not empty, f"{command} answers an empty {empty}: {done.stdout[:500]}"
