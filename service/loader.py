"""Importing NDJSON backfill lines (SPEC §7) in batches, with a report of every line.

Lines are applied by type — actors, then topics (parents first), then records, then the
corrections, retractions and sources that target them — so a file may name things before
it defines them. Each batch of lines is one unit of work saved in one transaction; a line
that breaks a rule is reported with its number and reason and the rest go on, unless the
import is atomic. Every line already stored counts as a duplicate, so a re-run (after a
crash, say) adds nothing twice.
"""

from __future__ import annotations

import gzip
import io
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import msgspec

from domain.application import Author, Timeline
from domain.backfill import TYPE_ORDER, apply_line, line_key, line_type, targets
from domain.errors import ConcurrentWrite, InvalidInput, TimelineError

SEED_DIR = Path(__file__).resolve().parents[1] / "data" / "seed"
MAX_LINE_BYTES = 1 << 20
Progress = Callable[[int], None]  # told how many lines were just done


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

    @property
    def lines(self) -> int:
        return self.accepted + self.duplicates + len(self.rejected)

    @property
    def rate(self) -> float:
        return self.lines / self.elapsed if self.elapsed else 0.0

    def add(self, other: Report) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
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
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw)) if head == b"\x1f\x8b" else raw
        for number, line in enumerate(stream, start=1):
            if line.strip():
                yield number, line
    finally:
        if raw is not stdin:
            raw.close()


def numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    return open_lines(path)


def load(
    app: Timeline,
    lines: Iterable[tuple[int, bytes]],
    by: Author,
    source: str = "",
    *,
    batch_size: int = 500,
    atomic: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Apply the lines in batches and report each one that was not accepted."""
    started = time.monotonic()
    report = Report(batch_id=by.batch_id)
    buckets: dict[int, list[tuple[int, bytes, Any]]] = {}
    for number, raw in lines:
        try:
            line = _decode(raw)
            buckets.setdefault(TYPE_ORDER[line_type(line)], []).append((number, raw, line))
        except TimelineError as e:
            report.rejected.append(Rejected(number, None, _describe(e), source))
            _tell(progress, 1)
    ordered = [
        entry for order in sorted(buckets) for entry in _parents_first(order, buckets[order])
    ]
    if atomic:
        _atomic(app, ordered, by, source, report, dry_run, progress)
    else:
        for start in range(0, len(ordered), batch_size):
            _batch(app, ordered[start : start + batch_size], by, source, report, dry_run)
            _tell(progress, len(ordered[start : start + batch_size]))
    report.rejected.sort(key=lambda r: r.line)
    report.elapsed = time.monotonic() - started
    return report


def _batch(
    app: Timeline,
    batch: list[tuple[int, bytes, Any]],
    by: Author,
    source: str,
    report: Report,
    dry_run: bool,
) -> None:
    # First as if all of it were new (no look-up per line); if something in the batch was
    # stored already (a re-run) or meanwhile, again with look-ups; then line by line.
    for optimistic in (True, False):
        try:
            with app.unit(save=not dry_run, optimistic=optimistic and not dry_run) as unit:
                tally = _apply_all(app, batch, by, source)
        except ConcurrentWrite:
            continue
        _merge(report, tally)
        _positions(report, unit.recordings)
        return
    _merge(report, _apply_all(app, batch, by, source))


def _atomic(
    app: Timeline,
    ordered: list[tuple[int, bytes, Any]],
    by: Author,
    source: str,
    report: Report,
    dry_run: bool,
    progress: Progress | None,
) -> None:
    with app.unit(save=False) as unit:
        tally = _apply_all(app, ordered, by, source)
    _tell(progress, len(ordered))
    if tally.rejected or report.rejected:
        report.rejected += tally.rejected
        return  # all or nothing: nothing
    if not dry_run and unit.aggregates:
        _positions(report, app.save_atomically(list(unit.aggregates.values())))
    _merge(report, tally)


def _apply_all(
    app: Timeline, batch: list[tuple[int, bytes, Any]], by: Author, source: str
) -> Report:
    tally = Report()
    app.preload(targets(line for _, _, line in batch))
    for number, _, line in batch:
        try:
            written = apply_line(app, line, by)
        except TimelineError as e:
            tally.rejected.append(Rejected(number, line_key(line), _describe(e), source))
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
    report.rejected += tally.rejected
    if tally.first_position:
        report.first_position = report.first_position or tally.first_position
        report.last_position = tally.last_position


def _positions(report: Report, recordings: list[Any]) -> None:
    if recordings:
        report.first_position = report.first_position or recordings[0].notification.id
        report.last_position = recordings[-1].notification.id


def _parents_first(
    order: int, entries: list[tuple[int, bytes, Any]]
) -> list[tuple[int, bytes, Any]]:
    """Topics whose parent comes later in the file go after it."""
    if order != TYPE_ORDER["topic"]:
        return entries
    by_id = {str(e[2].get("id")): e for e in entries}
    done: set[str] = set()
    out: list[tuple[int, bytes, Any]] = []

    def visit(entry: tuple[int, bytes, Any], path: set[str]) -> None:
        slug = str(entry[2].get("id"))
        if slug in done or slug in path:
            return
        parent = entry[2].get("parent")
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
    return total


def seed_files() -> list[Path]:
    return sorted(SEED_DIR.glob("*.ndjson"))


def new_batch_id() -> str:
    return str(uuid.uuid4())


def _tell(progress: Progress | None, done: int) -> None:
    if progress is not None:
        progress(done)


def _decode(raw: bytes) -> Any:
    if len(raw) > MAX_LINE_BYTES:
        raise InvalidInput(f"is longer than {MAX_LINE_BYTES} bytes", field="line")
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as e:
        raise InvalidInput(f"is not valid JSON: {e}", field="line") from None


def _describe(error: TimelineError) -> str:
    return f"{error.field}: {error.message}" if error.field else error.message
