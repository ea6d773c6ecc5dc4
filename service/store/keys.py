"""API keys: a name, one scope, and only a hash of the secret stored.

Scopes are ordered: read < write < admin. A key's name is what events record as their
writer; the key itself is shown once, at creation, and never logged.

Keys have a table of their own, `api_keys`, beside the events in the same database, and
their own way to it: on PostgreSQL the event store's pool (so a key lookup counts within
TIMELINE_POOL_SIZE, and, serving, waits as long as a write may and answers 503 as it
would when the server is away), on SQLite a connection of their own. The read models
never see them, and a rebuild or a restore leaves them alone.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, get_args

from eventsourcing.postgres import PostgresDatastore, PostgresFactory
from psycopg import sql
from psycopg.rows import tuple_row

from domain.application import Timeline
from service.store.database import Store

Scope = Literal["read", "write", "admin"]  # in order: each allows what those before do
SCOPES: tuple[str, ...] = get_args(Scope)
PREFIX = "tlk_"
TABLE = "api_keys"  # its name since keys were first stored: the keys made then still work


class Table(Protocol):
    """The keys' table: `{table}` in a statement names it, `%s` marks a parameter."""

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def execute(self, statement: str, params: Sequence[Any] = ()) -> None: ...


@dataclass(frozen=True, slots=True)
class Key:
    name: str
    scope: str
    created_at: str
    revoked_at: str | None

    def allows(self, scope: str) -> bool:
        return self.revoked_at is None and SCOPES.index(self.scope) >= SCOPES.index(scope)


class KeyProblem(Exception):
    """A key command that cannot be done (name taken, unknown name, bad scope)."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    def __init__(self, db: Table) -> None:
        self.db = db
        db.execute(
            "CREATE TABLE IF NOT EXISTS {table} (name text PRIMARY KEY, scope text NOT NULL, "
            "digest text NOT NULL UNIQUE, created_at text NOT NULL, revoked_at text)"
        )

    def create(self, name: str, scope: str) -> str:
        """Make a key and return its secret, which is not stored."""
        if scope not in SCOPES:
            raise KeyProblem(f"scope must be one of {', '.join(SCOPES)}")
        if not name or len(name) > 100 or not name.isprintable():
            raise KeyProblem("a key name is 1 to 100 printable characters")
        if self.db.query("SELECT 1 FROM {table} WHERE name = %s", (name,)):
            raise KeyProblem(f"a key named {name!r} exists")
        secret = PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC).isoformat()
        self.db.execute(
            "INSERT INTO {table} VALUES (%s, %s, %s, %s, NULL)",
            (name, scope, _digest(secret), now),
        )
        return secret

    def find(self, secret: str) -> Key | None:
        if not secret.startswith(PREFIX) or len(secret) > 200:
            return None
        found = self.db.query(
            "SELECT name, scope, created_at, revoked_at FROM {table} WHERE digest = %s",
            (_digest(secret),),
        )
        return Key(*found[0]) if found else None

    def list(self) -> list[Key]:
        return [
            Key(*row)
            for row in self.db.query(
                "SELECT name, scope, created_at, revoked_at FROM {table} ORDER BY name"
            )
        ]

    def revoke(self, name: str) -> None:
        if not self.db.query(
            "SELECT 1 FROM {table} WHERE name = %s AND revoked_at IS NULL", (name,)
        ):
            raise KeyProblem(f"no active key named {name!r}")
        self.db.execute(
            "UPDATE {table} SET revoked_at = %s WHERE name = %s",
            (datetime.now(UTC).isoformat(), name),
        )


class PostgresTable:
    """The table in the event store's schema, reached through its pool."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore
        self.name = sql.Identifier(datastore.schema, TABLE)

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            return cur.execute(self._sql(statement), params).fetchall()

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        with self.datastore.get_connection() as conn:
            conn.execute(self._sql(statement), params)

    def _sql(self, statement: str) -> sql.Composed:
        return sql.SQL(statement).format(table=self.name)


class SqliteTable:
    """The table in the events' SQLite file, a connection a call; in memory, one connection
    kept for the process."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._memory = self._connect() if path == ":memory:" else None
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._memory is not None:
            with self._lock:
                yield self._memory
            return
        with closing(self._connect()) as conn:
            yield conn

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            return conn.execute(self._sql(statement), params).fetchall()

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        with self._connection() as conn:
            conn.execute(self._sql(statement), params)

    @staticmethod
    def _sql(statement: str) -> str:
        return statement.format(table=TABLE).replace("%s", "?")


def open_keys(store: Store, timeline: Timeline) -> KeyStore:
    """The keys of the configured store: in its database, beside the events."""
    if isinstance(timeline.factory, PostgresFactory):
        return KeyStore(PostgresTable(timeline.factory.datastore))
    return KeyStore(SqliteTable(":memory:" if store.kind == "memory" else store.sqlite_path))
