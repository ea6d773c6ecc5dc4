"""Where the timeline's view meets the configured store: which view, which lease, which
wake-up."""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path

import psycopg

from domain.application import Timeline
from projections.postgres import ADVANCED_CHANNEL, AdvisoryLease, PostgresView, make_pool
from projections.sqlite import MEMORY, FileLease, SqliteDatabase, SqliteView, ThreadLease
from projections.sqlview import NAME
from projections.view import TimelineView
from projections.workers import Lease, ReadModels
from service.store.database import ServingDatastore, Store, SweptPool

log = logging.getLogger("timeline.projections")


def open_read_models(store: Store, app: Timeline) -> ReadModels:
    """The view in the same database as the events, and its worker."""
    if store.kind == "postgres":
        return _postgres(store, app, store.views)
    path = MEMORY if store.kind == "memory" else store.sqlite_path
    db = SqliteDatabase(path)
    lock = threading.Lock()

    def view(generation: int) -> TimelineView:
        return SqliteView(db, generation)

    def lease() -> Lease:
        if path == MEMORY:
            return ThreadLease(lock)
        return FileLease(str(Path(path).with_name(f"{Path(path).name}.{NAME}.lock")))

    # SQLite cannot notify other processes: writes here wake the runner, others poll.
    return ReadModels(app, view, lease, poll_interval=0.5)


def _postgres(store: Store, app: Timeline, pool_size: int) -> ReadModels:
    schema = store.env["POSTGRES_SCHEMA"]
    conninfo = store.conninfo()
    options = [f"-c search_path={schema}"] if schema else []
    if store.bounds is not None:  # a serving process: every statement bounded
        options.append(store.bounds.options())
    if options:
        conninfo = psycopg.conninfo.make_conninfo(conninfo, options=" ".join(options))
    if store.bounds is None:
        pool = make_pool(conninfo, size=pool_size)
    else:  # a lost server, found by either pool: both swept at once
        datastore = getattr(app.factory, "datastore", None)
        assert isinstance(datastore, ServingDatastore)  # as `parse_url` chose with bounds
        pool = make_pool(
            conninfo,
            size=pool_size,
            timeout=store.bounds.pool_timeout,
            reconnect_timeout=store.bounds.reconnect_timeout,
            cls=functools.partial(SweptPool, sweeper=datastore.sweeper),
        )
    key_base = f"{store.env['POSTGRES_DBNAME']}.{schema or 'public'}"

    def view(generation: int) -> TimelineView:
        return PostgresView(pool, generation)

    def lease() -> Lease:
        return AdvisoryLease(conninfo, f"timeline-projection:{key_base}:{NAME}")

    models = ReadModels(app, view, lease, poll_interval=5.0)
    closed = threading.Event()
    listener = threading.Thread(
        target=_listen, args=(conninfo, models, closed), daemon=True, name="projection-listen"
    )
    listener.start()
    # Closing the worker ends its listener and its pool: no session stays open.
    models.on_close += [closed.set, lambda: listener.join(5.0), pool.close]
    return models


def _listen(conninfo: str, models: ReadModels, closed: threading.Event) -> None:
    """Wake the runner (and the live streams) on the event store's notifications, and
    the requests waiting for a position on the view's; all of them read what is
    stored, so a lost notification only costs a poll interval."""
    while not closed.is_set():
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute("LISTEN timeline_events")
                conn.execute(f"LISTEN {ADVANCED_CHANNEL}")
                while not closed.is_set():
                    for note in conn.notifies(timeout=0.5):
                        if note.channel == ADVANCED_CHANNEL:
                            models.advanced()
                        else:
                            models.wake_all()
        except psycopg.Error as e:
            log.info("projection listener reconnecting: %s", e)
            closed.wait(1.0)
