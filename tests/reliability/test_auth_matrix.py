"""Who may call what, against a table written out by hand — not read from the handlers —
so that a route whose scope changes by mistake is a mismatch; and no key in any log.

Every route of the app times {no key, malformed (eight ways), unknown, revoked, read,
write, admin}: in-process on the memory store (reads open, and reads keyed) and on
PostgreSQL (reads open), and over real HTTP against a uvicorn process on SQLite and
PostgreSQL (reads keyed). A request that passes the guard is made to fail validation
right after it (an empty body, a bad Last-Event-ID), so the matrix stores nothing. The
uvicorn process logs at debug level with its access log on; neither its output nor the
in-process logs may hold any key's secret.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from domain.writers import Author
from service.files.backfill import load_files, seed_files
from service.http.app import build_services
from service.settings import Settings
from service.store.keys import SCOPES
from tests.reliability.conftest import Figures
from tests.reliability.serving import logged_service
from tests.service.conftest import KEY_NAMES, REVOKED_NAME, ApiFactory, Apps

RECORDS = ("statements", "announcements", "occurrences")
OPEN, READ, WRITE, ADMIN = None, "read", "write", "admin"
# The scope each operation needs, as the README says (writes need `write`,
# /admin/* `admin`, reads `read` when configured; probes and the API docs are open).
TABLE: dict[tuple[str, str], str | None] = {
    ("GET", "/timeline"): READ,
    ("GET", "/timeline/counts"): READ,
    ("GET", "/changes"): READ,
    ("GET", "/topics/{id:str}/who-said-what"): READ,
    ("GET", "/actors"): READ,
    ("GET", "/actors/{id:str}"): READ,
    ("GET", "/topics"): READ,
    ("GET", "/topics/{id:str}"): READ,
    ("GET", "/events"): READ,
    ("GET", "/events/stream"): READ,
    ("GET", "/projections"): READ,
    ("GET", "/health"): OPEN,
    ("GET", "/ready"): OPEN,
    ("GET", "/metrics"): OPEN,
    ("GET", "/schema"): OPEN,
    ("GET", "/schema/openapi.json"): OPEN,
    ("GET", "/_openapi"): OPEN,
    ("GET", "/_openapi/openapi.json"): OPEN,
    ("GET", "/_openapi/{path:str}"): OPEN,
    # The page and its files: open even when reads need a key (the page then asks for one).
    ("GET", "/"): OPEN,
    ("GET", "/static/{path:path}"): OPEN,
    ("POST", "/actors"): WRITE,
    ("POST", "/actors/{id:str}/aliases"): WRITE,
    ("POST", "/actors/{id:str}/roles"): WRITE,
    ("POST", "/actors/{id:str}/roles/end"): WRITE,
    ("POST", "/topics"): WRITE,
    ("POST", "/topics/{id:str}/changes"): WRITE,
    ("POST", "/admin/backfill"): ADMIN,
    # Drafts store nothing, but they read the store's actors and cost work: a writer's.
    ("POST", "/drafts"): WRITE,
    **{("GET", f"/{r}/{{id:uuid}}"): READ for r in RECORDS},
    **{("GET", f"/{r}/{{id:uuid}}/history"): READ for r in RECORDS},
    **{("GET", f"/{r}/by-key/{{key:path}}"): READ for r in RECORDS},
    **{("POST", f"/{r}"): WRITE for r in RECORDS},
    **{
        ("POST", f"/{r}/{{id:uuid}}/{change}"): WRITE
        for r in RECORDS
        for change in ("corrections", "retraction", "sources", "tags")
    },
}
# Every GET of ours also answers HEAD, with the GET's scope (Litestar's own /_openapi
# pages do not); every path answers OPTIONS (CORS preflight), without a key.
TABLE |= {
    ("HEAD", template): scope
    for (method, template), scope in list(TABLE.items())
    if method == "GET" and not template.startswith("/_openapi")
}
TABLE |= {("OPTIONS", template): OPEN for _, template in list(TABLE)}

FAKE = "tlk_" + "x" * 43


def credentials(secrets: dict[str, str]) -> dict[str, dict[str, str]]:
    """Authorization headers by kind of credential."""
    write = secrets["write"]
    return {
        "none": {},
        "malformed: Basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "malformed: bare Bearer": {"Authorization": "Bearer"},
        "malformed: no scheme": {"Authorization": write},
        "malformed: two tokens": {"Authorization": f"Bearer {write} {write}"},
        "malformed: other scheme, valid key": {"Authorization": f"Token {write}"},
        "malformed: 8 KB token": {"Authorization": "Bearer " + "x" * 8000},
        "malformed: key without its prefix": {"Authorization": f"Bearer {write[4:]}"},
        "malformed: key with a byte more": {"Authorization": f"Bearer {write}x"},
        "unknown": {"Authorization": f"Bearer {FAKE}"},
        "revoked": {"Authorization": f"Bearer {secrets['revoked']}"},
        **{scope: {"Authorization": f"Bearer {secrets[scope]}"} for scope in SCOPES},
    }


def expected(scope: str | None, credential: str, keyed_reads: bool) -> str:
    """`pass`, `401` or `403`."""
    if scope is None or (scope == READ and not keyed_reads):
        return "pass"
    if credential not in SCOPES:
        return "401"
    return "403" if SCOPES.index(credential) < SCOPES.index(scope) else "pass"


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    template: str
    path: str


def concrete(template: str, ids: dict[str, str]) -> str:
    kind = next((r for r in RECORDS if template.startswith(f"/{r}/")), None)
    path = template.replace("{id:uuid}", ids[kind] if kind else "")
    path = path.replace("{path:str}", "nothing-here")
    path = path.replace("{key:path}", "no-such-key")
    return path.replace("{id:str}", "donald-trump" if path.startswith("/actors") else "crimea")


def app_routes(app: Any) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if isinstance(handler, HTTPRouteHandler)
        for method in handler.http_methods
    }


def seed_ids(get: Callable[..., httpx.Response]) -> dict[str, str]:
    found = {}
    for r in RECORDS:
        page = get("/timeline", params={"kind": r[:-1], "limit": 1})
        assert page.status_code == 200, page.text
        found[r] = page.json()["items"][0]["id"]
    return found


def send(
    request: Callable[..., httpx.Response], call: Call, headers: dict[str, str]
) -> tuple[str, int]:
    headers = dict(headers)
    if call.template == "/events/stream":
        headers["Last-Event-ID"] = "not-a-position"  # a 400 once past the guard
    if call.method == "POST":
        # Past the guard: `{}` breaks every body's schema; the backfill wants NDJSON (415).
        response = request(
            "POST",
            call.path,
            content=b"{}",
            headers={**headers, "Content-Type": "application/json"},
        )
    else:
        response = request(call.method, call.path, headers=headers)
    status = response.status_code
    assert status < 500, (call, status, response.text)
    if status in (401, 403):
        assert response.headers["content-type"].startswith("application/problem+json")
        if call.method == "HEAD":  # the problem's headers, without its body
            assert response.content == b""
        else:
            assert response.json()["errors"][0]["field"] == "authorization"
        if status == 401:
            assert response.headers["www-authenticate"].startswith("Bearer")
        return str(status), status
    return "pass", status


def run_matrix(
    request: Callable[..., httpx.Response],
    calls: list[Call],
    secrets: dict[str, str],
    keyed_reads: bool,
) -> tuple[list[str], Counter[str]]:
    mismatches, outcomes = [], Counter[str]()
    for call in calls:
        for credential, headers in credentials(secrets).items():
            want = expected(TABLE[call.method, call.template], credential, keyed_reads)
            got, status = send(request, call, headers)
            outcomes[got] += 1
            if got != want:
                mismatches.append(f"{call.method} {call.path} [{credential}]: {status}, not {want}")
    return mismatches, outcomes


@contextmanager
def every_log_record(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every log record of the process, at every level. Litestar replaces the root
    handlers as an app starts: call this once the app runs."""
    root = logging.getLogger()
    root.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(caplog.handler)


