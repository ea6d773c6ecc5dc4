"""Who may call what: every route of the app against every kind of credential.

Writes need a `write` key (`admin` for /admin/*); reads are open unless the service is
configured to want a `read` key. A missing, malformed, unknown or revoked key is a 401;
a key whose scope is too low is a 403. Requests that pass the guard are made to fail
validation right after it (an empty body, a bad Last-Event-ID), so the matrix stores
nothing and no event stream is left open.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from service.store.keys import SCOPES
from tests.service.conftest import (
    KEY_NAMES,
    REVOKED_NAME,
    SKIPPED_PATHS,
    Api,
    ApiFactory,
    concrete,
    operations,
    record_ids,
    statement,
)

MALFORMED = {
    "malformed-basic": "Basic dXNlcjpwYXNz",
    "malformed-bare-bearer": "Bearer",
    "malformed-no-scheme": "tlk_abcdefghijklmnopqrstuvwxyz",
    "malformed-two-words": "Bearer tlk_a tlk_b",
}
UNKNOWN = "Bearer tlk_" + "x" * 43
CREDENTIALS = ["none", *MALFORMED, "unknown", "revoked", *SCOPES]


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    template: str  # the route's path, as Litestar knows it
    path: str  # with real ids
    scope: str | None  # the handler's required scope


def calls(api: Api) -> list[Call]:
    """Every method of every route of the app, with ids that exist."""
    ids = record_ids(api)
    found = []
    for route in api.app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith(SKIPPED_PATHS):
            continue
        for handler in route.route_handlers:
            assert isinstance(handler, HTTPRouteHandler)
            for method in sorted(handler.http_methods):
                call = Call(method, route.path, concrete(route.path, ids), handler.opt.get("scope"))
                found.append(call)
    return found


def expected(call: Call, credential: str, read_requires_key: bool) -> str:
    """`pass`, `401` or `403`."""
    needed = call.scope
    if needed is None or (needed == "read" and not read_requires_key):
        return "pass"
    if credential not in SCOPES:
        return "401"
    return "403" if SCOPES.index(credential) < SCOPES.index(needed) else "pass"


def send(api: Api, call: Call, credential: str) -> tuple[str, int]:
    headers: dict[str, str] = {}
    if credential in MALFORMED:
        headers["Authorization"] = MALFORMED[credential]
    elif credential == "unknown":
        headers["Authorization"] = UNKNOWN
    elif credential != "none":
        headers["Authorization"] = f"Bearer {api.secrets[credential]}"
    if call.template == "/events/stream":
        headers["Last-Event-ID"] = "not-a-position"  # a 400 once past the guard
    if call.method == "POST":
        content_type = "application/json"  # for /admin/backfill: a 415 past the guard
        response = api.client.post(
            call.path, content=b"{}", headers={**headers, "Content-Type": content_type}
        )
    else:
        response = api.client.request(call.method, call.path, headers=headers)
    status = response.status_code
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer"), call
    if status in (401, 403):
        assert response.headers["content-type"].startswith("application/problem+json")
        if call.method == "HEAD":  # the problem's headers, without its body
            assert response.content == b""
        else:
            assert response.json()["errors"][0]["field"] == "authorization"
        return str(status), status
    return "pass", status


@pytest.mark.parametrize("read_requires_key", [False, True], ids=["open-reads", "keyed-reads"])
def test_every_route_answers_every_credential_as_the_scope_table_says(
    api_factory: ApiFactory, durable_store: str, read_requires_key: bool
) -> None:
    api = api_factory(durable_store, read_requires_key=read_requires_key)
    head = api.services.timeline.head_position()
    routes = calls(api)
    # Every route of the app is in the table: writes, reads, ops, admin.
    assert {c.scope for c in routes} == {None, "read", "write", "admin"}
    assert {(c.method, c.template) for c in routes} >= set(operations())
    mismatches = []
    for call in routes:
        for credential in CREDENTIALS:
            want = expected(call, credential, read_requires_key)
            got, status = send(api, call, credential)
            if got != want:
                mismatches.append(f"{call.method} {call.path} [{credential}]: {status}, not {want}")
    assert mismatches == []
    # The matrix stored nothing.
    assert api.services.timeline.head_position() == head


def test_reads_need_a_read_key_only_when_configured(api_factory: ApiFactory) -> None:
    open_reads = api_factory("memory")
    keyed = api_factory("memory", read_requires_key=True)
    for path in ("/timeline", "/actors/donald-trump", "/events", "/projections"):
        assert open_reads.client.get(path).status_code == 200, path
        assert keyed.client.get(path).status_code == 401, path
        assert keyed.client.get(path, headers=keyed.auth("read")).status_code == 200, path
    # Health, readiness and metrics stay open for probes and scrapers.
    for path in ("/health", "/ready", "/metrics"):
        assert keyed.client.get(path).status_code == 200, path


def test_writes_record_the_key_name_and_no_secret_reaches_the_logs(
    api_factory: ApiFactory, durable_store: str, caplog: pytest.LogCaptureFixture
) -> None:
    api = api_factory(durable_store)
    # Litestar's default logging config replaced the root handlers as the app started:
    # listen again, to everything.
    root = logging.getLogger()
    root.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    try:
        check_writers_and_logs(api, caplog)
    finally:
        root.removeHandler(caplog.handler)


def check_writers_and_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    # A write with the write key, another with the admin key.
    written = api.post("/statements", statement(quote="keys write as their names"))
    assert written.status_code == 201, written.text
    by_admin = api.post("/statements", statement(quote="so do admin keys"), who="admin")
    assert by_admin.status_code == 201, by_admin.text
    # Refusals, a malformed body, another write and a read, with every secret in play.
    for who in ("read", "revoked"):
        assert api.post("/statements", statement(), who=who).status_code in (401, 403)
    api.post("/actors", {"id": "keyed-actor", "name": "X", "kind": "person"}, who="admin")
    api.post("/statements", content=b"{", who="write")
    api.read("/timeline", who="read")
    # The event feed names the keys that wrote, never their secrets.
    after = written.json()["position"] - 1
    feed = api.client.get("/events", params={"after": after})
    ours = {written.json()["id"]: "write", by_admin.json()["id"]: "admin"}
    writers = {e["aggregate_id"]: e["data"]["writer"] for e in feed.json()["events"]}
    assert {ours[i]: writers[i] for i in ours} == {
        "write": KEY_NAMES["write"],
        "admin": KEY_NAMES["admin"],
    }
    history = api.client.get(f"/statements/{written.json()['id']}/history")
    assert history.json()["items"][0]["data"]["writer"] == KEY_NAMES["write"]
    # No secret in the captured logs, the feed, or a key listing.
    assert caplog.records, "nothing was logged: the check would prove nothing"
    listing = json.dumps([vars_of(k) for k in api.services.keys.list()])
    for secret in api.secrets.values():
        token = secret.removeprefix("tlk_")
        assert token not in caplog.text
        assert token not in feed.text and token not in listing
    assert {k.name for k in api.services.keys.list()} == {*KEY_NAMES.values(), REVOKED_NAME}


def vars_of(key: Any) -> dict[str, Any]:
    return {name: getattr(key, name) for name in key.__slots__}


def test_key_secrets_are_opaque_and_only_their_hashes_are_stored(api_factory: ApiFactory) -> None:
    api = api_factory("sqlite")
    secret = api.secrets["write"]
    assert re.fullmatch(r"tlk_[A-Za-z0-9_-]{40,}", secret)
    rows = api.services.keys.db.query("SELECT * FROM {table}")
    stored = json.dumps([list(map(str, row)) for row in rows])
    assert secret not in stored and secret.removeprefix("tlk_") not in stored
    # A key that differs by one character is unknown.
    near = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    answer = api.post("/statements", statement(), headers={"Authorization": f"Bearer {near}"})
    assert answer.status_code == 401
