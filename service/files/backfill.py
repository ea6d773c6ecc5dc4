"""Importing NDJSON backfill lines (docs/backfill.md) in batches, with a report of every line.

Lines are applied by type — actors, then topics (parents first), then records, each
followed by the corrections, retractions and sources of the same file that target it,
then the rest of these — so a file may name things before it defines them. A record's
changes land in its batch: the read models then store its versions without updating
any row (decision 011). Each batch of lines is one unit of work saved in one
transaction; a line that breaks a rule is reported with its number and reason and the
rest go on, unless the import is atomic. Every line already stored counts as a
duplicate, so a re-run (after a crash, say) adds nothing twice.

Memory stays flat however long the file, but for an index of what the changes target:
one pass sorts the lines by type into temporary files (topics alone stay in memory, to
be ordered), which are then read back a batch at a time; past `MAX_REJECTED`, rejected
lines are counted but not listed.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import logging
import os
import struct
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast
from uuid import UUID

import msgspec
from eventsourcing.persistence import Recording

from domain.application import Timeline, Unit
from domain.errors import ConcurrentWrite, InvalidInput, TimelineError
from domain.ids import record_id
from domain.usecases import UseCases
from domain.writers import Author, writing_as
from service.files.jsonkeys import repeated_key
from service.files.lines import TYPE_ORDER, apply_line, line_key, line_type, resolve_target, targets
from service.store.recorders import read_ahead

log = logging.getLogger("timeline.backfill")
SEED_DIR = Path(__file__).resolve().parents[2] / "data" / "seed"
# What `timeline demo` records after the seed, as a reviewer would: a remark entered
# twice and retracted, a summary corrected, a passage added as a source.
REVIEW_FILE = Path(__file__).resolve().parents[2] / "data" / "demo" / "review.ndjson"
MAX_LINE_BYTES = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"  # how a gzip file begins
MAX_REJECTED = 10_000  # listed in a report; more are only counted
# Lines a transaction: 500 and 5,000 both imported a tenth slower than 1,000 (decision 012).
BATCH_SIZE = 1000
Progress = Callable[[int], None]  # told how many lines were just done
Entry = tuple[int, Any]  # a line's number and its parsed JSON
# Errors a line's own content may raise in our code by mistake (a bug, not a store that is
# away): the line is reported and logged, and the import goes on.
UNEXPECTED = (ArithmeticError, LookupError, TypeError, ValueError, RecursionError)


@dataclass(slots=True)
class Rejected:
    line: int
    key: str | None
    error: str
    source: str = ""


@dataclass(slots=True)
class Report:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    first_position: int | None = None
    last_position: int | None = None
    elapsed: float = 0.0
    batch_id: str | None = None
    omitted: int = 0  # rejected lines past MAX_REJECTED: counted, not listed

    @property
    def lines(self) -> int:
        return self.accepted + self.duplicates + len(self.rejected) + self.omitted

    def reject(self, rejected: Iterable[Rejected], omitted: int = 0) -> None:
        """List rejected lines, keeping at most about MAX_REJECTED, those of the lowest
        numbers (trimmed now and then, so that a file of bad lines stays small)."""
        self.rejected += rejected
        self.omitted += omitted
        if len(self.rejected) > 2 * MAX_REJECTED:
            self.trim()

    def trim(self) -> None:
        self.rejected.sort(key=lambda r: r.line)
        self.omitted += max(0, len(self.rejected) - MAX_REJECTED)
        del self.rejected[MAX_REJECTED:]

    @property
    def rate(self) -> float:
        return self.lines / self.elapsed if self.elapsed else 0.0

    def add(self, other: Report) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.reject(other.rejected, other.omitted)
        self.first_position = self.first_position or other.first_position
        self.last_position = other.last_position or self.last_position
        self.elapsed += other.elapsed

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [
                {
                    "line": r.line,
                    "key": r.key,
                    "error": r.error,
                    **({"source": r.source} if r.source else {}),
                }
                for r in self.rejected
            ],
            **({"rejected_omitted": self.omitted} if self.omitted else {}),
            "first_position": self.first_position,
            "last_position": self.last_position,
            "elapsed": round(self.elapsed, 3),
            "rate": round(self.rate, 1),
            "batch_id": self.batch_id,
        }


def open_lines(path: str | Path, stdin: IO[bytes] | None = None) -> Iterator[tuple[int, bytes]]:
    """Numbered non-blank lines of a file (gzip when it starts like gzip) or of stdin."""
    raw: IO[bytes]
    if str(path) == "-":
        assert stdin is not None
        raw = stdin
    else:
        raw = open(path, "rb")  # noqa: SIM115 (closed below)
    try:
        head = raw.peek(2)[:2] if isinstance(raw, io.BufferedReader) else b""
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw)) if head == GZIP_MAGIC else raw
        for number, line in enumerate(iter(lambda: _read_line(stream), b""), start=1):
            if line.strip():
                yield number, line
    finally:
        if raw is not stdin:
            raw.close()


def _read_line(stream: IO[bytes]) -> bytes:
    """The next line, or as much of it as makes it too long (the rest is skipped)."""
    line = stream.readline(MAX_LINE_BYTES + 1)
    if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
        while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
            pass
    return line


def load(
    app: Timeline,
    lines: Iterable[tuple[int, bytes]],
    by: Author,
    source: str = "",
    *,
    batch_size: int = BATCH_SIZE,
    atomic: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Apply the lines in batches, each event written by `by`, and report each line that
    was not accepted."""
    started = time.monotonic()
    report = Report(batch_id=by.batch_id)
    with writing_as(by), Sorter() as sorter:
        for number, raw in lines:
            try:
                sorter.add(number, raw, _decode(raw, first=True))
            except TimelineError as e:
                report.reject([Rejected(number, None, _describe(e), source)])
                _tell(progress, 1)
        batches = _chunks(sorter.entries(), batch_size)
        if atomic:
            _atomic(app, batches, source, report, dry_run, progress)
        elif dry_run:
            _dry_run(app, batches, source, report, progress)
        else:
            _pipelined(app, batches, source, report, progress)
    report.trim()
    report.elapsed = time.monotonic() - started
    return report


