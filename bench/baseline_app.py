"""The baselines the service is measured against, in the same run: a bare Litestar +
msgspec app with async handlers on a psycopg async pool and nothing else.

- `GET /timeline`, `GET /topics/{id}/who-said-what`: the same read functions
  (`projections.timeline`, `projections.whosaid`) making the same statements (the read
  models' position, then the page as of it, as a walk's first page reads), each run
  on an async pool in the handler: no thread hand-off, no parameter validation, no
  `as_of` or `min_position` handling, no cursors, no keys, no metrics.
- `GET /counts?bucket=month`: `/timeline/counts` as one `GROUP BY` over a flat table of
  the same records (`bench_counts`: their kind and start, which the suite copies from
  the read model's current rows), not over versioned rows.
- `GET /items20`: twenty msgspec items, no database: the framework's ceiling.
- `POST /append`: decode a statement, one INSERT and one COMMIT per request.
- `POST /append-save`: decode a statement, eventsourcing `save()` of one new aggregate
  in a worker thread: one commit per request as the event store makes it (table lock,
  NOTIFY), which is what a service without group commit does.

    python -m bench.baseline_app --port 8100 --database-url postgresql://...
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast
from uuid import UUID, uuid5

import anyio
import msgspec
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from domain.ids import NAMESPACE
from domain.when import parse_when
from projections.postgres import PostgresRows
from projections.timeline import Page, TimelineQuery, timeline
from projections.whosaid import page, who_said_what
from service.http.schemas import StatementIn
from service.store.database import parse_url

T = TypeVar("T")
JSON = "application/json"
EVENTS = "bench_events"
NOTES_SCHEMA = "bench_baseline"
DDL = [
    f"CREATE TABLE IF NOT EXISTS {EVENTS} (originator_id uuid NOT NULL, "
    "originator_version bigint NOT NULL, topic text NOT NULL, state bytea NOT NULL, "
    "notification_id bigserial, PRIMARY KEY (originator_id, originator_version))",
    f"CREATE UNIQUE INDEX IF NOT EXISTS {EVENTS}_position ON {EVENTS} (notification_id)",
    f"CREATE SCHEMA IF NOT EXISTS {NOTES_SCHEMA}",
]
FLAT = "bench_counts"  # made and filled by the suite (bench/suite.py: flatten)
COUNT = (
    "SELECT to_char(date_trunc(%s, start_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD'), count(*) "  # noqa: S608
    f"FROM {FLAT} GROUP BY 1 ORDER BY 1"
)
INSERT = (
    f"INSERT INTO {EVENTS} (originator_id, originator_version, topic, state) "  # noqa: S608
    "VALUES (%s, 1, 'bench:Statement.Recorded', %s) RETURNING notification_id"
)


class Capture(PostgresRows):
    """A read model's view that records the statements a read function runs, answering
    each from a list given in advance instead of running it."""

    def __init__(self, name: str, generation: int, answers: list[list[tuple[Any, ...]]]) -> None:
        super().__init__(cast(ConnectionPool, None), name, generation)
        self.answers = answers
        self.statements: list[tuple[str, list[Any]]] = []

    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        self.statements.append((sql, list(params)))
        return self.answers.pop(0) if self.answers else []


class Item(msgspec.Struct, kw_only=True):
    id: int
    kind: str
    title: str
    occurred_at: str
    position: int
    topics: list[str]


ITEMS = [
    Item(
        id=i,
        kind="statement",
        title=f"Item number {i}",
        occurred_at=f"2025-02-{i + 1:02d}T12:00:00.000000Z",
        position=1000 + i,
        topics=["negotiations", "territory"],
    )
    for i in range(20)
]


def _pool(state: State) -> AsyncConnectionPool:
    pool = state.pool
    assert isinstance(pool, AsyncConnectionPool)
    return pool


def _generation(state: State, name: str) -> int:
    found = state.generations[name]
    assert isinstance(found, int)
    return found


def _window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    return (
        None if since is None else parse_when(since, "since").start,
        None if until is None else parse_when(until, "until").end,
    )


@get("/health", media_type=JSON)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/items20", media_type=JSON)
async def items20() -> list[Item]:
    return ITEMS


async def _run(state: State, read: Callable[[Capture], T]) -> T:
    """Call a read function of the read models with every statement it makes run here,
    on the async pool, one after the other: the function is called again with the
    answers so far until it asks for nothing more (its later statements may depend on
    earlier answers, as a page's topic filter does on the subtree)."""
    answers: list[list[tuple[Any, ...]]] = []
    async with _pool(state).connection() as conn:
        while True:
            view = Capture("timeline", _generation(state, "timeline"), list(answers))
            result = read(view)
            if len(view.statements) <= len(answers):
                return result
            sql, params = view.statements[len(answers)]
            answers.append(await (await conn.execute(sql, params, prepare=True)).fetchall())


@get("/timeline", media_type=JSON)
async def timeline_page(
    state: State,
    topic: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    limit: FromQuery[int] = 50,
) -> Response[bytes]:
    start, end = _window(since, until)

    def read(view: Capture) -> Page:
        at = view.position()
        return timeline(
            view, TimelineQuery(topic=topic, since=start, until=end, limit=limit, at=at)
        )

    page = await _run(state, read)
    body = b'{"items":[' + ",".join(page.items).encode() + b'],"next_cursor":null}'
    return Response(body, media_type=JSON)


@get("/topics/{id:str}/who-said-what", media_type=JSON)
async def who_said_what_page(
    state: State,
    id: FromPath[str],
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    limit: FromQuery[int] = 50,
) -> Response[bytes]:
    start, end = _window(since, until)

    def read(view: Capture) -> dict[str, Any] | None:
        answer = who_said_what(view, id, start, end, view.position(), raw=True)
        return None if answer is None else page(answer, 0, limit)[0]

    answer = await _run(state, read)
    if answer is None:
        return Response(b'{"status":404}', status_code=404, media_type=JSON)
    return Response(msgspec.json.encode({**answer, "next_cursor": None}), media_type=JSON)


@get("/counts", media_type=JSON)
async def counts_page(state: State, bucket: FromQuery[str] = "month") -> Response[bytes]:
    async with _pool(state).connection() as conn:
        found = await (await conn.execute(COUNT, (bucket,), prepare=True)).fetchall()
    items = [{"start": day, "count": n} for day, n in found]
    answer = {"bucket": bucket, "items": items, "total": sum(n for _, n in found)}
    return Response(msgspec.json.encode(answer), media_type=JSON)


def _written(ref: UUID, position: int) -> Response[bytes]:
    written = {
        "id": str(ref),
        "version": 1,
        "position": position,
        "recorded_at": datetime.now(UTC).isoformat(),
        "duplicate": False,
    }
    return Response(msgspec.json.encode(written), status_code=201, media_type=JSON)


@post("/append", media_type=JSON)
async def append(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    data = msgspec.json.decode(await request.body(), type=StatementIn, strict=True)
    ref = uuid5(NAMESPACE, f"statement:{data.key}")
    async with _pool(state).connection() as conn, conn.transaction():
        cur = await conn.execute(INSERT, (ref, msgspec.json.encode(data)), prepare=True)
        row = await cur.fetchone()
    assert row is not None
    return _written(ref, row[0])


class Note(Aggregate):
    """A new aggregate per request, holding the statement as given."""

    def __init__(self, content: dict[str, Any]) -> None:
        self.content = content


class Notes(Application[UUID]):
    """Its own events table (`notes_events`) in the schema `bench_baseline`."""


@post("/append-save", media_type=JSON)
async def append_save(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    data = msgspec.json.decode(await request.body(), type=StatementIn, strict=True)
    note = Note(msgspec.to_builtins(data))
    notes = state.notes
    assert isinstance(notes, Notes)
    recordings = await anyio.to_thread.run_sync(notes.save, note)
    return _written(note.id, recordings[-1].notification.id)


def create_app(database_url: str, pool_size: int = 10) -> Litestar:
    """The baseline app on a database that holds the service's read models."""
    conninfo = parse_url(database_url).conninfo()
    sync = {"autocommit": True}
    with ConnectionPool(conninfo, min_size=1, max_size=1, kwargs=sync, open=True) as sync_pool:
        # One projection's rows serve both pages (decision 008).
        generations = {"timeline": PostgresRows(sync_pool, "timeline").generation_in_use() or 1}
        with sync_pool.connection() as conn:
            for statement in DDL:
                conn.execute(statement)
    # The service's store settings (pool, timeouts), in a schema of its own.
    notes = Notes(env=parse_url(database_url, pool_size=pool_size, schema=NOTES_SCHEMA).env)
    pool = AsyncConnectionPool(
        conninfo, min_size=pool_size, max_size=pool_size, kwargs={"autocommit": True}, open=False
    )

    async def start() -> None:
        await pool.open(wait=True)

    async def stop() -> None:
        await pool.close()
        notes.close()

    app = Litestar(
        route_handlers=[
            health,
            items20,
            timeline_page,
            who_said_what_page,
            counts_page,
            append,
            append_save,
        ],
        on_startup=[start],
        on_shutdown=[stop],
        openapi_config=None,
        debug=False,
    )
    app.state.pool = pool
    app.state.generations = generations
    app.state.notes = notes
    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True, help="postgresql://... (no schema)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--pool-size", type=int, default=10)
    args = parser.parse_args()
    # Imported by name, not run as __main__, so that its event classes have stable topics.
    from bench import baseline_app

    app = baseline_app.create_app(args.database_url, args.pool_size)
    # As `timeline serve` runs the service: one worker, no access log.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
