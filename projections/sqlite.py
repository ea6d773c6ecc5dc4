"""The timeline's view in SQLite: the embedded store's file, or memory for tests."""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from eventsourcing.persistence import Tracking

from projections.rows import (
    APPLICATION,
    LAYOUT,
    LAYOUT_TABLE,
    Pending,
    TrackingConflict,
    clock_rows,
    drop,
    parse_utc,
    read_indexes,
    schema,
    stored_texts,
    utc_text,
    words,
)
from projections.sqlview import SqlView

MEMORY = ":memory:"
# Words are letters, digits, marks (so that a decomposed accent or a vowel sign of Hindi
# stays in its word) and private-use characters; case is folded, accents kept: as
# PostgreSQL's `simple` configuration reads them, as far as the two agree (decision 022).
TOKENIZER = "unicode61 remove_diacritics 0 categories 'L* N* Co M*'"


class SqliteDatabase:
    """Connections to one SQLite database: one per thread for a file (WAL lets readers
    go on during a write), one shared under a lock in memory."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.RLock()
        self._shared = self._connect() if path == MEMORY else None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        if self.path != MEMORY:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        if self._shared is not None:
            with self._lock:
                yield self._shared
            return
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        yield conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


def _read(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    return conn.execute(sql.replace("%s", "?"), [_param(p) for p in params]).fetchall()


def fts_query(text: str) -> str:
    """An FTS5 query that finds every word of a user's text, in any order, none of it
    read as FTS5's syntax: each word quoted (a word holds no quotation mark)."""
    return " ".join(f'"{word}"' for word in words(text))


def _param(value: Any) -> Any:
    return utc_text(value) if isinstance(value, datetime) else value


