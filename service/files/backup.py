"""Backups that keep history: the whole event log as NDJSON, and its restore into an empty
store with the same positions, ids, versions and states (docs/backup.md, decision 021).

A file is a header line, one line per event in position order, and an end line with the
count and a SHA-256 of every line before it: a restore reads it once, writing as it goes
inside one transaction, and commits only once the end line checks out, so a truncated or
corrupted file leaves the store as empty as it found it.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import io
import json
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from typing import IO, Any, Protocol, cast
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder
from psycopg.sql import SQL, Identifier

from domain.application import Timeline
from service.files.backfill import GZIP_MAGIC
from service.store.recorders import PostgresRecorder, SQLiteRecorder

FORMAT = "timeline-events"
VERSION = 1
PAGE = 5000  # events read from the log at a time
BATCH = 10_000  # events written to SQLite at a time


class Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


class BackupRefused(Exception):
    """The file or the store does not allow a restore: nothing was written."""


@dataclass(frozen=True, slots=True)
class Summary:
    count: int  # events
    head: int  # the last event's position (0: none)


@dataclass(frozen=True, slots=True)
class Row:
    """One event of a backup, as the store holds it."""

    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes


# Export ----------------------------------------------------------------------------------


def export_events(timeline: Timeline, out: Sink) -> Summary:
    """Write every event of the log, up to its head when the export starts, to `out`,
    a page of the log at a time."""
    head = timeline.head_position()
    digest = hashlib.sha256()

    def write(line: dict[str, Any]) -> None:
        data = _encode(line)
        digest.update(data)
        out.write(data)

    write(
        {
            "format": FORMAT,
            "version": VERSION,
            "head": head,
            "exported_at": datetime.now(UTC).isoformat(),
            "eventsourcing": version("eventsourcing"),
            "timeline": version("geopolitical-timeline"),
        }
    )
    count, after = 0, 0
    while after < head and (
        page := timeline.recorder.select_notifications(
            start=after, limit=PAGE, inclusive_of_start=False
        )
    ):
        for note in page:
            if note.id > head:  # written since the export started
                break
            write(_event_line(timeline, note))
            count += 1
        after = page[-1].id
    out.write(_encode({"end": True, "count": count, "sha256": digest.hexdigest()}))
    return Summary(count, head)


def _encode(line: dict[str, Any]) -> bytes:
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _event_line(timeline: Timeline, note: Notification) -> dict[str, Any]:
    line: dict[str, Any] = {
        "position": note.id,
        "originator_id": str(note.originator_id),
        "originator_version": note.originator_version,
        "topic": note.topic,
        "recorded_at": cast(Any, timeline.mapper.to_domain_event(note)).timestamp.isoformat(),
    }
    try:
        line["state"] = note.state.decode()
    except UnicodeDecodeError:  # a compressed or encrypted store: bytes, not JSON text
        line["state_base64"] = base64.b64encode(note.state).decode()
    return line


# Reading a backup ---------------------------------------------------------------------------


def open_backup(path: str, stdin: IO[bytes] | None = None) -> IO[bytes]:
    """A backup file (gzip when it starts like gzip), or stdin for `-`."""
    if path != "-":
        with open(path, "rb") as probe:
            zipped = probe.read(2) == GZIP_MAGIC
        return cast(IO[bytes], gzip.open(path, "rb")) if zipped else open(path, "rb")
    raw = stdin or sys.stdin.buffer
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(cast(Any, raw))
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        return cast(IO[bytes], gzip.GzipFile(fileobj=buffered))
    return buffered


def read_backup(lines: Iterable[bytes]) -> Iterator[Row]:
    """The events of a backup, checked line by line; raises `BackupRefused` at the first
    line that is wrong, and at the end if the end line is missing or does not match."""
    digest = hashlib.sha256()
    numbered = enumerate(_readable(lines), start=1)
    header, head = _header(next(numbered, (1, b""))[1])
    digest.update(header)
    count, last = 0, 0
    for number, line in numbered:
        try:
            found = json.loads(line)
        except ValueError:
            raise BackupRefused(f"line {number} is not JSON: the file is corrupted") from None
        if isinstance(found, dict) and "end" in found:
            _check_end(found, count, digest.hexdigest(), number)
            if next(numbered, None) is not None:
                raise BackupRefused(f"line {number + 1}: text after the end line")
            if last != head:
                raise BackupRefused(f"the events end at position {last}, the header says {head}")
            return
        row = _row(found, number)
        if row.position <= last:
            raise BackupRefused(f"line {number}: position {row.position} is out of order")
        digest.update(line)
        count, last = count + 1, row.position
        yield row
    raise BackupRefused(f"the file ends after {count} events without its end line: truncated")


def _readable(lines: Iterable[bytes]) -> Iterator[bytes]:
    """The lines, or a refusal when the file cannot be read to its end (a gzip file cut
    short, or not gzip after its first bytes)."""
    read = iter(lines)
    while True:
        try:
            yield next(read)
        except StopIteration:
            return
        except (OSError, EOFError, zlib.error) as e:
            raise BackupRefused(f"the file cannot be read to its end ({e})") from None


def _header(line: bytes) -> tuple[bytes, int]:
    try:
        header = json.loads(line)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupRefused(f"not a timeline backup: its first line must say format {FORMAT!r}")
    if header.get("version") != VERSION:
        raise BackupRefused(
            f"format version {header.get('version')!r}: this timeline reads version {VERSION}"
        )
    if not isinstance(header.get("head"), int):
        raise BackupRefused("line 1: the header has no head position")
    return line, header["head"]


def _check_end(end: dict[str, Any], count: int, digest: str, number: int) -> None:
    if end.get("count") != count:
        raise BackupRefused(
            f"line {number}: the end line counts {end.get('count')!r} events, not {count}"
        )
    if end.get("sha256") != digest:
        raise BackupRefused(f"line {number}: the checksum does not match: the file is corrupted")


def _row(line: Any, number: int) -> Row:
    try:
        state = (
            line["state"].encode()
            if "state" in line
            else base64.b64decode(line["state_base64"], validate=True)
        )
        row = Row(
            line["position"],
            UUID(line["originator_id"]),
            line["originator_version"],
            line["topic"],
            state,
        )
    except (TypeError, KeyError, ValueError, AttributeError, binascii.Error):
        raise BackupRefused(f"line {number} is not an event line: the file is corrupted") from None
    if not (
        isinstance(row.position, int)
        and isinstance(row.originator_version, int)
        and isinstance(row.topic, str)
        and row.position > 0
    ):
        raise BackupRefused(f"line {number} is not an event line: the file is corrupted")
    return row


# Restore ---------------------------------------------------------------------------------


def restore_events(timeline: Timeline, rows: Iterable[Row]) -> Summary:
    """Write the events into the store, which must hold none, in one transaction: all of
    them with their positions, or (the file refused, the store not empty) none."""
    recorder = timeline.recorder
    if isinstance(recorder, PostgresRecorder):
        summary = _restore_postgres(recorder, rows)
    elif isinstance(recorder, SQLiteRecorder):
        summary = _restore_sqlite(recorder, rows)
    elif isinstance(recorder, POPOApplicationRecorder):
        summary = _restore_memory(recorder, rows)
    else:
        raise BackupRefused(f"cannot restore into a store of {type(recorder).__name__}")
    for listener in timeline.listeners:  # this process's read models: the log has grown
        listener(summary.head)
    return summary


def _not_empty(head: int | None) -> None:
    if head:
        raise BackupRefused(
            f"the store holds events (up to position {head}): restore only into an empty store"
        )


def _restore_postgres(recorder: PostgresRecorder, rows: Iterable[Row]) -> Summary:
    store = recorder.datastore
    table = Identifier(store.schema, recorder.events_table_name)
    count, last = 0, 0
    with store.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
        # No writer can add an event while this transaction runs (as every insert, it
        # takes the table's write lock first); readers go on.
        for statement in recorder.lock_table_statements:
            curs.execute(statement)
        found = curs.execute(SQL("SELECT max(notification_id) AS head FROM {}").format(table))
        _not_empty(cast(dict[str, Any], found.fetchone())["head"])
        copy_in = SQL(
            "COPY {} (notification_id, originator_id, originator_version, topic, state)"
            " FROM STDIN (FORMAT BINARY)"
        ).format(table)
        with curs.copy(copy_in) as copy:
            copy.set_types(["int8", store.originator_id_type, "int8", "text", "bytea"])
            for row in rows:
                copy.write_row(
                    (row.position, row.originator_id, row.originator_version, row.topic, row.state)
                )
                count, last = count + 1, row.position
        if count:  # the next event written is numbered after the last one restored
            curs.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s)",
                (table.as_string(conn), last),
            )
        curs.execute(SQL("NOTIFY {}").format(Identifier(recorder.channel_name)))
    return Summary(count, last)


def _restore_sqlite(recorder: SQLiteRecorder, rows: Iterable[Row]) -> Summary:
    table = recorder.events_table_name
    insert = (
        f"INSERT INTO {table} (rowid, originator_id, originator_version, topic, state)"  # noqa: S608
        " VALUES (?, ?, ?, ?, ?)"
    )
    count, last = 0, 0
    with recorder.datastore.transaction(commit=True) as c:
        c.execute(f"SELECT max(rowid) FROM {table}")  # noqa: S608
        _not_empty(c.fetchone()[0])
        for batch in _batches(rows):
            c.executemany(
                insert,
                [
                    (r.position, r.originator_id.hex, r.originator_version, r.topic, r.state)
                    for r in batch
                ],
            )
            count, last = count + len(batch), batch[-1].position
        # Another process may have written between the look and the first insert.
        c.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
        if c.fetchone()[0] != count:
            raise BackupRefused("another process wrote to the store during the restore")
    return Summary(count, last)


def _restore_memory(recorder: POPOApplicationRecorder, rows: Iterable[Row]) -> Summary:
    """The memory store numbers its events 1, 2, 3…: a backup with gaps in its positions
    (PostgreSQL's, after a failed write) cannot keep them there. The whole file is read
    first, so that a refused file writes nothing."""
    _not_empty(recorder.max_notification_id())
    events: list[StoredEvent] = []
    for row in rows:
        if row.position != len(events) + 1:
            raise BackupRefused(
                f"position {row.position} follows {len(events)}: the memory store keeps "
                "no gaps between positions; restore this file into SQLite or PostgreSQL"
            )
        events.append(StoredEvent(row.originator_id, row.originator_version, row.topic, row.state))
    recorder.insert_events(events)
    return Summary(len(events), len(events))


def _batches(rows: Iterable[Row]) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