class Sorter:
    """Lines sorted by type on their way through, in the order of TYPE_ORDER: topics in
    memory (a few hundred, to be put parents first), all others spooled to temporary
    files as they come (number, length, raw bytes), to be read back one at a time. The
    changes of a record defined in the file are read back right after it; the others
    (of stored records, or with a target that is not valid) after all records."""

    _HEADER = struct.Struct("<QI")
    _TOPIC = TYPE_ORDER["topic"]
    _RECORD = TYPE_ORDER["statement"]
    _CHANGE = TYPE_ORDER["correction"]

    def __init__(self) -> None:
        self.topics: list[Entry] = []
        self.spools: dict[int, IO[bytes]] = {}
        self._files = contextlib.ExitStack()
        # The changes by the record they target (None: no valid target): where each is
        # in its spool. One entry a target, and a list only when there are several.
        self._changes: dict[int | None, int | list[int]] = {}

    def __enter__(self) -> Sorter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._files.close()

    def add(self, number: int, raw: bytes, line: Any) -> None:
        order = TYPE_ORDER[line_type(line)]
        if order == self._TOPIC:
            self.topics.append((number, line))
            return
        spool = self.spools.get(order)
        if spool is None:
            spool = tempfile.TemporaryFile(buffering=1 << 18)  # noqa: SIM115 (closed on exit)
            self.spools[order] = self._files.enter_context(spool)
        if order == self._CHANGE:
            target, offset = _target(line), spool.tell()
            at = self._changes.get(target)
            self._changes[target] = offset if at is None else [*_offsets(at), offset]
        spool.write(self._HEADER.pack(number, len(raw)))
        spool.write(raw)

    def entries(self) -> Iterator[Entry]:
        if (changes := self.spools.get(self._CHANGE)) is not None:
            changes.flush()  # read back with pread, past the file's buffer
        for order in sorted({*self.spools, *([self._TOPIC] if self.topics else [])}):
            if order == self._TOPIC:
                yield from _parents_first(self.topics)
            elif order == self._RECORD:
                yield from self._records()
            elif order == self._CHANGE:
                yield from self._other_changes()
            else:
                yield from self._read(self.spools[order])

    def _records(self) -> Iterator[Entry]:
        changes = self.spools.get(self._CHANGE)
        for entry in self._read(self.spools[self._RECORD]):
            yield entry
            created = _created(entry[1])
            if changes is None or created is None:
                continue
            for offset in _offsets(self._changes.pop(created, [])):
                yield self._read_at(offset)

    def _other_changes(self) -> Iterator[Entry]:
        offsets = sorted(offset for at in self._changes.values() for offset in _offsets(at))
        self._changes.clear()
        for offset in offsets:
            yield self._read_at(offset)

    def _read(self, spool: IO[bytes]) -> Iterator[Entry]:
        spool.seek(0)
        while header := spool.read(self._HEADER.size):
            number, size = self._HEADER.unpack(header)
            yield number, _decode(spool.read(size))

    def _read_at(self, offset: int) -> Entry:
        """The change spooled at an offset. (Not seek and read: changes are read out of
        order, and each seek threw the file's buffer away and read 256 kB again.)"""
        fd = self.spools[self._CHANGE].fileno()
        number, size = self._HEADER.unpack(os.pread(fd, self._HEADER.size, offset))
        return number, _decode(os.pread(fd, size, offset + self._HEADER.size))


