"""Where `TIMELINE_DATABASE_URL` becomes the event store's settings: the one place.

`memory://`, `sqlite:///path/to/dir-or-file` or `postgresql://user:pw@host:port/db`.
The PostgreSQL store refuses to start on a server that may lose acknowledged writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

import psycopg

from domain.application import Timeline

SQLITE_FILE = "timeline.sqlite3"
_TRUE = {"y", "yes", "t", "true", "on", "1"}


class StoreError(Exception):
    """The store cannot be opened as configured."""


@dataclass(frozen=True, slots=True)
class Store:
    """A parsed database URL."""

    url: str
    kind: str  # "memory" | "sqlite" | "postgres"
    env: dict[str, str]  # the eventsourcing settings

    @property
    def sqlite_path(self) -> str:
        return self.env["SQLITE_DBNAME"]

    def conninfo(self) -> str:
        """psycopg connection string for the PostgreSQL store."""
        e = self.env
        return psycopg.conninfo.make_conninfo(
            dbname=e["POSTGRES_DBNAME"],
            host=e["POSTGRES_HOST"],
            port=e["POSTGRES_PORT"],
            user=e["POSTGRES_USER"],
            password=e["POSTGRES_PASSWORD"] or None,
            connect_timeout=e["POSTGRES_CONNECT_TIMEOUT"],
        )


def parse_url(url: str, *, pool_size: int = 10, schema: str = "") -> Store:
    """Translate a database URL into the library's settings."""
    parts = urlsplit(url)
    if parts.scheme == "memory":
        return Store(url, "memory", {"PERSISTENCE_MODULE": "eventsourcing.popo"})
    if parts.scheme == "sqlite":
        # As elsewhere: sqlite:///relative/path and sqlite:////absolute/path.
        return Store(url, "sqlite", _sqlite_env(unquote(parts.path)[1:]))
    if parts.scheme in ("postgresql", "postgres"):
        return Store(url, "postgres", _postgres_env(parts, pool_size, schema))
    raise StoreError(
        f"TIMELINE_DATABASE_URL must start with memory://, sqlite:/// or postgresql://, "
        f"not {parts.scheme or url!r}"
    )


def _sqlite_env(path: str) -> dict[str, str]:
    if not path:
        raise StoreError("sqlite:/// needs a path, e.g. sqlite:///.timeline")
    target = Path(path)
    if target.is_dir() or path.endswith("/") or not target.suffix:
        target.mkdir(parents=True, exist_ok=True)
        target = target / SQLITE_FILE
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(target),
        "SQLITE_LOCK_TIMEOUT": "10",
    }


def _postgres_env(parts: SplitResult, pool_size: int, schema: str) -> dict[str, str]:
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    dbname = unquote(parts.path.lstrip("/")) or "postgres"
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        # Fail fast instead of the library's default of waiting forever for the table lock
        # and retrying each connect for a long time.
        "POSTGRES_CONNECT_TIMEOUT": query.get("connect_timeout", "5"),
        "POSTGRES_LOCK_TIMEOUT": query.get("lock_timeout", "5"),
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "10",
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "POSTGRES_PRE_PING": "y",
        "POSTGRES_SCHEMA": query.get("schema", schema),
        # Its insert function takes no table lock, so readers at the head of the log
        # could skip events: never on.
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
    }


def check_postgres_durable(store: Store) -> None:
    """Refuse a server that acknowledges commits it may lose."""
    try:
        with psycopg.connect(store.conninfo(), autocommit=True) as conn:
            settings: dict[str, str] = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings "
                    "WHERE name IN ('fsync', 'synchronous_commit')"
                ).fetchall()
            )
    except psycopg.Error as e:
        raise StoreError(f"cannot reach PostgreSQL at {_redacted(store)}: {e}") from e
    for name in ("fsync", "synchronous_commit"):
        if settings.get(name) == "off":
            raise StoreError(
                f"PostgreSQL runs with {name}=off: a crash could lose writes this "
                f"service has acknowledged. Turn {name} on to use this store."
            )


def _redacted(store: Store) -> str:
    e = store.env
    return f"{e['POSTGRES_HOST']}:{e['POSTGRES_PORT']}/{e['POSTGRES_DBNAME']}"


def open_timeline(store: Store) -> Timeline:
    """The write model on the configured store, after the store's safety checks."""
    if os.environ.get("POSTGRES_ENABLE_DB_FUNCTIONS", "").lower() in _TRUE:
        raise StoreError(
            "POSTGRES_ENABLE_DB_FUNCTIONS is on: its insert path takes no table lock, so "
            "projections could skip events. Unset it."
        )
    if store.kind != "postgres":
        return Timeline(env=store.env)
    check_postgres_durable(store)
    # The library creates its tables and function as it opens; processes starting together
    # would collide ("tuple concurrently updated"), so they take turns.
    with psycopg.connect(store.conninfo(), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('timeline-store-ddl'))")
        _ensure_schema(store)
        return Timeline(env=store.env)


def _ensure_schema(store: Store) -> None:
    schema = store.env["POSTGRES_SCHEMA"]
    if schema:
        with psycopg.connect(store.conninfo(), autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    psycopg.sql.Identifier(schema)
                )
            )
