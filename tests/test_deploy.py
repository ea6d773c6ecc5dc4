"""What an install and a container get: every library the code imports is declared, the lock
file pins each runtime dependency with hashes, the Dockerfile installs from it as a user
that is not root, and compose.yaml is valid compose with a healthcheck on each service."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement

from tests.projections.workers_support import wait_until
from tests.reliability.serving import TIMELINE, environment

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("domain", "projections", "service", "drafting")


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalised (PEP 503)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group()).lower()


def _runtime_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_name(r) for r in project["dependencies"]}


def _imported_modules() -> dict[str, str]:
    """Each top-level module the code imports, and one file that imports it."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_library_the_code_imports_is_a_declared_runtime_dependency() -> None:
    declared = _runtime_dependencies()
    provided = importlib.metadata.packages_distributions()
    undeclared = {}
    for module, where in _imported_modules().items():
        if module in sys.stdlib_module_names or module in PACKAGES:
            continue
        if not {_name(d) for d in provided.get(module, [])} & declared:
            undeclared[module] = where
    assert undeclared == {}


def _lock() -> dict[str, tuple[str, list[str]]]:
    """Each distribution pinned in requirements.lock: its version and hashes."""
    pinned: dict[str, tuple[str, list[str]]] = {}
    text = (ROOT / "requirements.lock").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.match(r"([A-Za-z0-9._-]+)==(\S+)", line)
        assert match, f"requirements.lock: not a pinned requirement: {line}"
        pinned[_name(match.group(1))] = (match.group(2), re.findall(r"--hash=sha256:\w{64}", line))
    return pinned


def test_the_lock_pins_every_runtime_dependency_within_its_range_with_hashes() -> None:
    pinned = _lock()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for text in project["dependencies"]:
        requirement = Requirement(text)
        name = _name(requirement.name)
        assert name in pinned, f"{name} is not in requirements.lock: refresh it (docs/deploy.md)"
        version = pinned[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (name, version)
        for extra in requirement.extras:  # psycopg[binary]: what the extra brings is pinned
            assert _name(f"{requirement.name}-{extra}") in pinned, text
    assert all(hashes for _, hashes in pinned.values())


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in joined.splitlines()
        if line.strip()
    ]


def test_the_image_installs_from_the_lock_runs_as_a_user_and_checks_ready() -> None:
    steps = _instructions()
    runs = [arg for op, arg in steps if op == "RUN"]
    # Every dependency from the lock, each file checked against its hash; nothing else.
    assert any(
        "pip install" in run
        and "--require-hashes" in run
        and "-r requirements.lock" in run
        and "--no-deps" in run
        for run in runs
    )
    for run in runs:
        if "pip install" in run and "requirements.lock" not in run:
            assert "--no-deps" in run, run
    # The last USER is not root, and comes before the command.
    users = [i for i, (op, _) in enumerate(steps) if op == "USER"]
    assert users, "the image runs as root"
    assert steps[users[-1]][1].strip().split(":")[0] not in ("root", "0")
    assert users[-1] < max(i for i, (op, _) in enumerate(steps) if op == "CMD")
    # A healthcheck that asks /ready with the standard library.
    (check,) = [arg for op, arg in steps if op == "HEALTHCHECK"]
    assert "CMD" in check and "urllib.request" in check and ":8000/ready" in check


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_compose_yaml_is_valid_compose() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(ROOT / "compose.yaml"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_checks_the_apis_readiness_and_the_projectors_heartbeat() -> None:
    services = _compose()["services"]
    assert ":8000/ready" in " ".join(services["api"]["healthcheck"]["test"])
    projector = services["projector"]
    beat = projector["command"][projector["command"].index("--heartbeat") + 1]
    assert beat in " ".join(projector["healthcheck"]["test"])


def test_the_projectors_healthcheck_passes_while_it_leads_or_stands_by_and_fails_after(
    tmp_path: Path,
) -> None:
    env = environment(TIMELINE_DATABASE_URL=f"sqlite:///{tmp_path}/store")
    subprocess.run([TIMELINE, "seed"], env=env, check=True, capture_output=True)
    projector = _compose()["services"]["projector"]
    beat = projector["command"][projector["command"].index("--heartbeat") + 1]
    command, *args = projector["healthcheck"]["test"][1:]  # after "CMD"

    def healthy(path: Path) -> bool:
        here = [a.replace(beat, str(path)) for a in args]
        return subprocess.run([sys.executable, *here], capture_output=True).returncode == 0

    assert command == "python"
    beats = [tmp_path / "leader.beat", tmp_path / "standby.beat"]
    assert not healthy(beats[0])  # no heartbeat yet: not healthy
    workers = [
        subprocess.Popen(
            [TIMELINE, "project", "--heartbeat", str(path)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for path in beats
    ]
    try:
        # Both are healthy: one leads, the other stands by.
        wait_until("both workers beat", lambda: all(healthy(p) for p in beats), processes=workers)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(30)
    # Stopped: once its heartbeat is older than the check allows, it is not healthy.
    old = time.time() - 31
    os.utime(beats[0], (old, old))
    assert not healthy(beats[0])


def test_the_lock_was_made_by_the_command_the_docs_give() -> None:
    header = (ROOT / "requirements.lock").read_text().splitlines()[1]
    made_by = header.removeprefix("#").strip()
    assert made_by.startswith("uv pip compile pyproject.toml --generate-hashes")
    docs = " ".join((ROOT / "docs" / "deploy.md").read_text().replace("\\\n", " ").split())
    assert made_by in docs
