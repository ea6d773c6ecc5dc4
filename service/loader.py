"""Reading NDJSON backfill files into the write model, with a report of every line."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from domain.application import Author, Timeline
from domain.backfill import TYPE_ORDER, apply_line, line_key, line_type
from domain.errors import InvalidInput, TimelineError

SEED_DIR = Path(__file__).resolve().parents[1] / "data" / "seed"
MAX_LINE_BYTES = 1 << 20


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

    def add(self, other: Report) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.first_position = self.first_position or other.first_position
        self.last_position = other.last_position or self.last_position
        self.elapsed += other.elapsed


def numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if raw.strip():
                yield number, raw


def load(app: Timeline, lines: Iterable[tuple[int, bytes]], by: Author, source: str = "") -> Report:
    """Apply each line; a bad line is reported with its number and reason, the rest go on."""
    started = time.monotonic()
    report = Report()
    parsed: list[tuple[int, int, Any]] = []
    for number, raw in lines:
        try:
            line = _decode(raw)
            parsed.append((TYPE_ORDER[line_type(line)], number, line))
        except TimelineError as e:
            report.rejected.append(Rejected(number, None, _describe(e), source))
    for _, number, line in sorted(parsed, key=lambda p: (p[0], p[1])):
        try:
            written = apply_line(app, line, by)
        except TimelineError as e:
            report.rejected.append(Rejected(number, line_key(line), _describe(e), source))
            continue
        if written.duplicate:
            report.duplicates += 1
            continue
        report.accepted += 1
        report.first_position = report.first_position or written.position
        report.last_position = written.position
    report.rejected.sort(key=lambda r: r.line)
    report.elapsed = time.monotonic() - started
    return report


def load_files(app: Timeline, paths: Iterable[Path], by: Author) -> Report:
    total = Report()
    for path in paths:
        total.add(load(app, numbered_lines(path), by, source=path.name))
    return total


def seed_files() -> list[Path]:
    return sorted(SEED_DIR.glob("*.ndjson"))


def _decode(raw: bytes) -> Any:
    if len(raw) > MAX_LINE_BYTES:
        raise InvalidInput(f"is longer than {MAX_LINE_BYTES} bytes", field="line")
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as e:
        raise InvalidInput(f"is not valid JSON: {e}", field="line") from None


def _describe(error: TimelineError) -> str:
    return f"{error.field}: {error.message}" if error.field else error.message