class SqliteView(SqlView):
    def __init__(self, db: SqliteDatabase, generation: int = 1) -> None:
        super().__init__(generation)
        self.db = db

    def create_tables(self, *, indexed: bool = True) -> None:
        with self.db.transaction() as conn:
            made = conn.execute(f"PRAGMA table_info({self.prefix}_links)").fetchall()
            conn.execute(LAYOUT_TABLE)
            stored = conn.execute(
                "SELECT version FROM rm_layout WHERE prefix = ?", (self.prefix,)
            ).fetchone()
            if made and (stored is None or stored[0] < LAYOUT):
                for statement in drop(self.prefix):  # an earlier layout: projected again
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO rm_layout VALUES (?, ?) "
                "ON CONFLICT (prefix) DO UPDATE SET version = excluded.version",
                (self.prefix, LAYOUT),
            )
            for statement in schema(self.prefix, "INTEGER", "TEXT"):
                conn.execute(statement)
            self._create_search(conn)
            for statement in read_indexes(self.prefix) if indexed else []:
                conn.execute(statement)

    def _create_search(self, conn: sqlite3.Connection) -> None:
        """The search index: an FTS5 table that holds no copy of the text (the rows hold
        it, in their JSON), its row ids those of the row versions. A store written before
        it had one has its versions indexed here, once."""
        p = self.prefix
        made = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (f"{p}_search",))
        if made.fetchone():
            return
        conn.execute(
            f"CREATE VIRTUAL TABLE {p}_search USING fts5(text, content='', columnsize=0, "
            f'tokenize="{TOKENIZER}")'
        )
        for chunk in stored_texts(p, lambda sql, params: _read(conn, sql, params)):
            conn.executemany(f"INSERT INTO {p}_search (rowid, text) VALUES (?, ?)", chunk)

    def drop_tables(self) -> None:
        with self.db.transaction() as conn:
            for statement in drop(self.prefix):
                conn.execute(statement)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.db.connection() as conn:
            return _read(conn, sql, params)

    def matching(self, text: str) -> tuple[str, list[Any]]:
        return (
            f"SELECT rowid AS row_id FROM {self.prefix}_search WHERE {self.prefix}_search MATCH %s",
            [fts_query(text)],
        )

    def row_matches(self, text: str, filtered: bool) -> tuple[str, list[Any]] | None:
        # SQLite reads `row_id IN (a search)` from the search first, always: words most
        # records hold, narrowed to one actor, would have each of those records read.
        # Checked row by row as the actor's (or the topics') links are read in order,
        # FTS5 seeks the row id in each word's list. (Not without a filter: this
        # planner reads the timeline's own order no faster than the search's rows.)
        if not filtered:
            return None
        p = self.prefix
        return (
            f"EXISTS (SELECT 1 FROM {p}_search WHERE {p}_search MATCH %s AND rowid = r.row_id)",
            [fts_query(text)],
        )

    def unindexed(self, column: str) -> str:
        # Without statistics (the view never ANALYZEs SQLite) the planner takes
        # any index of a column compared for equality, such as `kind`, over a range of
        # positions. A unary + is SQLite's way to keep a term from choosing an index.
        return f"+{column}"

    def json_without(self, column: str, keys: Sequence[str]) -> str:
        paths = ", ".join(f"'$.{key}'" for key in keys)
        return f"json_remove({column}, {paths})"

    def day_of(self, column: str, bucket: str) -> str:
        # Instants are stored as UTC text, `2025-02-13T09:00:00.000000Z`; strftime's %w
        # counts from Sunday.
        day = f"substr({column}, 1, 10)"
        return {
            "day": day,
            "week": f"date({day}, '-' || ((strftime('%w', {day}) + 6) % 7) || ' days')",
            "month": f"substr({column}, 1, 7) || '-01'",
            "year": f"substr({column}, 1, 4) || '-01-01'",
        }[bucket]

    def _write(self, pending: Pending, tracking: Tracking) -> None:
        p = self.prefix
        with self.db.transaction() as conn:
            conn.executemany(
                f"UPDATE {p}_links SET to_pos = ? "
                "WHERE row_id = ? AND rel = 'under' AND value = ? AND to_pos IS NULL",
                [(pos, row_id, topic) for row_id, topic, pos in pending.unfiled],
            )
            # Before the closes: a version filed anew may be closed in the same batch.
            conn.executemany(
                f"INSERT INTO {p}_links VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [tuple(map(_param, link)) for link in pending.filed],
            )
            # A link closed before (filed elsewhere) keeps its end.
            for table, still_open in (("rows", ""), ("links", " AND to_pos IS NULL")):
                conn.executemany(
                    f"UPDATE {p}_{table} SET to_pos = ? WHERE row_id = ?{still_open}",
                    [(pos, row_id) for row_id, pos in pending.closes.items()],
                )
            (next_id,) = conn.execute(
                f"SELECT coalesce(max(row_id), 0) + 1 FROM {p}_rows"
            ).fetchone()
            for offset, row in enumerate(pending.rows):
                row.row_id = next_id + offset
            conn.executemany(
                f"INSERT INTO {p}_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.row_id,
                        r.kind,
                        r.ref,
                        r.from_pos,
                        r.to_pos,
                        r.first_pos,
                        _param(r.start_at),
                        _param(r.end_at),
                        *r.texts(),
                    )
                    for r in pending.rows
                ],
            )
            conn.executemany(
                f"INSERT INTO {p}_links VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [tuple(map(_param, link)) for r in pending.rows for link in r.link_rows()],
            )
            conn.executemany(
                f"INSERT INTO {p}_search (rowid, text) VALUES (?, ?)",
                [(r.row_id, t) for r in pending.rows if (t := r.search_text()) is not None],
            )
            self._tick(conn, pending)
            self._track(conn, pending.after, tracking.notification_id)

    def _tick(self, conn: sqlite3.Connection, pending: Pending) -> None:
        (known,) = conn.execute("SELECT max(position) FROM rm_clock").fetchone()
        ticks = [t for t in pending.clock if known is None or t[0] > known]
        if not ticks:
            return  # another generation has told the clock already
        before = conn.execute(
            "SELECT high_water FROM rm_clock WHERE position < ? ORDER BY position DESC LIMIT 1",
            (ticks[0][0],),
        ).fetchone()
        rows = clock_rows(parse_utc(before[0]) if before else None, ticks)
        conn.executemany(
            "INSERT INTO rm_clock VALUES (?, ?, ?) ON CONFLICT (position) DO NOTHING",
            [(pos, utc_text(at), utc_text(high)) for pos, at, high in rows],
        )

    def _track(self, conn: sqlite3.Connection, after: int, position: int) -> None:
        p = self.prefix
        if after == 0:
            conn.execute(
                f"INSERT INTO {p}_tracking VALUES (?, 0) ON CONFLICT DO NOTHING", (APPLICATION,)
            )
        changed = conn.execute(
            f"UPDATE {p}_tracking SET notification_id = ? "
            f"WHERE application_name = ? AND notification_id = ?",
            (position, APPLICATION, after),
        ).rowcount
        if changed != 1:
            raise TrackingConflict(f"{self.name}: tracking is no longer at {after}")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self.db.transaction() as conn:
            conn.execute(sql.replace("%s", "?"), [_param(p) for p in params])


class FileLease:
    """Leadership of the view's worker among processes sharing a SQLite file: a lock file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: Any = None

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        handle = open(self.path, "a+b")  # noqa: SIM115 (held open while leading)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class ThreadLease:
    """Leadership within one process, for the in-memory store."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._held = False

    def acquire(self) -> bool:
        if not self._held:
            self._held = self._lock.acquire(blocking=False)
        return self._held

    def release(self) -> None:
        if self._held:
            self._lock.release()
            self._held = False