def assert_no_secret(text: str, secrets: dict[str, str]) -> None:
    for name, secret in secrets.items():
        token = secret.removeprefix("tlk_")
        assert token not in text, f"the {name} key appears in the logs"
        assert token[:16] not in text, f"part of the {name} key appears in the logs"


# Keyed reads on SQLite and PostgreSQL: the real server's test below.
@pytest.mark.parametrize(
    ("store", "keyed_reads"),
    [("memory", False), ("memory", True), ("postgres", False)],
    ids=["memory-open-reads", "memory-keyed-reads", "postgres-open-reads"],
)
def test_every_route_and_credential_matches_the_table_in_process(
    api_factory: ApiFactory,
    store: str,
    keyed_reads: bool,
    caplog: pytest.LogCaptureFixture,
    figures: Figures,
) -> None:
    api = api_factory(store, read_requires_key=keyed_reads)
    # The table names every route of the app, and nothing else.
    assert app_routes(api.app) == set(TABLE)
    head = api.services.timeline.head_position()
    ids = seed_ids(lambda path, params: api.read(path, params, who="read"))
    calls = [Call(m, t, concrete(t, ids)) for m, t in sorted(TABLE)]
    with every_log_record(caplog):
        mismatches, outcomes = run_matrix(api.client.request, calls, api.secrets, keyed_reads)
    assert mismatches == []
    assert api.services.timeline.head_position() == head  # the matrix stored nothing
    assert caplog.records, "nothing was logged: the check would prove nothing"
    assert_no_secret(caplog.text, api.secrets)
    figures(
        store=store,
        reads="keyed" if keyed_reads else "open",
        routes=len(calls),
        credentials=len(credentials(api.secrets)),
        requests=sum(outcomes.values()),
        passed=outcomes["pass"],
        refused_401=outcomes["401"],
        refused_403=outcomes["403"],
        mismatches=len(mismatches),
        log_records=len(caplog.records),
    )


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_real_server_matches_the_table_and_logs_no_key(
    request: pytest.FixtureRequest, tmp_path: Path, store: str, figures: Figures
) -> None:
    url = Apps(tmp_path, request).url(store)
    # Keys and the seed, written as `timeline keys create` and `timeline seed` would.
    services = build_services(Settings(database_url=url))
    try:
        secrets = {scope: services.keys.create(name, scope) for scope, name in KEY_NAMES.items()}
        secrets["revoked"] = services.keys.create(REVOKED_NAME, "admin")
        services.keys.revoke(REVOKED_NAME)
        assert load_files(services.timeline, seed_files(), Author("seed")).rejected == []
        head = services.timeline.head_position()
    finally:
        services.models.close()
        services.timeline.close()
    log = tmp_path / "server.log"
    with (
        logged_service(url, log, {"TIMELINE_READ_REQUIRES_KEY": "true"}) as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        read = {"Authorization": f"Bearer {secrets['read']}"}
        ids = seed_ids(
            lambda path, params: client.get(
                path, params={**params, "min_position": head}, headers=read
            )
        )
        calls = [Call(m, t, concrete(t, ids)) for m, t in sorted(TABLE)]
        mismatches, outcomes = run_matrix(client.request, calls, secrets, keyed_reads=True)
        # Some writes that succeed, with each key that may write.
        for scope in ("write", "admin"):
            body = {"id": f"logged-{scope}", "name": "Logged", "kind": "person"}
            headers = {"Authorization": f"Bearer {secrets[scope]}"}
            assert client.post("/actors", json=body, headers=headers).status_code == 201
    assert mismatches == []
    text = log.read_text(errors="replace")
    # The capture works: uvicorn's access lines and the app's own debug lines are there.
    assert '"POST /actors HTTP/1.1" 201' in text and '"GET /timeline' in text
    assert (
        '"POST /statements HTTP/1.1" 401' in text and '"POST /admin/backfill HTTP/1.1" 403' in text
    )
    assert_no_secret(text, secrets)
    figures(
        store=store,
        server="uvicorn --log-level debug --access-log",
        routes=len(calls),
        requests=sum(outcomes.values()) + 2,
        refused_401=outcomes["401"],
        refused_403=outcomes["403"],
        mismatches=len(mismatches),
        log_lines=text.count("\n"),
        secrets_in_log=0,
    )
