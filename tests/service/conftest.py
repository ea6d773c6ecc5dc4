"""Fixtures for the HTTP tests: the whole service on each store, its keys, and a client
that reads its own writes.

`Apps` builds the service with `build_services` and `create_app` on a fresh store (memory,
an SQLite file, or a PostgreSQL schema in this run's database), creates one key per scope
and a revoked one, loads the seed, and runs the app's lifespan (projections in background
threads) inside a `TestClient`. `api` is one such app per store shared by a module;
`api_factory` makes apps with other settings for one test. Reads after writes pass
`min_position` (see `Api.read`), so no test sleeps.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from domain.writers import Author
from service.files.backfill import load_files, seed_files
from service.http.app import build_services, create_app
from service.http.context import Services
from service.settings import Settings

HTTP_STORES = ["memory", "sqlite", "postgres"]
DURABLE_STORES = ["sqlite", "postgres"]
# The key each app gets per scope (events record these names), and a revoked one.
KEY_NAMES = {"read": "reader", "write": "writer-bot", "admin": "admin-script"}
REVOKED_NAME = "revoked-bot"
BBC = {"publisher": "BBC News", "url": "https://www.bbc.com/news/live/example"}
NDJSON = "application/x-ndjson"
# The reads that take no `min_position`: of the log itself, and /changes (whose
# `to_position` waits).
NOT_WAITING = ("/events", "/projections", "/health", "/ready", "/metrics", "/changes")

JSONBody = Mapping[str, Any] | list[Any]


@dataclass
class Api:
    """A running app, its keys, and the highest position its writes have reached."""

    client: TestClient[Litestar]
    services: Services
    secrets: dict[str, str]
    database_url: str
    position: int = 0
    stopped: bool = False

    @property
    def app(self) -> Litestar:
        app = self.client.app
        assert isinstance(app, Litestar)
        return app

    def stop(self) -> None:
        """Run the app's shutdown (once)."""
        if not self.stopped:
            self.stopped = True
            self.client.__exit__(None, None, None)

    def auth(self, who: str | None = "write") -> dict[str, str]:
        """The Authorization header of a key by scope (or `revoked`); none for None."""
        return {} if who is None else {"Authorization": f"Bearer {self.secrets[who]}"}

    def post(
        self,
        path: str,
        body: JSONBody | None = None,
        *,
        who: str | None = "write",
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        content_type: str = "application/json",
    ) -> httpx.Response:
        """POST a JSON body (or raw bytes); remembers the position a write reached."""
        raw = content if content is not None else json.dumps(body).encode()
        sent = {"Content-Type": content_type, **self.auth(who), **(headers or {})}
        response = self.client.post(path, content=raw, headers=sent)
        if response.status_code in (200, 201) and "position" in _maybe_json(response):
            self.position = max(self.position, int(response.json()["position"]))
        return response

    def read(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        who: str | None = None,
    ) -> httpx.Response:
        """GET a read model once it reflects every write made so far (on the routes
        that take `min_position`)."""
        waits = not path.startswith(NOT_WAITING) and not path.endswith("/history")
        query = {**({"min_position": self.position} if waits else {}), **(params or {})}
        return self.client.get(path, params=query, headers={**self.auth(who), **(headers or {})})

    def backfill(self, lines: Iterable[Mapping[str, Any]], who: str = "admin") -> dict[str, Any]:
        """Load NDJSON lines through POST /admin/backfill; every line must be accepted."""
        body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        response = self.post("/admin/backfill", content=body, content_type=NDJSON, who=who)
        assert response.status_code == 200, response.text
        report: dict[str, Any] = response.json()
        assert report["rejected"] == [], report
        if report["last_position"] is not None:
            self.position = max(self.position, int(report["last_position"]))
        return report

    def seed(self) -> None:
        """Load the bundled seed straight into the write model."""
        report = load_files(self.services.timeline, seed_files(), Author("seed"))
        assert report.rejected == []
        self.position = max(self.position, self.services.timeline.head_position())

    def events_digest(self) -> str:
        """A digest of the raw event feed: equal digests mean no stored data changed."""
        response = self.client.get("/events", params={"limit": 500})
        assert response.status_code == 200, response.text
        return hashlib.sha256(response.content).hexdigest()


def _maybe_json(response: httpx.Response) -> dict[str, Any]:
    try:
        found = response.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


ApiFactory = Callable[..., Api]


# eventsourcing also reads its settings from the environment (see tests/conftest.py).
STORE_VARIABLES = ("PERSISTENCE_", "POSTGRES_", "SQLITE_", "TIMELINE_")


