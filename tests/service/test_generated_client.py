"""A client generated from the live document by a real generator works: openapi-python-client
reads /schema/openapi.json from `timeline demo`, with no warning, and a whole story runs
through the generated code alone — two actors and a topic, a statement, its correction,
and who said what as known before and after the correction."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID

import httpx
import pytest

from tests.projections.workers_support import PATIENCE
from tests.reliability.serving import Demo, free_port

CONFIG = Path(__file__).resolve().parents[2] / "docs" / "openapi-python-client.yaml"
GENERATOR = str(Path(sys.executable).with_name("openapi-python-client"))
PACKAGE = "timeline_client"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`timeline demo` as a user runs it: its URL and the write key it prints."""
    port = free_port()
    demo = Demo(tmp_path_factory.mktemp("demo"), port)
    try:
        key = demo.printed("a write key (shown once)", time.monotonic() + PATIENCE)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + PATIENCE
        while not _up(base):
            assert time.monotonic() < deadline, "\n".join(demo.output)
            time.sleep(0.1)
        yield base, key
    finally:
        demo.close()


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=2, trust_env=False).status_code == 200
    except httpx.TransportError:
        return False


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


def op(name: str) -> Any:
    """An operation's module of the generated client: its group, its operation id."""
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def test_a_generated_client_tells_the_whole_story(
    demo: tuple[str, str], client_package: ModuleType
) -> None:
    base, key = demo
    with client_package.AuthenticatedClient(base_url=base, token=key) as client:
        story(client, importlib.import_module(f"{PACKAGE}.models"))


def story(client: Any, m: Any) -> None:
    """Everything through the generated client: `m` its models, `op` its operations."""
    source = m.Source(
        publisher="BBC News",
        url="urn:bbc-live:000_9be14b46189953d5",
        published_at="2025-02-13",
    )
    # Two actors and a topic.
    for actor in (
        m.ActorIn(id="kaja-kallas", name="Kaja Kallas", kind="person", aliases=["Kallas"]),
        m.ActorIn(id="andrii-sybiha", name="Andrii Sybiha", kind="person"),
    ):
        made = op("actors.register_actor").sync_detailed(client=client, body=actor)
        assert made.status_code == 201 and made.parsed.id == actor.id
    topic = m.TopicIn(id="munich-talks", label="Talks in Munich", parent="negotiations")
    made = op("topics.define_topic").sync_detailed(client=client, body=topic)
    assert made.status_code == 201
    # A statement about it, then its correction.
    said = op("records.create_statement").sync_detailed(
        client=client,
        body=m.StatementIn(
            key="kallas-no-quick-fix",
            speaker="kaja-kallas",
            summary="Kallas said a deal made behind Ukraine's back would not work.",
            occurred_at="2025-02-13",
            channel="interview",
            topics=["munich-talks"],
            mentions=["andrii-sybiha"],
            sources=[source],
        ),
    )
    assert said.status_code == 201, said.content
    recorded = said.parsed
    corrected = op("records.correct_statement").sync_detailed(
        UUID(recorded.id),
        client=client,
        body=m.CorrectionIn(
            changes=m.Changes(summary="Kallas said any quick fix would be a dirty deal."),
            reason="the interview's own words",
        ),
    )
    assert corrected.status_code == 200 and corrected.parsed.version == 2
    correction = corrected.parsed

    # Who said what, as known before the correction and after it, by instant and by
    # position: each answer as the service gave it then.
    who = op("topics.get_who_said_what")

    def summaries(**at: Any) -> list[str]:
        answer = who.sync("munich-talks", client=client, min_position=correction.position, **at)
        assert isinstance(answer, m.WhoSaidWhat), answer
        return [f"{s.actor.id}: {r.summary}" for s in answer.speakers for r in s.records]

    before = ["kaja-kallas: Kallas said a deal made behind Ukraine's back would not work."]
    after = ["kaja-kallas: Kallas said any quick fix would be a dirty deal."]
    assert summaries(as_of=recorded.recorded_at) == before
    assert summaries(as_of_position=recorded.position) == before
    assert summaries(as_of=correction.recorded_at) == after
    assert summaries(as_of_position=correction.position) == after
    assert summaries() == after
    # Its history, through the client too: recorded, then corrected.
    history = op("records.get_statement_history").sync(UUID(recorded.id), client=client)
    assert [e.type_ for e in history.events] == ["Statement.Recorded", "Record.Corrected"]
    # An error is a problem the client reads, naming the field.
    missing = who.sync_detailed("no-such-topic", client=client)
    assert missing.status_code == 404
    assert isinstance(missing.parsed, m.Problem)
    assert [e.field for e in missing.parsed.errors] == ["id"]
