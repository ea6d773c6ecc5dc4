"""Where `TIMELINE_DATABASE_URL` becomes the event store's settings: the one place.

`memory://`, `sqlite:///path/to/dir-or-file` or `postgresql://user:pw@host:port/db`. A
PostgreSQL URL may list hosts (`host1:5432,host2:5432`): every session then goes to the
one that takes writes (`target_session_attrs=read-write`), so that after a replica is
promoted the processes find it as they reconnect.
The PostgreSQL store refuses to start on a server that may lose acknowledged writes. A
serving process gives it `Bounds`: every statement and the events table's lock are waited
for a bounded time, a pooled connection too, and a failed call is not retried but raised at
once as `StoreUnavailable`, which the API answers 503 with `Retry-After`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError
from eventsourcing.postgres import ConnectionPool, PostgresDatastore, PostgresFactory
from eventsourcing.utils import Environment, EnvType
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool as PsycopgPool

from service.store.commits import StoreTimeline

log = logging.getLogger("timeline.store")
SQLITE_FILE = "timeline.sqlite3"
_TRUE = {"y", "yes", "t", "true", "on", "1"}


class StoreError(Exception):
    """The store cannot be opened as configured."""


class StoreUnreachable(StoreError):
    """The database did not answer: it may yet (a worker waits for it)."""


class StoreUnavailable(PersistenceError):
    """The database did not answer within a serving process's bounds: it is away, a lock
    or a connection was not free in time, or the statement ran too long. Raised at once
    (never retried here): the caller answers 503 and the client retries."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """How long a serving process lets one database call wait, in seconds."""

    statement_timeout: float = 5.0  # any one statement, its lock waits included
    # Any one lock wait (a read behind a maintenance lock, the events table's write lock).
    # Writes are committed in groups, one after another, so a write blocked by a lock
    # may wait for the group before its own: twice this at most.
    lock_timeout: float = 0.5
    pool_timeout: float = 0.5  # a free pooled connection
    # A failed connection attempt is retried in the background for this long; then the
    # next request that waits tries afresh, so the pool is back within about this long
    # of the server (psycopg_pool's own back-off reaches minutes).
    reconnect_timeout: float = 1.0

    def options(self) -> str:
        """libpq `options` that bound every statement of a session, and its lock waits."""
        return (
            f"-c statement_timeout={round(self.statement_timeout * 1000)} "
            f"-c lock_timeout={round(self.lock_timeout * 1000)}"
        )

    def as_env(self) -> dict[str, str]:
        return {
            "SERVING_STATEMENT_TIMEOUT": str(self.statement_timeout),
            "SERVING_LOCK_TIMEOUT": str(self.lock_timeout),
            "SERVING_POOL_TIMEOUT": str(self.pool_timeout),
            "SERVING_RECONNECT_TIMEOUT": str(self.reconnect_timeout),
        }

    @classmethod
    def from_env(cls, env: Environment) -> Bounds:
        def get(name: str, default: float) -> float:
            value = env.get(name)
            return float(value) if value else default

        default = cls()
        return cls(
            statement_timeout=get("SERVING_STATEMENT_TIMEOUT", default.statement_timeout),
            lock_timeout=get("SERVING_LOCK_TIMEOUT", default.lock_timeout),
            pool_timeout=get("SERVING_POOL_TIMEOUT", default.pool_timeout),
            reconnect_timeout=get("SERVING_RECONNECT_TIMEOUT", default.reconnect_timeout),
        )


@dataclass(frozen=True, slots=True)
class Store:
    """A parsed database URL."""

    url: str
    kind: str  # "memory" | "sqlite" | "postgres"
    env: dict[str, str]  # the eventsourcing settings
    bounds: Bounds | None = None  # set for a serving process (PostgreSQL)
    views: int = 0  # the read models' pool (PostgreSQL; the events' pool is in `env`)

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
            target_session_attrs=e.get(TARGET_SESSION_ATTRS),
        )


def parse_url(
    url: str, *, pool_size: int = 10, schema: str = "", bounds: Bounds | None = None
) -> Store:
    """Translate a database URL into the library's settings; `pool_size`: the most
    connections the process may hold (PostgreSQL; see `share`); `bounds` for a process
    that serves requests (PostgreSQL only: the embedded stores have no server to wait
    for)."""
    parts = urlsplit(url)
    if parts.scheme == "memory":
        return Store(url, "memory", {"PERSISTENCE_MODULE": "eventsourcing.popo"})
    if parts.scheme == "sqlite":
        # As elsewhere: sqlite:///relative/path and sqlite:////absolute/path.
        return Store(url, "sqlite", _sqlite_env(unquote(parts.path)[1:]))
    if parts.scheme in ("postgresql", "postgres"):
        events, views = share(pool_size)
        env = _postgres_env(parts, events, schema, bounds)
        return Store(url, "postgres", env, bounds, views)
    raise StoreError(
        f"TIMELINE_DATABASE_URL must start with memory://, sqlite:/// or postgresql://, "
        f"not {parts.scheme or url!r}"
    )


# Sessions of their own that a process may hold beside its pools: the listener of the
# log's notifications, and the lease of the projection it runs (or rebuilds).
SESSIONS = 2


def share(connections: int) -> tuple[int, int]:
    """`(events, views)`: the pools' sizes, so that one process never holds more than
    `connections` sessions of PostgreSQL (TIMELINE_POOL_SIZE), its own sessions included.
    The read models' pool, which most requests use, gets the larger half (and at least
    two connections: a projection builds its next batch while the last is written)."""
    free = connections - SESSIONS
    if free < 3:
        raise StoreError(
            f"TIMELINE_POOL_SIZE={connections} is too small: a process needs at least "
            f"{SESSIONS + 3} connections ({SESSIONS} sessions of its own, one for the events "
            "and two for the read models, whose worker writes a batch while it reads)"
        )
    return free // 2, free - free // 2


def capacity_warning(store: Store, wanted: int) -> str | None:
    """What to warn of when the server cannot give `wanted` more connections (its
    `max_connections`, less those reserved for superusers and those open now)."""
    with psycopg.connect(store.conninfo(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int,"
            " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
        ).fetchone()
    assert row is not None
    allowed, reserved, open_now = row
    free = allowed - reserved - (open_now - 1)  # this session is about to close
    if wanted <= free:
        return None
    return (
        f"PostgreSQL at {_redacted(store)} allows {allowed} connections ({reserved} reserved "
        f"for superusers) and {open_now - 1} are open: {free} are free, but this is "
        f"configured to use up to {wanted}. Raise max_connections, or lower "
        "TIMELINE_POOL_SIZE or the number of processes."
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
        "APPLICATION_RECORDER_TOPIC": "service.store.recorders:SQLiteRecorder",
        "SQLITE_DBNAME": str(target),
        "SQLITE_LOCK_TIMEOUT": "10",
    }


TARGET_SESSION_ATTRS = "POSTGRES_TARGET_SESSION_ATTRS"  # not the library's: ours
_HOST = re.compile(r"(\[[^\]]*\]|[^:\[\]]*)(?::([0-9]{1,5}))?")


def _hosts(parts: SplitResult) -> tuple[str, str]:
    """libpq's `host` and `port` for the URL's hosts, each comma-separated."""
    listed = parts.netloc.rpartition("@")[2].split(",")
    hosts, ports = [], []
    for item in listed:
        found = _HOST.fullmatch(item)
        if found is None:
            raise StoreError(f"TIMELINE_DATABASE_URL: {item!r} is not host[:port]")
        hosts.append(unquote(found[1]).strip("[]") or "127.0.0.1")
        ports.append(found[2] or "5432")
    return ",".join(hosts), ",".join(ports)


def _postgres_env(
    parts: SplitResult, events: int, schema: str, bounds: Bounds | None
) -> dict[str, str]:
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    dbname = unquote(parts.path.lstrip("/")) or "postgres"
    host, port = _hosts(parts)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "APPLICATION_RECORDER_TOPIC": "service.store.recorders:PostgresRecorder",
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": host,
        "POSTGRES_PORT": port,
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        # Fail fast instead of the library's default of waiting forever for the table lock
        # and retrying each connect for a long time.
        "POSTGRES_CONNECT_TIMEOUT": query.get("connect_timeout", "5"),
        "POSTGRES_LOCK_TIMEOUT": query.get("lock_timeout", "5"),
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "10",
        "POSTGRES_POOL_SIZE": str(events),
        "POSTGRES_MAX_OVERFLOW": "0",  # a hard cap (see `share`)
        "POSTGRES_PRE_PING": "y",
        "POSTGRES_SCHEMA": query.get("schema", schema),
        # Its insert function takes no table lock, so readers at the head of the log
        # could skip events: never on.
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
    }
    # With several hosts, the writer's sessions go to the one that takes writes.
    attrs = query.get("target_session_attrs", "read-write" if "," in host else "")
    if attrs:
        env[TARGET_SESSION_ATTRS] = attrs
        env["PERSISTENCE_MODULE"] = f"{__name__}:TimelinePostgresFactory"
    if bounds is not None:
        if "lock_timeout" in query:
            bounds = replace(bounds, lock_timeout=float(query["lock_timeout"]))
        env.update(bounds.as_env())
        env["PERSISTENCE_MODULE"] = f"{__name__}:ServingPostgresFactory"
    return env


class ServingDatastore(PostgresDatastore):
    """The library's datastore as a serving process needs it: every statement bounded
    (`statement_timeout`), a connection waited for at most `pool_timeout`, a lost server
    noticed by one request and reconnected to within about `reconnect_timeout`, and every
    failure raised at once as `StoreUnavailable`.

    The library's recorders retry each call ten times on an operational error; with lock,
    statement and pool timeouts each of seconds, one request could then take a minute.
    `StoreUnavailable` is not among the errors they retry."""

    def __init__(self, parsed: PostgresDatastore, bounds: Bounds) -> None:
        pool = parsed.pool
        kwargs: dict[str, Any] = dict(pool.kwargs) if isinstance(pool.kwargs, dict) else {}
        super().__init__(
            dbname=kwargs["dbname"],
            host=kwargs["host"],
            port=kwargs["port"],
            user=kwargs["user"],
            password=kwargs["password"],
            connect_timeout=bounds.pool_timeout,
            idle_in_transaction_session_timeout=parsed.idle_in_transaction_session_timeout,
            pool_size=pool.min_size,
            max_overflow=pool.max_size - pool.min_size,
            max_waiting=pool.max_waiting,
            conn_max_age=pool.max_lifetime,
            # The library writes it into "SET LOCAL lock_timeout = '{}s'", which PostgreSQL
            # reads in fractions of a second too.
            lock_timeout=cast(int, bounds.lock_timeout),
            schema=parsed.schema,
            single_row_tracking=parsed.single_row_tracking,
            originator_id_type="uuid" if parsed.originator_id_type == "uuid" else "text",
            enable_db_functions=parsed.enable_db_functions,
        )
        self.sweeper = Sweeper()
        self.pool = ConnectionPool(
            connection_class=psycopg.Connection[DictRow],
            kwargs={**kwargs, "options": bounds.options()},
            min_size=pool.min_size,
            max_size=pool.max_size,
            open=False,
            configure=self.after_connect_func(),
            check=self.sweeper.check,
            timeout=bounds.pool_timeout,
            max_waiting=pool.max_waiting,
            max_lifetime=pool.max_lifetime,
            reconnect_timeout=bounds.reconnect_timeout,
            name="timeline-events",
        )
        self.sweeper.watch(self.pool)

    @contextmanager
    def get_connection(self) -> Iterator[psycopg.Connection[DictRow]]:
        try:
            with super().get_connection() as conn:
                yield conn
        except (OperationalError, InterfaceError) as e:
            raise StoreUnavailable(str(e)) from e


class Sweeper:
    """Checks every idle connection of the pools it watches, in the background, once one
    is found broken: after a server restart each of them is, and psycopg_pool makes a
    caller that draws a broken one wait out its timeout, so without a sweep one request
    per stale connection fails after the server is back. A connection is found broken by
    the events pool's `check` as it is drawn, or as it comes back to the read models'
    `SweptPool` (which is not pinged: reads go on at one statement each). At most one
    sweep at a time, and none within `interval` of the last."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self._pools: list[weakref.ref[PsycopgPool[Any]]] = []
        self._running = threading.Lock()
        self._last = 0.0

    def watch(self, pool: PsycopgPool[Any]) -> None:
        self._pools.append(weakref.ref(pool))

    def check(self, conn: psycopg.Connection[Any]) -> None:
        """A pool's `check`: the usual ping, and a sweep when it fails."""
        try:
            PsycopgPool.check_connection(conn)
        except Exception:
            self.sweep()
            raise

    def sweep(self) -> None:
        if time.monotonic() - self._last < self.interval or not self._running.acquire(
            blocking=False
        ):
            return
        self._last = time.monotonic()
        pools = [p for ref in self._pools if (p := ref()) is not None]

        def run() -> None:
            try:
                for pool in pools:
                    try:
                        pool.check()
                    except Exception as e:  # closed meanwhile, or the server still away
                        log.info("pool %s: sweep stopped: %s", pool.name, e)
            finally:
                self._running.release()

        threading.Thread(target=run, name="timeline-pool-sweep", daemon=True).start()