class Apps:
    """Builds apps on fresh stores and shuts every one down when closed."""

    def __init__(self, directory: Path, request: pytest.FixtureRequest) -> None:
        self.directory = directory
        self.request = request
        self.stack = ExitStack()
        # Module-scoped apps start before the per-test environment cleaning: clean here too.
        environ = self.stack.enter_context(pytest.MonkeyPatch.context())
        for name in [n for n in os.environ if n.startswith(STORE_VARIABLES)]:
            environ.delenv(name)

    def url(self, store: str) -> str:
        if store == "memory":
            return "memory://"
        if store == "sqlite":
            return f"sqlite:///{self.directory}/store-{uuid.uuid4().hex[:8]}"
        # PostgreSQL: a schema of its own in this run's database.
        database: str = self.request.getfixturevalue("postgres_database")
        return f"{database}?schema=http_{uuid.uuid4().hex[:12]}"

    def __call__(
        self,
        store: str,
        *,
        seed: bool = True,
        wait_timeout: float = 10.0,
        read_requires_key: bool = False,
        **more: Any,
    ) -> Api:
        """`more`: other settings, by name."""
        url = self.url(store)
        settings = Settings(
            database_url=url,
            wait_timeout=wait_timeout,
            read_requires_key=read_requires_key,
            pool_size=6,
            **more,
        )
        services = build_services(settings)
        secrets = {scope: services.keys.create(name, scope) for scope, name in KEY_NAMES.items()}
        secrets["revoked"] = services.keys.create(REVOKED_NAME, "admin")
        services.keys.revoke(REVOKED_NAME)
        client = TestClient(create_app(settings, built=services))
        client.__enter__()  # the lifespan: projections start
        api = Api(client, services, secrets, url)
        self.stack.callback(api.stop)
        if seed:
            api.seed()
        return api

    def close(self) -> None:
        self.stack.close()


@pytest.fixture
def api_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiFactory]:
    """Build apps with particular settings on demand; each is shut down at teardown."""
    apps = Apps(tmp_path, request)
    try:
        yield apps
    finally:
        apps.close()


@pytest.fixture(scope="module", params=HTTP_STORES)
def any_store(request: pytest.FixtureRequest) -> str:
    """Memory, SQLite and PostgreSQL."""
    return str(request.param)


@pytest.fixture(params=DURABLE_STORES)
def durable_store(request: pytest.FixtureRequest) -> str:
    """SQLite and PostgreSQL: the stores a deployment uses."""
    return str(request.param)


@pytest.fixture(scope="module")
def api(
    any_store: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    """The seeded service on each store, shared by a module's tests: each test writes
    records of its own (see `unique`) and reads them back with `min_position`."""
    apps = Apps(tmp_path_factory.mktemp("api"), request)
    try:
        yield apps(any_store)
    finally:
        apps.close()


@pytest.fixture
def sqlite_api(api_factory: ApiFactory) -> Api:
    """The seeded service on an SQLite file, for this test alone."""
    return api_factory("sqlite")


SKIPPED_PATHS = ("/schema", "/_openapi")  # the OpenAPI document and docs pages


@functools.cache
def operations() -> list[tuple[str, str]]:
    """(method, path template) of every operation of the OpenAPI document, as Litestar
    spells the template (`/statements/{id:uuid}`), without OPTIONS and HEAD (each GET's,
    without its body: see test_http_head.py): not the docs, nor the page and its files
    (test_page_assets.py). Read from an app built on a memory store, so that test ids
    are known at collection."""
    services = build_services(Settings(database_url="memory://"))
    try:
        app = create_app(services.settings, run_projections=False, built=services)
        return [
            (method, route.path)
            for route in app.routes
            if isinstance(route, HTTPRoute) and not route.path.startswith(SKIPPED_PATHS)
            for handler in route.route_handlers
            if handler.include_in_schema is not False
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"})
        ]
    finally:
        services.models.close()
        services.timeline.close()


def record_ids(api: Api) -> dict[str, str]:
    """The id of one seed record of each kind."""
    found = {}
    for kind in ("statement", "announcement", "occurrence"):
        page = api.read("/timeline", {"kind": kind, "limit": 1}, who="read")
        found[kind] = page.json()["items"][0]["id"]
    return found


# A key of the seed for each kind of record (`/{kind}s/by-key/{key}`).
SEED_KEYS = {
    "statement": "rutte-not-another-square-mile",
    "announcement": "trump-putin-talks-immediately",
    "occurrence": "crimea-seizure-2014",
}


def concrete(template: str, ids: Mapping[str, str], slug: str | None = None) -> str:
    """A path template with ids and keys that exist (or with `slug` in place of a slug
    id)."""
    kind = next((k for k in ids if template.startswith(f"/{k}s/")), None)
    path = template.replace("{id:uuid}", ids[kind] if kind else "")
    path = path.replace("{key:path}", SEED_KEYS[kind] if kind else "")
    default = "donald-trump" if template.startswith("/actors/") else "negotiations"
    return path.replace("{id:str}", default if slug is None else slug)


def unique(text: str = "") -> str:
    """Text no other test writes, so that records of a shared app never collide."""
    return f"{text} {uuid.uuid4().hex}".strip()


def statement(**overrides: Any) -> dict[str, Any]:
    """A valid statement body on the seed's actors and topics."""
    body: dict[str, Any] = {
        "speaker": "mark-rutte",
        "quote": "have to make sure Putin will not try to grab another square mile",
        "occurred_at": "2025-02-13",
        "channel": "press-conference",
        "topics": ["territory"],
        "mentions": ["vladimir-putin"],
        "sources": [BBC],
    }
    body.update(overrides)
    return body


def announcement(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "by": ["kremlin"],
        "summary": "Ukraine will of course take part in the talks",
        "occurred_at": "2025-02-13T10:00:00+03:00",
        "channel": "written-statement",
        "topics": ["negotiations"],
        "sources": [BBC],
    }
    body.update(overrides)
    return body


def occurrence(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Trump and Putin speak by phone",
        "kind": "call",
        "occurred_at": "2025-02-12",
        "participants": ["donald-trump", "vladimir-putin"],
        "topics": ["negotiations"],
        "sources": [BBC],
    }
    body.update(overrides)
    return body
