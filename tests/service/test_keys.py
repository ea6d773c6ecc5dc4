"""API keys live in a store of their own, `api_keys` beside the events: made, found,
listed and revoked without the read models, and the keys stored before they had it (in
the same table, then written through the read models' connections) still work."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing

import psycopg
import pytest
from psycopg import sql

from domain.application import Timeline
from service.store.database import Store
from service.store.keys import open_keys

# The table and a row as every earlier version wrote them.
LEGACY_TABLE = (
    "CREATE TABLE IF NOT EXISTS api_keys (name text PRIMARY KEY, scope text NOT NULL, "
    "digest text NOT NULL UNIQUE, created_at text NOT NULL, revoked_at text)"
)
LEGACY_SECRET = "tlk_" + "x" * 43
LEGACY_ROW = (
    "old-bot",
    "write",
    hashlib.sha256(LEGACY_SECRET.encode()).hexdigest(),
    "2025-01-01T00:00:00+00:00",
)


def test_keys_are_made_found_listed_and_revoked_without_the_read_models(
    store: Store, timeline: Timeline
) -> None:
    keys = open_keys(store, timeline)
    # A key is made and found by its secret...
    secret = keys.create("a-bot", "write")
    found = keys.find(secret)
    assert found is not None and found.name == "a-bot" and found.allows("write")
    assert not found.allows("admin")
    # ...listed by name, and once revoked it allows nothing.
    assert [k.name for k in keys.list()] == ["a-bot"]
    keys.revoke("a-bot")
    revoked = keys.find(secret)
    assert revoked is not None and not revoked.allows("read")
    if store.kind != "memory":  # another process opening the store sees the same keys
        assert [k.revoked_at is not None for k in open_keys(store, timeline).list()] == [True]


@pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)  # what outlives a process
def test_a_key_stored_before_keys_had_their_own_store_still_works(
    store: Store, timeline: Timeline
) -> None:
    # The table and a key as an earlier version left them in the database...
    if store.kind == "sqlite":
        with closing(sqlite3.connect(store.sqlite_path)) as conn, conn:
            conn.execute(LEGACY_TABLE)
            conn.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, NULL)", LEGACY_ROW)
    else:
        with psycopg.connect(store.conninfo(), autocommit=True) as pg:
            schema = sql.Identifier(store.env["POSTGRES_SCHEMA"])
            pg.execute(sql.SQL("SET search_path TO {}").format(schema))  # as the views had it
            pg.execute(LEGACY_TABLE)
            pg.execute("INSERT INTO api_keys VALUES (%s, %s, %s, %s, NULL)", LEGACY_ROW)
    # ...is found by the keys' own store, with the same table: nothing to migrate.
    keys = open_keys(store, timeline)
    found = keys.find(LEGACY_SECRET)
    assert found is not None and found.name == "old-bot" and found.allows("write")
    keys.revoke("old-bot")
    assert [k.revoked_at is not None for k in keys.list()] == [True]
