"""The baselines the service is measured against, in the same run: a bare Litestar +
msgspec app with async handlers on a psycopg async pool and nothing else.

- `GET /flat/timeline`, `GET /flat/topics/{id}/who-said-what`: the physical limit. The
  same pages, byte for byte, from the simplest tables that can answer them (`flat_pages`,
  filled by `fill_flat` with the records the service shows now): a record is listed
  under each of its topics and each of their ancestors, in one composite index
  `(topic, start_at, first_pos)`, beside its item rendered as the service answers it
  (topic labels in) and its speakers' names. One statement a page: no position to read
  (it is copied beside the rows), no subtree, no labels or profiles to look up.
- `GET /timeline`, `GET /topics/{id}/who-said-what`: the same queries of the view
  (`TimelineView.page`, `TimelineView.who_said_what`) making the same statements (the
  view's position, then the page as of it, as a walk's first page reads), each run
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
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast
from uuid import UUID, uuid5

import anyio
import msgspec
import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import FromPath, FromQuery
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from domain.ids import NAMESPACE
from domain.when import parse_when, starts_open_at
from projections.answers import said_page
from projections.postgres import PostgresView
from projections.rows import utc_text
from projections.view import Page, TimelineQuery
from service.http.params import encode_cursor
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
# The physical limit's tables (`fill_flat`). A record is listed under its topics and their
# ancestors, in timeline order; the one index covers what a page filters on.
FLAT_DDL = [
    "CREATE TABLE IF NOT EXISTS flat_pages (topic text NOT NULL, start_at timestamptz NOT "
    "NULL, first_pos bigint NOT NULL, end_at timestamptz NOT NULL, kind text NOT NULL, "
    "item bigint NOT NULL, PRIMARY KEY (topic, start_at, first_pos) INCLUDE (end_at, kind, item))",
    "CREATE TABLE IF NOT EXISTS flat_items (id bigint PRIMARY KEY, body text NOT NULL, "
    "occurred_precision text NOT NULL, speakers text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS flat_topics (topic text PRIMARY KEY, label text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS flat_at (position bigint NOT NULL)",
]
_FLAT_SCAN = (
    "SELECT start_at, first_pos, item FROM flat_pages WHERE topic = %(topic)s AND "
    "kind = ANY(%(kinds)s) AND start_at < %(until)s AND end_at > %(since)s AND {} "
    "ORDER BY start_at, first_pos LIMIT %(limit)s"
)
# The page and what frames it, in one statement: the position the copy reflects, the
# topic's label (none: no such topic), and the page's rows (none: an empty page). A
# window's rows start in it, or at one of the few instants before it that may still be
# open then (as the service reads them: `domain.when.starts_open_at`).
FLAT_PAGE = (
    "SELECT a.position, t.label, i.body, p.start_at, p.first_pos, i.occurred_precision, "  # noqa: S608
    "i.speakers FROM flat_at a "
    "LEFT JOIN flat_topics t ON t.topic = %(topic)s LEFT JOIN LATERAL (SELECT * FROM ("
    f"({_FLAT_SCAN.format('start_at > %(after)s')}) UNION ALL "
    f"({_FLAT_SCAN.format('start_at = ANY(%(exactly)s)')})"
    ") u ORDER BY start_at, first_pos LIMIT %(limit)s) p ON true "
    "LEFT JOIN flat_items i ON i.id = p.item ORDER BY p.start_at, p.first_pos"
)
EARLIEST, LATEST = datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC)
RECORD_KINDS = ["statement", "announcement", "occurrence"]
SAID = ["statement", "announcement"]
INSERT = (
    f"INSERT INTO {EVENTS} (originator_id, originator_version, topic, state) "  # noqa: S608
    "VALUES (%s, 1, 'bench:Statement.Recorded', %s) RETURNING notification_id"
)


class Capture(PostgresView):
    """The view, recording the statements a query runs, answering each from a list given
    in advance instead of running it."""

    def __init__(self, generation: int, answers: list[list[tuple[Any, ...]]]) -> None:
        super().__init__(cast(ConnectionPool, None), generation)
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
    """Call a query of the view with every statement it makes run here,
    on the async pool, one after the other: the function is called again with the
    answers so far until it asks for nothing more (its later statements may depend on
    earlier answers, as a page's topic filter does on the subtree)."""
    answers: list[list[tuple[Any, ...]]] = []
    async with _pool(state).connection() as conn:
        while True:
            view = Capture(_generation(state, "timeline"), list(answers))
            result = read(view)
            if len(view.statements) <= len(answers):
                return result
            sql, params = view.statements[len(answers)]
            answers.append(await (await conn.execute(sql, params, prepare=True)).fetchall())


@dataclass(frozen=True, slots=True)
class Window:
    """What the query of a page read through the service's SQL says of its window."""

    start: datetime | None
    end: datetime | None
    limit: int


def _window_of(since: str | None = None, until: str | None = None, limit: int = 50) -> Window:
    return Window(*_window(since, until), limit)


WINDOW = {"window": Provide(_window_of, sync_to_thread=False)}


@get("/timeline", media_type=JSON, dependencies=WINDOW)
async def timeline_page(
    state: State, window: Window, topic: FromQuery[str | None] = None
) -> Response[bytes]:
    def read(view: Capture) -> Page:
        return view.page(
            TimelineQuery(
                topic=topic,
                since=window.start,
                until=window.end,
                limit=window.limit,
                at=view.position(),
            )
        )

    page = await _run(state, read)
    body = b'{"items":[' + ",".join(page.items).encode() + b'],"next_cursor":null}'
    return Response(body, media_type=JSON)


@get("/topics/{id:str}/who-said-what", media_type=JSON, dependencies=WINDOW)
async def who_said_what_page(state: State, id: FromPath[str], window: Window) -> Response[bytes]:
    def read(view: Capture) -> dict[str, Any] | None:
        answer = view.who_said_what(id, (window.start, window.end), view.position(), raw=True)
        return None if answer is None else said_page(answer, 0, window.limit)[0]

    answer = await _run(state, read)
    if answer is None:
        return Response(b'{"status":404}', status_code=404, media_type=JSON)
    return Response(msgspec.json.encode({**answer, "next_cursor": None}), media_type=JSON)


async def _flat(
    state: State,
    topic: str,
    since: str | None,
    until: str | None,
    kinds: list[str],
    limit: int | None,
) -> list[tuple[Any, ...]]:
    """The flat page's rows: `(position, label, body, start_at, first_pos, precision,
    speakers)`, the last five None when the page is empty."""
    start, end = _window(since, until)
    after, exactly = (EARLIEST, ()) if start is None else starts_open_at(start)
    values = {
        "topic": topic,
        "kinds": kinds,
        "since": start or EARLIEST,
        "until": end or LATEST,
        "after": after,
        "exactly": list(exactly),
        "limit": limit,
    }
    # Planned for its values each time, never prepared: after five runs of a prepared
    # statement the server may keep one generic plan, which for the wide topic (its
    # topic and window unknown) sorts every entry of the topic: 12 ms a page, not 0.6 ms.
    async with _pool(state).connection() as conn:
        return await (await conn.execute(FLAT_PAGE, values, prepare=False)).fetchall()


@get("/flat/timeline", media_type=JSON)
async def flat_timeline(
    state: State,
    topic: FromQuery[str],
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    limit: FromQuery[int] = 50,
) -> Response[bytes]:
    rows = await _flat(state, topic, since, until, RECORD_KINDS, limit + 1)
    if not rows or rows[0][1] is None:  # not filled yet, or no such topic
        return Response(b'{"status":404}', status_code=404, media_type=JSON)
    found = [r for r in rows if r[2] is not None]
    following = None
    if len(found) > limit:
        last = found[limit - 1]
        following = encode_cursor([rows[0][0], [utc_text(last[3]), last[4]]])
    body = (
        b'{"items":['
        + ",".join(r[2] for r in found[:limit]).encode()
        + b'],"next_cursor":'
        + msgspec.json.encode(following)
        + b"}"
    )
    return Response(body, media_type=JSON)


_speakers = msgspec.json.Decoder(list[dict[str, str]]).decode


@get("/flat/topics/{id:str}/who-said-what", media_type=JSON)
async def flat_who_said_what(
    state: State,
    id: FromPath[str],
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    limit: FromQuery[int] = 50,
) -> Response[bytes]:
    """Who said what: every record of the window, by speaker (most records first), the
    first `limit` of them counted through the speakers."""
    rows = await _flat(state, id, since, until, SAID, None)
    if not rows or rows[0][1] is None:  # not filled yet, or no such topic
        return Response(b'{"status":404}', status_code=404, media_type=JSON)
    position, label = rows[0][:2]
    said: dict[str, tuple[dict[str, str], list[tuple[datetime, str, msgspec.Raw]]]] = {}
    for _, _, body, start, _, precision, speakers in rows:
        if body is not None:
            record = msgspec.Raw(body.encode())
            for actor in _speakers(speakers):
                said.setdefault(actor["id"], (actor, []))[1].append((start, precision, record))
    ranked = sorted(said.values(), key=lambda s: (-len(s[1]), s[0]["name"]))
    out, seen = [], 0
    for actor, records in ranked:
        if seen < limit:
            out.append(
                {
                    "actor": actor,
                    "count": len(records),
                    "first_at": utc_text(records[0][0]),
                    "first_precision": records[0][1],
                    "last_at": utc_text(records[-1][0]),
                    "last_precision": records[-1][1],
                    "records": [r for _, _, r in records[: limit - seen]],
                    "offset": 0,
                }
            )
        seen += len(records)
    answer = {
        "topic": {"id": id, "label": label},
        "speakers": out,
        "next_cursor": encode_cursor([position, limit]) if seen > limit else None,
    }
    return Response(msgspec.json.encode(answer), media_type=JSON)


@get("/counts", media_type=JSON)
async def counts_page(state: State, bucket: FromQuery[str] = "month") -> Response[bytes]:
    async with _pool(state).connection() as conn:
        found = await (await conn.execute(COUNT, (bucket,), prepare=True)).fetchall()
    items = [{"start": day, "count": n} for day, n in found]
    answer = {"bucket": bucket, "items": items, "total": sum(n for _, n in found)}
    return Response(msgspec.json.encode(answer), media_type=JSON)


class _Said(msgspec.Struct):
    """What the flat tables take from a record's stored JSON."""

    topics: list[str] = []
    occurred_precision: str = ""
    speaker: dict[str, Any] | None = None
    by: list[dict[str, Any]] = []


def fill_flat(conninfo: str, generation: int) -> int:
    """Fill the physical limit's tables with the records the timeline's rows show now,
    rendered as the service renders them (their topics' labels, their speakers' names);
    the position they reflect, which is returned."""
    rows = f"rm_timeline_g{generation}_rows"
    said = msgspec.json.Decoder(_Said).decode
    # A connection for each COPY at once, and one to read the records from.
    with (
        psycopg.connect(conninfo) as read,
        psycopg.connect(conninfo, autocommit=True) as write,
        psycopg.connect(conninfo, autocommit=True) as listing,
    ):
        for statement in FLAT_DDL:
            write.execute(statement)
        current = f"SELECT ref, body FROM {rows} WHERE to_pos IS NULL AND kind = %s"  # noqa: S608
        topics = {ref: json.loads(body) for ref, body in read.execute(current, ("topic",))}
        actors = {ref: json.loads(body) for ref, body in read.execute(current, ("actor",))}
        (position,) = read.execute(
            f"SELECT max(notification_id) FROM rm_timeline_g{generation}_tracking"  # noqa: S608
        ).fetchone() or (0,)
        labels = {slug: str(t["label"]) for slug, t in topics.items()}
        above = {slug: _ancestry(slug, topics) for slug in topics}

        def profile(slug: str) -> dict[str, str]:
            actor = actors.get(slug) or {"name": slug, "kind": "person"}
            return {"id": slug, "name": actor["name"], "kind": actor["kind"]}

        with write.transaction(), listing.transaction():
            write.execute("TRUNCATE flat_items, flat_topics, flat_at")
            listing.execute("TRUNCATE flat_pages")
            write.execute("INSERT INTO flat_at VALUES (%s)", (position or 0,))
            with write.cursor().copy("COPY flat_topics FROM STDIN") as copy:
                for slug, label in labels.items():
                    copy.write_row((slug, label))
            with (
                read.cursor("flat") as records,
                write.cursor().copy("COPY flat_items FROM STDIN") as items,
                listing.cursor().copy("COPY flat_pages FROM STDIN") as pages,
            ):
                records.execute(
                    f"SELECT row_id, kind, body, start_at, first_pos, end_at FROM {rows} "  # noqa: S608
                    "WHERE to_pos IS NULL AND kind = ANY(%s)",
                    (RECORD_KINDS,),
                )
                for row_id, kind, body, start, first, end in records:
                    found = said(body)
                    names = {slug: labels.get(slug, slug) for slug in found.topics}
                    item = '{"topic_labels":' + msgspec.json.encode(names).decode() + "," + body[1:]
                    speakers = [found.speaker] if found.speaker is not None else found.by
                    who = [profile(str(s["id"])) for s in speakers] if kind in SAID else []
                    items.write_row((row_id, item, found.occurred_precision, json.dumps(who)))
                    under = {t for slug in found.topics for t in above.get(slug, [slug])}
                    for topic in under:
                        pages.write_row((topic, start, first, end, kind, row_id))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE flat_pages, flat_items, flat_topics, flat_at")
    return int(position or 0)


def _ancestry(slug: str, topics: dict[str, dict[str, Any]]) -> list[str]:
    """The topic and its ancestors (a cycle stored before moves were serialised ends the
    walk)."""
    out = [slug]
    while (parent := topics.get(out[-1], {}).get("parent")) and parent not in out:
        out.append(parent)
    return out


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
        generations = {"timeline": PostgresView(sync_pool).generation_in_use() or 1}
        with sync_pool.connection() as conn:
            for statement in DDL + FLAT_DDL:
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
            flat_timeline,
            flat_who_said_what,
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