class SweptPool(PsycopgPool[Any]):
    """A pool whose connection, come back broken (the server was lost), starts a sweep of
    every pool its sweeper watches."""

    def __init__(self, *args: Any, sweeper: Sweeper, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sweeper = sweeper
        sweeper.watch(self)

    def putconn(self, conn: psycopg.Connection[Any]) -> None:
        if conn.broken:
            self.sweeper.sweep()
        super().putconn(conn)


class TimelinePostgresFactory(PostgresFactory):
    """The library's PostgreSQL factory; its sessions go to the host that
    `POSTGRES_TARGET_SESSION_ATTRS` asks for (libpq tries the hosts in turn)."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)  # reads and checks every setting; opens nothing yet
        attrs = self.env.get(TARGET_SESSION_ATTRS)
        kwargs = self.datastore.pool.kwargs
        if attrs and isinstance(kwargs, dict):  # read at each connection the pool makes
            kwargs["target_session_attrs"] = attrs


class ServingPostgresFactory(TimelinePostgresFactory):
    """The library's PostgreSQL factory, with the datastore of a serving process."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        self.datastore = ServingDatastore(self.datastore, Bounds.from_env(self.env))


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
        raise StoreUnreachable(f"cannot reach PostgreSQL at {_redacted(store)}: {e}") from e
    for name in ("fsync", "synchronous_commit"):
        if settings.get(name) == "off":
            raise StoreError(
                f"PostgreSQL runs with {name}=off: a crash could lose writes this "
                f"service has acknowledged. Turn {name} on to use this store."
            )


def _redacted(store: Store) -> str:
    e = store.env
    return f"{e['POSTGRES_HOST']}:{e['POSTGRES_PORT']}/{e['POSTGRES_DBNAME']}"


def open_timeline(store: Store) -> StoreTimeline:
    """The write model on the configured store, after the store's safety checks."""
    if os.environ.get("POSTGRES_ENABLE_DB_FUNCTIONS", "").lower() in _TRUE:
        raise StoreError(
            "POSTGRES_ENABLE_DB_FUNCTIONS is on: its insert path takes no table lock, so "
            "projections could skip events. Unset it."
        )
    if store.kind != "postgres":
        return StoreTimeline(env=store.env)
    check_postgres_durable(store)
    # The library creates its tables and function as it opens; processes starting together
    # would collide ("tuple concurrently updated"), so they take turns.
    try:
        with psycopg.connect(store.conninfo(), autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext('timeline-store-ddl'))")
            _ensure_schema(store)
            return StoreTimeline(env=store.env)
    except (psycopg.OperationalError, OperationalError, InterfaceError) as e:
        raise StoreUnreachable(f"lost PostgreSQL at {_redacted(store)}: {e}") from e


def _ensure_schema(store: Store) -> None:
    schema = store.env["POSTGRES_SCHEMA"]
    if schema:
        with psycopg.connect(store.conninfo(), autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    psycopg.sql.Identifier(schema)
                )
            )
