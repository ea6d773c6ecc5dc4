"""The timeline's view in PostgreSQL, beside the event store's tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from eventsourcing.persistence import Tracking
from psycopg_pool import ConnectionPool

from projections.rows import (
    APPLICATION,
    LAYOUT,
    LAYOUT_TABLE,
    Pending,
    Row,
    TrackingConflict,
    clock_rows,
    drop,
    read_indexes,
    schema,
    stored_texts,
)
from projections.sqlview import SqlView

ADVANCED_CHANNEL = "timeline_read_models"  # notified when the view's batch commits
# Words as the parser finds them, lower-cased, not stemmed, accents kept (decision 022).
CONFIG = "'simple'"


def make_pool(
    conninfo: str,
    size: int = 4,
    name: str = "timeline-views",
    *,
    timeout: float = 120.0,
    reconnect_timeout: float = 300.0,
    cls: Callable[..., ConnectionPool] = ConnectionPool,
) -> ConnectionPool:
    """A pool of autocommit connections; reads are single statements. `timeout`: how long
    a caller waits for a connection (a worker's thread may wait for the other's batch,
    held up by a lock: patiently; serving processes give a short bound);
    `reconnect_timeout`: how long a failed connection attempt is retried in the background
    (with psycopg_pool's growing back-off) before the next caller that waits tries
    afresh; `cls`: the pool's class (a serving process gives one that notices a lost
    server)."""
    return cls(
        conninfo,
        min_size=1,
        max_size=size,
        kwargs={"autocommit": True},
        timeout=timeout,
        reconnect_timeout=reconnect_timeout,
        name=name,
        open=True,
    )


class PostgresView(SqlView):
    pipelined = True  # ids come from a sequence; the pool gives the writer its connection

    def __init__(self, pool: ConnectionPool, generation: int = 1) -> None:
        super().__init__(generation)
        self.pool = pool

    def create_tables(self, *, indexed: bool = True) -> None:
        with self.pool.connection() as conn, conn.transaction():
            # One creator at a time: workers and API processes may start together.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('timeline-read-model-ddl'))")
            columns = conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s",
                (f"{self.prefix}_links",),
            ).fetchall()
            conn.execute(LAYOUT_TABLE)
            stored = conn.execute(
                "SELECT version FROM rm_layout WHERE prefix = %s", (self.prefix,)
            ).fetchone()
            if columns and (stored is None or stored[0] < LAYOUT):
                self._drop(conn)  # an earlier layout: projected again from the log
            conn.execute(
                "INSERT INTO rm_layout VALUES (%s, %s) "
                "ON CONFLICT (prefix) DO UPDATE SET version = excluded.version",
                (self.prefix, LAYOUT),
            )
            for statement in schema(self.prefix, "bigint", "timestamptz"):
                conn.execute(statement)
            self._create_search(conn)
            if indexed:
                for statement in [*read_indexes(self.prefix), self._search_index()]:
                    conn.execute(statement)
            conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {self.prefix}_row_seq")
            # No query filters or sorts by the JSON texts: ANALYZE need not sample them
            # (a quarter of its time on these tables).
            conn.execute(
                f"ALTER TABLE {self.prefix}_rows ALTER COLUMN body SET STATISTICS 0, "
                "ALTER COLUMN state SET STATISTICS 0"
            )

    def _create_search(self, conn: psycopg.Connection[Any]) -> None:
        """The search index: each row version's searched text, written once and never
        updated (a close updates a row: an index over the rows would read its text
        anew), under a GIN index of its words. Its key lets a search whose filters are
        the narrower side (an actor's few records, against words most records hold)
        check each of their rows instead of reading every version the words find. A
        store written before it had one has its versions indexed here, once."""
        p = self.prefix
        if conn.execute("SELECT to_regclass(%s)", (f"{p}_search",)).fetchone() != (None,):
            return
        conn.execute(f"CREATE TABLE {p}_search (row_id bigint PRIMARY KEY, text text NOT NULL)")
        with conn.cursor() as cur:
            for chunk in stored_texts(p, lambda sql, params: cur.execute(sql, params).fetchall()):
                with cur.copy(f"COPY {p}_search (row_id, text) FROM STDIN") as copy:
                    copy.write("".join(f"{row_id}\t{_text(text)}\n" for row_id, text in chunk))

    def _search_index(self) -> str:
        """The words of the search table, for readers only (`read_indexes`)."""
        p = self.prefix
        return (
            f"CREATE INDEX IF NOT EXISTS {p}_search_words ON {p}_search "
            f"USING gin (to_tsvector({CONFIG}, text))"
        )

    def drop_tables(self) -> None:
        with self.pool.connection() as conn, conn.transaction():
            self._drop(conn)

    def _drop(self, conn: psycopg.Connection[Any]) -> None:
        for statement in drop(self.prefix):
            conn.execute(statement)
        conn.execute(f"DROP SEQUENCE IF EXISTS {self.prefix}_row_seq")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn:
            return conn.execute(sql, params, prepare=True).fetchall()

    def one_of(self, column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(%s)", [list(values)]

    def matching(self, text: str) -> tuple[str, list[Any]]:
        return (
            f"SELECT s.row_id FROM {self.prefix}_search s "
            f"WHERE to_tsvector({CONFIG}, s.text) @@ plainto_tsquery({CONFIG}, %s)",
            [text],
        )

    def json_without(self, column: str, keys: Sequence[str]) -> str:
        return f"({column}::jsonb - '{{{','.join(keys)}}}'::text[])"

    def day_of(self, column: str, bucket: str) -> str:
        assert bucket in ("day", "week", "month", "year")  # date_trunc's weeks start on Monday
        return f"to_char(date_trunc('{bucket}', {column} AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"

    def reserve_ids(self, rows: Sequence[Row]) -> None:
        missing = [row for row in rows if row.row_id is None]
        if not missing:
            return
        found = self.query(
            f"SELECT nextval('{self.prefix}_row_seq') FROM generate_series(1, %s)",
            (len(missing),),
        )
        for row, (row_id,) in zip(missing, found, strict=True):
            row.row_id = row_id

    def _write(self, pending: Pending, tracking: Tracking) -> None:
        p = self.prefix
        self.reserve_ids(pending.rows)
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            if pending.unfiled:
                row_ids, topics, positions = zip(*pending.unfiled, strict=True)
                cur.execute(
                    f"UPDATE {p}_links AS l SET to_pos = v.to_pos FROM unnest(%s::bigint[], "
                    "%s::text[], %s::bigint[]) AS v(row_id, value, to_pos) "
                    "WHERE l.row_id = v.row_id AND l.rel = 'under' AND l.value = v.value "
                    "AND l.to_pos IS NULL",
                    (list(row_ids), list(topics), list(positions)),
                )
            if pending.filed:
                # Before the closes: a version filed anew may be closed in the same batch.
                with cur.copy(f"COPY {p}_links ({LINK_COLUMNS}) FROM STDIN") as copy:
                    for link in pending.filed:
                        copy.write_row(link)
            if pending.closes:
                # By row id: a join on (kind, ref) may scan every current row. A link
                # closed before (filed elsewhere) keeps its end.
                for table, still_open in (("rows", ""), ("links", " AND r.to_pos IS NULL")):
                    cur.execute(
                        f"UPDATE {p}_{table} AS r SET to_pos = v.to_pos "
                        f"FROM unnest(%s::bigint[], %s::bigint[]) AS v(row_id, to_pos) "
                        f"WHERE r.row_id = v.row_id{still_open}",
                        (list(pending.closes), list(pending.closes.values())),
                    )
            if pending.rows:
                with cur.copy(
                    f"COPY {p}_rows (row_id, kind, ref, from_pos, to_pos, first_pos, "
                    f"start_at, end_at, body, state) FROM STDIN"
                ) as copy:
                    copy.write("".join(map(_row_line, pending.rows)))
                with cur.copy(f"COPY {p}_links ({LINK_COLUMNS}) FROM STDIN") as copy:
                    copy.write("".join(map(_links_lines, pending.rows)))
                with cur.copy(f"COPY {p}_search (row_id, text) FROM STDIN") as copy:
                    copy.write("".join(map(_search_line, pending.rows)))
            self._tick(cur, pending)
            self._track(cur, pending.after, tracking.notification_id)
            # API processes waiting for this position hear of it at the commit.
            cur.execute("SELECT pg_notify(%s, '')", (ADVANCED_CHANNEL,))

    def _tick(self, cur: psycopg.Cursor[Any], pending: Pending) -> None:
        cur.execute("SELECT max(position) FROM rm_clock")
        known = cur.fetchone()
        ticks = [t for t in pending.clock if known is None or known[0] is None or t[0] > known[0]]
        if not ticks:
            return  # another generation has told the clock already
        cur.execute(
            "SELECT high_water FROM rm_clock WHERE position < %s ORDER BY position DESC LIMIT 1",
            (ticks[0][0],),
        )
        before = cur.fetchone()
        rows = clock_rows(before[0] if before else None, ticks)
        positions, recorded, highs = zip(*rows, strict=True)
        cur.execute(
            "INSERT INTO rm_clock SELECT * FROM unnest(%b::bigint[], %b::timestamptz[], "
            "%b::timestamptz[]) ON CONFLICT (position) DO NOTHING",
            (list(positions), list(recorded), list(highs)),
        )

    def _track(self, cur: psycopg.Cursor[Any], after: int, position: int) -> None:
        p = self.prefix
        if after == 0:
            cur.execute(
                f"INSERT INTO {p}_tracking VALUES (%s, 0) ON CONFLICT DO NOTHING",
                (APPLICATION,),
            )
        cur.execute(
            f"UPDATE {p}_tracking SET notification_id = %s "
            f"WHERE application_name = %s AND notification_id = %s",
            (position, APPLICATION, after),
        )
        if cur.rowcount != 1:
            raise TrackingConflict(f"{self.name}: tracking is no longer at {after}")

    def analyze(self) -> None:
        with self.pool.connection() as conn:
            conn.execute(f"ANALYZE {self.prefix}_rows, {self.prefix}_links, {self.prefix}_search")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self.pool.connection() as conn:
            conn.execute(sql, params)


class AdvisoryLease:
    """Leadership of the view's worker across processes: a PostgreSQL advisory lock held by
    a session of its own, released when the holder ends or dies."""

    def __init__(self, conninfo: str, key: str) -> None:
        self.conninfo = conninfo
        self.key = key
        self._conn: psycopg.Connection[Any] | None = None

    def acquire(self) -> bool:
        if self._conn is not None and not self._conn.closed:
            return True
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True)
            row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self.key,)).fetchone()
        except psycopg.Error:
            return False
        if row and row[0]:
            self._conn = conn
            return True
        conn.close()
        return False

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


LINK_COLUMNS = "row_id, rel, value, start_at, first_pos, from_pos, to_pos, end_at"


# COPY's text format, written directly: psycopg's row formatter costs more than the
# rest of a projection's work on a row.
def _text(value: str) -> str:
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _opt(value: object) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _links_lines(r: Row) -> str:
    tail = f"{_opt(r.start_at)}\t{r.first_pos}\t{r.from_pos}\t{_opt(r.to_pos)}\t{_opt(r.end_at)}\n"
    return "".join(f"{r.row_id}\t{_text(rel)}\t{_text(value)}\t{tail}" for rel, value in r.links)


def _search_line(r: Row) -> str:
    text = r.search_text()
    return "" if text is None else f"{r.row_id}\t{_text(text)}\n"


def _row_line(r: Row) -> str:
    body, state = r.texts()
    return (
        f"{r.row_id}\t{_text(r.kind)}\t{_text(r.ref)}\t{r.from_pos}\t{_opt(r.to_pos)}\t"
        f"{r.first_pos}\t{_opt(r.start_at)}\t{_opt(r.end_at)}\t{_text(body)}\t{_text(state)}\n"
    )
