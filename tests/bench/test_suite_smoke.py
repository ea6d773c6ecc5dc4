"""The benchmark suite runs end to end at its smoke size (as CI runs it, so the bench never
rots) and reports every scenario with numbers. No timing is asserted: the machine is
shared, and only the full run's ratios mean anything."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_the_smoke_run_reports_every_scenario_with_numbers(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("the load generator wrk is not installed (apt-get install wrk)")
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    files = ["--json", str(out), "--markdown", str(md)]
    # The smoke size, against its own database on the test server.
    done = subprocess.run(
        [sys.executable, "-m", "bench.suite", "--smoke", "--url", POSTGRES_URL, *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    results = json.loads(out.read_text())
    # Every scenario, each with rows of finite numbers and its targets judged.
    assert [s["id"] for s in results["scenarios"]] == list(range(1, 18))
    for scenario in results["scenarios"]:
        assert scenario["rows"], scenario["title"]
        for row in scenario["rows"]:
            for key in ("median", "min", "max"):
                assert math.isfinite(row[key]) and row[key] >= 0, (scenario["title"], row)
            for key in ("p50_ms", "p99_ms"):
                if key in row:
                    assert math.isfinite(row[key]["median"]), (scenario["title"], row)
            if "ratio" in row:
                assert math.isfinite(row["ratio"]), (scenario["title"], row)
        # Each has its targets judged, but the backup's (12), which states its speed.
        assert scenario["targets"] or scenario["id"] == 12, scenario["title"]
        assert all(isinstance(t["met"], bool) for t in scenario["targets"])
    # Load runs answered, and the machine they ran on is described.
    assert all(r["requests"] > 0 for runs in results["runs"].values() for r in runs)
    machine = results["machine"]
    for fact in ("cpu", "cores", "ram_gb", "postgresql", "fsync", "python"):
        assert machine[fact], fact
    assert results["suite"]["events_stored"] >= 5000
    # The Markdown has each scenario's table.
    text = md.read_text()
    for scenario in results["scenarios"]:
        assert f"## {scenario['id']}. {scenario['title']}" in text
    # py-spy profiled the API under each HTTP load, the rebuild and the backfill; each
    # profile names functions of this project.
    profiles = results["profiles"]
    profiled = {
        *("timeline", "wide topic", "who-said-what"),
        *("counts by month", "changes in a day", "appends"),
    }
    assert {*profiled, "rebuild: timeline", "backfill"} <= set(profiles), sorted(profiles)
    for name, found in profiles.items():
        assert found["samples"] > 0, name
        assert sum(t["self"] for t in found["top"]) <= 1.0 + 1e-9, name
        assert f"### {name}" in text
    rebuild = [t["function"] for t in profiles["rebuild: timeline"]["top"]]
    assert any("(projections/" in f or "(domain/" in f for f in rebuild), rebuild
