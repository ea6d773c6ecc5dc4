"""`create_app(settings)`: the one place where the service is wired together."""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

import anyio
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from projections.workers import ReadModels
from service.http import browse, compression, drafts, openapi, ops, page, params, reads, writes
from service.http.caching import conditional
from service.http.context import Services, Side, services
from service.http.cors import cors
from service.http.metrics import Metrics
from service.http.ops import feed_messages
from service.http.problems import EXCEPTION_HANDLERS, HttpProblem
from service.http.routing import head_without_body
from service.http.waiting import Feed, Watch
from service.settings import Settings
from service.store.commits import StoreTimeline
from service.store.database import Bounds, Store, capacity_warning, open_timeline, parse_url
from service.store.keys import open_keys
from service.store.readmodels import open_read_models
from service.store.recorders import PostgresRecorder
from service.store.replicas import Replica, open_replica

log = logging.getLogger("timeline.http")
MAX_BODY = 1024 * 1024  # writes; the admin backfill has its own limit


def build_services(settings: Settings) -> Services:
    # A serving process waits on PostgreSQL for bounded times, then answers 503.
    bounds = Bounds(
        statement_timeout=settings.statement_timeout,
        lock_timeout=settings.lock_timeout,
        pool_timeout=settings.pool_timeout,
    )
    store = parse_url(settings.database_url, pool_size=settings.pool_size, bounds=bounds)
    timeline = open_timeline(store)
    if store.kind == "postgres" and (warning := capacity_warning(store, settings.pool_size)):
        log.warning(warning)
    if settings.group_commit:
        timeline.enable_group_commit()
    models = open_read_models(store, timeline)
    models.batch_size = settings.batch_size
    replica = None
    if settings.read_database_url:
        replica = open_replica(settings.read_database_url, store, models, settings.replica_max_lag)
        models.on_close.append(replica.close)
    return wire(settings, store, timeline, models, replica)


def wire(
    settings: Settings,
    store: Store,
    timeline: StoreTimeline,
    models: ReadModels,
    replica: Replica | None = None,
) -> Services:
    """What the handlers share, on a write model and read models opened already (and
    the replica that answers reads, if any)."""
    reached = Watch(lambda: models.view().position(), limit=settings.max_waiters, interval=0.05)
    models.on_advance.append(reached.poke)
    feed = Feed(
        timeline.head_position,
        functools.partial(feed_messages, timeline),
        limit=settings.max_streams,
        interval=0.5,
        gap=0.05,
        keep=1000,
    )
    timeline.listeners.append(lambda _: feed.poke())
    models.on_log.append(feed.poke)
    keys = open_keys(store, timeline)
    metrics = Metrics(models.status)
    reached.counted = metrics.waiting.set
    feed.counted = metrics.streams.set
    s = Services(settings, store, timeline, models, keys, metrics, reached, feed)
    if replica is not None:
        s.replica = (replica, replica_side(s, replica))
    return s


def replica_side(s: Services, replica: Replica) -> Side:
    """Where reads go while the replica serves: its view, and a watch of its position,
    read there. It sends no notifications: the watch looks again when the primary's view
    advanced, and when a look at the replica found it further on."""
    copied = Watch(replica.position, limit=s.settings.max_waiters, interval=0.05)
    s.models.on_advance.append(copied.poke)
    waiting = (s.reached, copied)
    for watch in waiting:
        watch.counted = lambda _: s.metrics.waiting.set(sum(w.waiting for w in waiting))

    def looked(replica: Replica) -> None:
        s.metrics.replica(replica)
        if replica.known > copied.known:
            copied.poke()

    replica.on_look.append(looked)
    recorder = s.timeline.recorder
    assert isinstance(recorder, PostgresRecorder)  # as `open_replica` requires
    return Side(replica.view, copied, functools.partial(replica.log, recorder))


async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Bearer keys: `read` < `write` < `admin`; reads are open unless configured."""
    scope = handler.opt.get("scope")
    s = services(connection.app.state)
    if scope is None or (scope == "read" and not s.settings.read_requires_key):
        return
    challenge = {"WWW-Authenticate": 'Bearer realm="timeline"'}
    header = connection.headers.get("authorization")
    if not header:
        raise HttpProblem(
            401, "send Authorization: Bearer <key>", field="authorization", headers=challenge
        )
    kind, _, secret = header.partition(" ")
    if kind.lower() != "bearer" or not secret.strip():
        raise HttpProblem(
            401,
            "the Authorization header must be: Bearer <key>",
            field="authorization",
            headers=challenge,
        )
    key = await anyio.to_thread.run_sync(s.keys.find, secret.strip())
    if key is None or key.revoked_at is not None:
        raise HttpProblem(401, "unknown or revoked key", field="authorization", headers=challenge)
    if not key.allows(scope):
        raise HttpProblem(
            403, f"this key's scope is {key.scope}; this needs {scope}", field="authorization"
        )
    connection.state.writer = key.name


def measure(app: ASGIApp) -> ASGIApp:
    """Count and time every request by its route template."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if str(scope["type"]) != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            handler = scope.get("route_handler")
            route = sorted(handler.paths)[0] if handler is not None else "unmatched"
            state = scope["app"].state
            if "services" in state:
                method = str(scope.get("method", "GET"))
                services(state).metrics.observe(method, route, status, started)

    return middleware


def create_app(
    settings: Settings | None = None, *, run_projections: bool = True, built: Services | None = None
) -> Litestar:
    s = built or build_services(settings or Settings())

    async def start() -> None:
        if run_projections:
            s.models.start()

    async def stop() -> None:
        s.models.close()
        s.timeline.close()
        s.metrics.close()

    app = Litestar(
        route_handlers=[
            *writes.routes.handlers(),
            *drafts.routes.handlers(),
            *reads.routes.handlers(),
            *browse.routes.handlers(),
            *ops.routes.handlers(),
            *openapi.routes.handlers(),
            *page.routes.handlers(),
        ],
        guards=[guard],
        before_request=params.check_query,
        dependencies={"at": Provide(reads.reading), "span": Provide(browse.spanning)},
        # Outermost first; Litestar's compression runs inside them all, so that a HEAD
        # tells the compressed length and a 304 drops the compressed body.
        middleware=[
            measure,
            *([cors(s.settings.cors_origins)] if s.settings.cors_origins else []),
            conditional,
            head_without_body,
        ],
        compression_config=compression.CONFIG,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=MAX_BODY,
        on_startup=[start],
        on_shutdown=[stop],
        openapi_config=OpenAPIConfig(
            title="Geopolitical Timeline",
            version="0.1.0",
            path="/_openapi",
            render_plugins=[openapi.SameDocument()],
            description="Who said what, who announced what, and what happened: an "
            "event-sourced timeline with answers as of any point in its history. Every GET "
            "also answers HEAD: its status and headers, without the body.",
        ),
        debug=False,
    )
    app.state.services = s
    app.state.openapi = openapi.build(app)
    return app
