"""The `timeline` command line as a user meets it: every option explained in `--help`,
closed sets shown as choices, one rebuild for the one view, summaries on the
terminal, `-o -` for standard output, and a demo that checks its port first."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import typer
from typer.models import ParameterInfo
from typer.testing import CliRunner

from domain.records import KINDS
from service import cli
from service.files.replay import EXPORTS, FORMATS, QUESTIONS
from service.store.keys import SCOPES
from tests.reliability.serving import TIMELINE, environment

COMMAND = [sys.executable, "-m", "service.cli"]
# Every closed set an option takes, as the code checks it.
CLOSED_SETS: list[tuple[str, ...]] = [SCOPES, FORMATS, EXPORTS, KINDS, QUESTIONS]


def _commands(app: typer.Typer, path: str = "") -> Iterator[tuple[str, Callable[..., Any]]]:
    for command in app.registered_commands:
        assert command.callback is not None
        name = command.name or command.callback.__name__.replace("_", "-")
        yield f"{path} {name}".strip(), command.callback
    for group in app.registered_groups:
        assert group.typer_instance is not None
        yield from _commands(group.typer_instance, f"{path} {group.name}".strip())


def _parameters(callback: Callable[..., Any]) -> Iterator[tuple[str, Any, Any]]:
    """Each parameter's name, its type (without None) and its typer.Option or Argument."""
    for name, hint in get_type_hints(callback, include_extras=True).items():
        if name == "return":
            continue
        if get_origin(hint) is not Annotated:
            yield name, hint, None
            continue
        kind, *extras = get_args(hint)
        info = next((x for x in extras if isinstance(x, ParameterInfo)), None)
        options = [a for a in get_args(kind) if a is not type(None)]
        yield name, options[0] if get_origin(kind) is UnionType else kind, info


def test_every_option_and_argument_has_help_and_closed_sets_show_as_choices() -> None:
    commands = dict(_commands(cli.app))
    assert {"backfill", "replay", "rebuild", "keys create", "keys revoke"} <= set(commands)
    missing, not_choices = [], []
    for path, callback in commands.items():
        shown = CliRunner().invoke(cli.app, [*path.split(), "--help"])
        assert shown.exit_code == 0, shown.output
        for name, kind, info in _parameters(callback):
            where = f"timeline {path} {name}"
            text = getattr(info, "help", None) or ""
            if not text:
                missing.append(where)
            # A help text that names two values of a closed set offers a fixed set.
            offers = any(sum(v in text for v in s) >= 2 for s in CLOSED_SETS)
            if offers and get_origin(kind) is not Literal:
                not_choices.append(where)
    assert missing == []
    assert not_choices == []


def test_each_choice_is_the_set_the_code_checks_and_help_shows_it() -> None:
    assert get_args(cli.Scope) == SCOPES
    assert get_args(cli.Format) == FORMATS
    assert get_args(cli.Export) == EXPORTS
    assert get_args(cli.Kind) == KINDS
    assert get_args(cli.ReplayModel) == QUESTIONS
    runner = CliRunner()
    shown = [
        (("keys", "create"), "read|write|admin"),
        (("replay",), "json|ndjson|csv"),
        (("replay",), "timeline|who-said-what"),
        (("export",), "ndjson|csv|timelinejs|events"),
    ]
    for args, choices in shown:
        result = runner.invoke(cli.app, [*args, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert choices in result.output


def test_rebuild_needs_no_name_and_refuses_one(tmp_path: Path) -> None:
    env = {**os.environ, "TIMELINE_DATABASE_URL": f"sqlite:///{tmp_path}/store"}
    subprocess.run([*COMMAND, "seed"], env=env, check=True, capture_output=True)
    # The one projection, once.
    done = subprocess.run([*COMMAND, "rebuild"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("timeline: rebuilt from ")
    assert done.stdout.count("rebuilt from") == 1
    # A name, as the command once took one, is refused and nothing is rebuilt.
    named = subprocess.run(
        [*COMMAND, "rebuild", "who-said-what"], env=env, capture_output=True, text=True
    )
    assert named.returncode == 2
    assert "rebuilt from" not in named.stdout
    said = "".join(named.stderr.replace("│", "").split())
    assert "extraargument(s)(who-said-what)" in said


def test_backfill_with_a_report_file_still_prints_a_summary(tmp_path: Path) -> None:
    env = {**os.environ, "TIMELINE_DATABASE_URL": f"sqlite:///{tmp_path}/store"}
    lines = tmp_path / "in.ndjson"
    good = {"type": "actor", "id": "someone", "name": "Someone", "kind": "person"}
    lines.write_text(json.dumps(good) + "\n" + "{not json\n")
    report = tmp_path / "report.json"
    done = subprocess.run(
        [*COMMAND, "backfill", str(lines), "--report", str(report)],
        env=env,
        capture_output=True,
        text=True,
    )
    # The rejected line makes the status 1; the terminal says what happened, the file how.
    assert done.returncode == 1, done.stderr
    assert "accepted 1, duplicates 0, rejected 1" in done.stdout
    assert str(report) in done.stdout
    written = json.loads(report.read_text())
    assert written["accepted"] == 1 and written["rejected"][0]["line"] == 2


def test_replay_writes_to_standard_output_given_a_dash(tmp_path: Path) -> None:
    env = {**os.environ, "TIMELINE_DATABASE_URL": f"sqlite:///{tmp_path}/store"}
    subprocess.run([*COMMAND, "seed"], env=env, check=True, capture_output=True)
    done = subprocess.run(
        [*COMMAND, "replay", "-o", "-", "--since", "2014-03-01", "--format", "ndjson"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[0])["title"] == "Russia annexes Crimea"
    assert not (tmp_path / "-").exists()


def test_the_demo_refuses_a_taken_port_before_it_prints_urls_or_makes_a_key(
    tmp_path: Path,
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = subprocess.run(
            [TIMELINE, "demo", "--port", str(port)],
            env=environment(TIMELINE_HOME=str(tmp_path / "home")),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "http://" not in done.stdout + done.stderr
    assert "write key" not in done.stdout
    # Nothing was stored either: the store was not even opened.
    assert not (tmp_path / "home").exists()
