"""Choosing the store from one URL, and refusing a store that could lose writes."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

from service.store.database import StoreError, Sweeper, SweptPool, open_timeline, parse_url
from tests.conftest import opens_and_writes


def test_memory_sqlite_and_postgres_urls_become_library_settings(tmp_path: Path) -> None:
    assert parse_url("memory://").env == {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    # A directory gets a database file inside it; a file path is used as it is.
    assert parse_url(f"sqlite:///{tmp_path}/dir").sqlite_path == f"{tmp_path}/dir/timeline.sqlite3"
    assert parse_url(f"sqlite:///{tmp_path}/a.db").sqlite_path == f"{tmp_path}/a.db"
    pg = parse_url("postgresql://ann:s%40cret@db.example:6543/timeline?lock_timeout=3").env
    assert (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_HOST"]) == (
        "ann",
        "s@cret",
        "db.example",
    )
    assert (pg["POSTGRES_PORT"], pg["POSTGRES_DBNAME"], pg["POSTGRES_LOCK_TIMEOUT"]) == (
        "6543",
        "timeline",
        "3",
    )
    # Never the insert function that takes no table lock; never an unbounded connect wait.
    assert pg["POSTGRES_ENABLE_DB_FUNCTIONS"] == "n"
    assert float(pg["POSTGRES_CONNECT_TIMEOUT"]) > 0


def test_a_url_of_several_hosts_sends_every_session_to_the_one_that_takes_writes() -> None:
    store = parse_url("postgresql://ann@db-1:6543,db-2,[::1]:7/timeline")
    assert (store.env["POSTGRES_HOST"], store.env["POSTGRES_PORT"]) == (
        "db-1,db-2,::1",
        "6543,5432,7",
    )
    assert "target_session_attrs=read-write" in store.conninfo()
    # One host: as libpq's default; asked for: as asked.
    assert "target_session_attrs" not in parse_url("postgresql://db-1/timeline").conninfo()
    asked = parse_url("postgresql://db-1,db-2/t?target_session_attrs=primary").conninfo()
    assert "target_session_attrs=primary" in asked
    with pytest.raises(StoreError, match="host"):
        parse_url("postgresql://db-1:x,db-2/timeline")


def test_an_unknown_scheme_is_refused_with_the_choices() -> None:
    with pytest.raises(StoreError, match="memory://, sqlite:/// or postgresql://"):
        parse_url("mysql://localhost/timeline")


def test_the_library_insert_function_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_ENABLE_DB_FUNCTIONS", "y")
    with pytest.raises(StoreError, match="takes no table lock"):
        open_timeline(parse_url("memory://"))


@pytest.fixture
def lax_database(postgres_database: str) -> Iterator[str]:
    """A database whose sessions commit without waiting for the disk."""
    admin = parse_url(postgres_database)
    name = "timeline_lax_" + admin.env["POSTGRES_DBNAME"][-12:]
    with psycopg.connect(admin.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(sql.Identifier(name))
        )
    yield postgres_database.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.postgres
def test_postgres_with_synchronous_commit_off_is_refused(lax_database: str) -> None:
    with pytest.raises(StoreError, match="synchronous_commit=off"):
        open_timeline(parse_url(lax_database))


@pytest.mark.postgres
def test_postgres_with_durable_settings_opens(postgres_database: str) -> None:
    opens_and_writes(parse_url(postgres_database, schema="durable_check"))


def test_an_unreachable_postgres_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match=r"cannot reach PostgreSQL at 127\.0\.0\.1:1/x"):
        open_timeline(parse_url("postgresql://postgres@127.0.0.1:1/x?connect_timeout=1"))


@pytest.mark.postgres
def test_processes_opening_a_new_postgres_store_together_do_not_collide(
    postgres_database: str,
) -> None:
    # Four openers race to create the same tables in a fresh schema.
    store = parse_url(postgres_database, schema="opened_together")
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_one() -> None:
        barrier.wait()
        try:
            open_timeline(store).close()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_connection_come_back_broken_sweeps_every_watched_pool(postgres_database: str) -> None:
    name = f"swept-{uuid.uuid4().hex[:8]}"
    conninfo = psycopg.conninfo.make_conninfo(
        parse_url(postgres_database).conninfo(), application_name=name
    )
    sweeper = Sweeper()
    options: dict[str, Any] = {"kwargs": {"autocommit": True}, "open": True}

    def live() -> int:
        with psycopg.connect(parse_url(postgres_database).conninfo(), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
            ).fetchone()
            return int(row[0]) if row else 0

    with (
        SweptPool(conninfo, sweeper=sweeper, min_size=3, max_size=3, **options) as swept,
        ConnectionPool(conninfo, min_size=2, max_size=2, **options) as other,
    ):
        sweeper.watch(other)
        swept.wait()
        other.wait()
        # Every idle connection of both pools goes stale, as after a server restart...
        with psycopg.connect(parse_url(postgres_database).conninfo(), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            )
        # ...the next read fails on one of them...
        with pytest.raises(psycopg.OperationalError), swept.connection() as conn:
            conn.execute("SELECT 1")
        # ...and, come back broken, it has both pools swept: their stale connections are
        # replaced in the background, so none other fails a caller.
        deadline = time.monotonic() + 10
        while live() < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live() == 5
        for pool, size in ((swept, 3), (other, 2)):
            drawn = [pool.getconn() for _ in range(size)]
            for conn in drawn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
                pool.putconn(conn)
