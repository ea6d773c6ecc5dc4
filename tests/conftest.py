"""Fixtures shared by every test: a clean environment and the three stores.

PostgreSQL tests use the server at TIMELINE_TEST_POSTGRES_URL (default: the local one),
in a database made for this run and a schema made for each test. With
TIMELINE_REQUIRE_POSTGRES=1 (as in CI) a PostgreSQL test that would skip fails instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from domain.application import Timeline
from domain.writers import Author, writing_as
from projections.workers import ReadModels
from service.store.commits import StoreTimeline
from service.store.database import Store, open_timeline, parse_url
from service.store.readmodels import open_read_models

POSTGRES_URL = os.environ.get(
    "TIMELINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("TIMELINE_REQUIRE_POSTGRES", "") == "1"
# What CI must have: a test marked with one of these that would skip fails instead.
REQUIRED = {
    "postgres": ("PostgreSQL", REQUIRE_POSTGRES),
    "replica": ("a PostgreSQL streaming replica", REQUIRE_POSTGRES),
    "browser": ("the browser", os.environ.get("TIMELINE_REQUIRE_BROWSER", "") == "1"),
}
STORES = ["memory", "sqlite", "postgres"]
# eventsourcing reads its settings from the environment: keep stray ones out.
_LIBRARY_PREFIXES = ("PERSISTENCE_", "POSTGRES_", "SQLITE_", "TIMELINE_DATABASE", "TIMELINE_HOME")


def opens_and_writes(store: Store) -> None:
    """The store opens and takes a write (an actor), which it numbers."""
    app = open_timeline(store)
    try:
        with writing_as(Author("t")):
            written = app.register_actor({"id": "nato", "name": "NATO", "kind": "organization"})
        assert written.position >= 1
    finally:
        app.close()


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(_LIBRARY_PREFIXES):
            monkeypatch.delenv(name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    for marker, (what, required) in REQUIRED.items():
        if required and report.skipped and marker in item.keywords:
            report.outcome = "failed"
            report.longrepr = f"a test of {what} skipped where it is required: {report.longrepr}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "postgres" in callspec.params.values():
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database for this test run, dropped at the end."""
    name = f"timeline_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = parse_url(POSTGRES_URL)
    try:
        conn = psycopg.connect(admin.conninfo(), autocommit=True)
    except psycopg.OperationalError as e:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required but not reachable at {POSTGRES_URL}: {e}")
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}")
    with conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = POSTGRES_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(admin.conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def make_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    if kind == "memory":
        return parse_url("memory://")
    if kind == "sqlite":
        return parse_url(f"sqlite:///{tmp_path}/store")
    url: str = request.getfixturevalue("postgres_database")
    return parse_url(url, schema=f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return make_store(request.param, tmp_path, request)


@pytest.fixture
def timeline(store: Store) -> Iterator[StoreTimeline]:
    app = open_timeline(store)
    yield app
    app.close()


@pytest.fixture
def read_models(store: Store, timeline: Timeline) -> Iterator[ReadModels]:
    models = open_read_models(store, timeline)
    yield models
    models.close()


@pytest.fixture
def author() -> Iterator[Author]:
    """The writer of the test's own changes (the service names one for every write)."""
    with writing_as(Author(writer="tester")) as author:
        yield author
