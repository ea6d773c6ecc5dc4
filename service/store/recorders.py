"""The library's event recorders with two additions for bulk work (decision record 007).

- `select_many`: the stored events of many aggregates in one query, so that an import
  correcting thousands of records reads them in one round trip per batch, not one each
  (`read_ahead` puts them in a unit of work).
- `select_notifications` after a position (what every projection batch asks) reads plain
  tuples: the library builds a dict for every row, 7% of a rebuild's time in the first
  full benchmark run.
- PostgreSQL inserts send the batch of events as a binary array. The library sends it
  as text, which psycopg escapes field by field with regular expressions: a third of
  the time of a bulk import. Same statement, same table lock, same notification.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import retry
from psycopg import Connection, Cursor
from psycopg.errors import InterfaceError, OperationalError
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Identifier

from domain.application import Unit

CHUNK = 1000  # ids per look-up query


class PostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = {
            "schema": Identifier(self.datastore.schema),
            "table": Identifier(self.events_table_name),
        }
        self._binary_insert = SQL(
            "INSERT INTO {schema}.{table} AS t (originator_id, originator_version, topic, state)"
            " SELECT originator_id, originator_version, topic, state"
            " FROM unnest(%b::{schema}.{stored_event_type}[]) RETURNING notification_id"
        ).format(**names, stored_event_type=Identifier(self.stored_event_type_name))
        self._select_after = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM {schema}.{table} WHERE notification_id > %s"
            " ORDER BY notification_id LIMIT %s"
        ).format(**names)
        self._select_head = SQL("SELECT max(notification_id) FROM {schema}.{table}").format(**names)
        self._select_many = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{table}"
            " WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(**names)

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        rows = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        curs.execute(self._binary_insert, (rows,))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        if start is None or stop is not None or topics:
            found: Sequence[Notification] = super().select_notifications(
                start, limit, stop, topics, inclusive_of_start=inclusive_of_start
            )
            return found
        after = start if not inclusive_of_start else start - 1
        with self.datastore.get_connection() as conn:
            return self.notifications_after(conn, after, limit)

    def notifications_after(
        self, conn: Connection[Any], after: int, limit: int
    ) -> list[Notification]:
        """The events after a position, read on a connection to this store or to a
        replica of it."""
        with conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(self._select_after, (after, limit), prepare=True)
            return [
                Notification(
                    id=nid,
                    originator_id=oid,
                    originator_version=version,
                    topic=topic,
                    state=bytes(state),
                )
                for nid, oid, version, topic, state in curs.fetchall()
            ]

    def head_on(self, conn: Connection[Any]) -> int:
        """The log's last position, as a connection to this store or a replica sees it."""
        with conn.cursor(row_factory=tuple_row) as curs:
            found = curs.execute(self._select_head).fetchone()
        return int(found[0] or 0) if found else 0

    def select_many(self, ids: Sequence[UUID]) -> list[StoredEvent]:
        found: list[StoredEvent] = []
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            for start in range(0, len(ids), CHUNK):
                curs.execute(self._select_many, (list(ids[start : start + CHUNK]),))
                found += [
                    StoredEvent(
                        row["originator_id"],
                        row["originator_version"],
                        row["topic"],
                        bytes(row["state"]),
                    )
                    for row in curs.fetchall()
                ]
        return found


class SQLiteRecorder(SQLiteApplicationRecorder):
    def select_many(self, ids: Sequence[UUID]) -> list[StoredEvent]:
        found: list[StoredEvent] = []
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), CHUNK):
                part = [i.hex for i in ids[start : start + CHUNK]]
                c.execute(
                    f"SELECT originator_id, originator_version, topic, state"  # noqa: S608
                    f" FROM {self.events_table_name}"
                    f" WHERE originator_id IN ({', '.join('?' * len(part))})"
                    " ORDER BY originator_id, originator_version",
                    part,
                )
                found += [
                    StoredEvent(
                        self.convert_originator_id(row["originator_id"]),
                        row["originator_version"],
                        row["topic"],
                        row["state"],
                    )
                    for row in c.fetchall()
                ]
        return found


def read_ahead(unit: Unit, ids: Iterable[UUID]) -> None:
    """Read the aggregates of these ids into the unit of work, for the use cases about to
    change them, in one query per thousand. (In memory there is nothing to save: each is
    read when used.)"""
    recorder = unit.timeline.recorder
    wanted = unit.unread(ids)
    if not wanted or not isinstance(recorder, (PostgresRecorder, SQLiteRecorder)):
        return
    events: dict[UUID, list[Any]] = {}
    for stored in recorder.select_many(wanted):
        event = unit.timeline.mapper.to_domain_event(stored)
        events.setdefault(event.originator_id, []).append(event)
    found: dict[UUID, Aggregate] = {}
    for id, history in events.items():
        aggregate: Aggregate | None = project_aggregate(None, history)
        if aggregate is not None:
            found[id] = aggregate
    unit.read_ahead(found, wanted)