def _offsets(at: int | list[int]) -> list[int]:
    return at if isinstance(at, list) else [at]


def _target(line: dict[str, Any]) -> int | None:
    """The id of the record a change line targets, if its target is valid."""
    try:
        return resolve_target(line.get("target"))[1].int
    except InvalidInput:
        return None


def _created(line: Any) -> int | None:
    """The id of the record a record line creates, when it gives its key."""
    key = line.get("key")
    return record_id(str(line["type"]), key).int if isinstance(key, str) else None


def _chunks(entries: Iterator[Entry], size: int) -> Iterator[list[Entry]]:
    while chunk := list(itertools.islice(entries, size)):
        yield chunk


def _batch(app: Timeline, batch: list[Entry], source: str, report: Report) -> None:
    # First as if all of it were new (no look-up); if something in the batch was stored
    # already (a re-run) or meanwhile, again with all of it read ahead; then line by line,
    # each use case saved on its own.
    for optimistic in (True, False):
        unit = app.unit(optimistic=optimistic)
        tally = _in_unit(unit, batch, source, created=not optimistic)
        try:
            unit.commit()
        except ConcurrentWrite:
            continue
        _merge(report, tally)
        _positions(report, unit.recordings)
        return
    _merge(report, _apply_all(app, batch, source))


@dataclass(slots=True)
class _Saving:
    """A batch whose unit is being stored, and what it will report once it is."""

    batch: list[Entry]
    tally: Report
    unit: Unit
    stored: Future[list[Recording[UUID]]]


def _pipelined(
    app: Timeline,
    batches: Iterator[list[Entry]],
    source: str,
    report: Report,
    progress: Progress | None,
) -> None:
    """Each batch built while the one before it is stored, so that the import's Python
    goes on while the database writes (decision 011). A batch is built on the aggregates
    of the one being stored, as if stored, and handed over only once that one is: at
    most one is being written, and they commit in order. If that one meets lines stored
    already (a re-run), both are done again one by one, and so are all that follow."""
    saving: _Saving | None = None
    one_by_one = False
    with ThreadPoolExecutor(1, thread_name_prefix="backfill-save") as saver:
        for batch in batches:
            if one_by_one:
                _batch(app, batch, source, report)
                _tell(progress, len(batch))
                continue
            after = saving.unit.aggregates.values() if saving is not None else ()
            unit = app.unit(optimistic=True, after=after)
            tally = _in_unit(unit, batch, source)
            if saving is not None and not _stored(saving, report, progress):
                for again in (saving.batch, batch):
                    _batch(app, again, source, report)
                    _tell(progress, len(again))
                saving, one_by_one = None, True
                continue
            # The events are taken here: the next batch may change these aggregates.
            events = unit.events()
            stored: Future[list[Recording[UUID]]] = Future()
            if events:
                stored = saver.submit(app.save_atomically, events)
            else:
                stored.set_result([])
            saving = _Saving(batch, tally, unit, stored)
        if saving is not None and not _stored(saving, report, progress):
            _batch(app, saving.batch, source, report)
            _tell(progress, len(saving.batch))


def _stored(saving: _Saving, report: Report, progress: Progress | None) -> bool:
    """Wait for a batch to be stored and report it; False if it met a line stored already
    (nothing of it is stored then)."""
    try:
        recordings = saving.stored.result()
    except ConcurrentWrite:
        return False
    saving.unit.stored()
    _merge(report, saving.tally)
    _positions(report, recordings)
    _tell(progress, len(saving.batch))
    return True


