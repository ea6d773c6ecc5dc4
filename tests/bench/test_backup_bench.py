"""`python -m bench.backup` at a small size: it makes about the events it is asked for,
and exports and restores all of them."""

from __future__ import annotations

from pathlib import Path

from bench.backup import run
from service.store.database import parse_url


def test_the_backup_benchmark_exports_and_restores_its_history(tmp_path: Path) -> None:
    source = parse_url(f"sqlite:///{tmp_path}/a")
    target = parse_url(f"sqlite:///{tmp_path}/b")
    figures = run(source, target, 3000, tmp_path)
    assert abs(figures["events"] - 3000) < 10
    assert figures["log.ndjson.gz MB"] < figures["log.ndjson MB"]
    assert {"log read events/s", "export log.ndjson events/s", "restore (gzip) events/s"} <= set(
        figures
    )