def _atomic(
    app: Timeline,
    batches: Iterator[list[Entry]],
    source: str,
    report: Report,
    dry_run: bool,
    progress: Progress | None,
) -> None:
    # One unit for all the lines, applied (and their targets read ahead) batch by batch.
    tally = Report()
    unit = app.unit()
    for batch in batches:
        _merge(tally, _in_unit(unit, batch, source, created=True))
        _tell(progress, len(batch))
    if tally.rejected or report.rejected:
        report.reject(tally.rejected, tally.omitted)
        return  # all or nothing: nothing
    if not dry_run and unit.aggregates:
        _positions(report, unit.commit())
    _merge(report, tally)


def _dry_run(
    app: Timeline,
    batches: Iterator[list[Entry]],
    source: str,
    report: Report,
    progress: Progress | None,
) -> None:
    """Every batch in one unit that is never saved, so that a line may target what an
    earlier batch would have created, as in a real import. (Its memory grows with the
    file, as an atomic import's does.)"""
    unit = app.unit()
    for batch in batches:
        _merge(report, _in_unit(unit, batch, source, created=True))
        _tell(progress, len(batch))


def _in_unit(unit: Unit, batch: list[Entry], source: str, *, created: bool = False) -> Report:
    """Apply a batch in a unit of work, with what its lines change read ahead (and, with
    `created`, what they create, where they name it)."""
    read_ahead(unit, targets((line for _, line in batch), created=created))
    return _apply_all(unit, batch, source)


def _apply_all(work: UseCases, batch: list[Entry], source: str) -> Report:
    tally = Report()
    for number, line in batch:
        try:
            written = apply_line(work, line)
        except TimelineError as e:
            tally.reject([Rejected(number, line_key(line), _describe(e), source)])
            continue
        except UNEXPECTED as e:
            log.exception(
                "backfill line %s%s could not be applied", source and f"{source}:", number
            )
            error = f"could not be applied: an unexpected {type(e).__name__}, logged by the service"
            tally.reject([Rejected(number, line_key(line), error, source)])
            continue
        if written.duplicate:
            tally.duplicates += 1
        else:
            tally.accepted += 1
            if written.position:
                tally.first_position = tally.first_position or written.position
                tally.last_position = written.position
    return tally


def _merge(report: Report, tally: Report) -> None:
    report.accepted += tally.accepted
    report.duplicates += tally.duplicates
    report.reject(tally.rejected, tally.omitted)
    if tally.first_position:
        report.first_position = report.first_position or tally.first_position
        report.last_position = tally.last_position


def _positions(report: Report, recordings: list[Any]) -> None:
    if recordings:
        report.first_position = report.first_position or recordings[0].notification.id
        report.last_position = recordings[-1].notification.id


def _parents_first(entries: list[Entry]) -> list[Entry]:
    """Topics whose parent comes later in the file go after it."""
    by_id = {str(e[1].get("id")): e for e in entries}
    done: set[str] = set()
    out: list[Entry] = []

    def visit(entry: Entry, path: set[str]) -> None:
        slug = str(entry[1].get("id"))
        if slug in done or slug in path:
            return
        parent = entry[1].get("parent")
        if isinstance(parent, str) and parent in by_id:
            visit(by_id[parent], path | {slug})
        done.add(slug)
        out.append(entry)

    for entry in entries:
        visit(entry, set())
    seen = {id(e) for e in out}
    return out + [e for e in entries if id(e) not in seen]


def load_files(app: Timeline, paths: Iterable[Path], by: Author, **options: Any) -> Report:
    total = Report(batch_id=by.batch_id)
    for path in paths:
        total.add(load(app, open_lines(path), by, source=Path(path).name, **options))
    total.trim()
    return total


def seed_files() -> list[Path]:
    return sorted(SEED_DIR.glob("*.ndjson"))


def new_batch_id() -> str:
    return str(uuid.uuid4())


def _tell(progress: Progress | None, done: int) -> None:
    if progress is not None:
        progress(done)


def _decode(raw: bytes, *, first: bool = False) -> Any:
    """A line's JSON; the `first` time it is read, also checked for a key given twice."""
    if len(raw) > MAX_LINE_BYTES:
        raise InvalidInput(f"is longer than {MAX_LINE_BYTES} bytes", field="line")
    try:
        line = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as e:
        raise InvalidInput(f"is not valid JSON: {e}", field="line") from None
    if first and (at := repeated_key(raw, line)) is not None:
        raise InvalidInput("is given twice in one object: give each key once", field=at or "line")
    return line


def _describe(error: TimelineError) -> str:
    return f"{error.field}: {error.message}" if error.field else error.message
