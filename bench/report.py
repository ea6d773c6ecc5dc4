"""The suite's table: machine facts, figures over repeats, ratios to baselines and targets,
written as JSON and as Markdown (`docs/benchmarks.md`) and printed."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import psycopg

Row = dict[str, Any]
TIMES, DASH = "\u00d7", "\u2013"  # times and en dash, for the table


def stat(values: Sequence[float]) -> dict[str, float]:
    """Median and range over repeats."""
    return {
        "median": float(statistics.median(values)),
        "min": float(min(values)),
        "max": float(max(values)),
        "n": len(values),
    }


def row(
    measure: str,
    unit: str,
    values: Sequence[float],
    *,
    p50_ms: Sequence[float] = (),
    p99_ms: Sequence[float] = (),
    baseline: Row | None = None,
    compare: str = "",
    short: str = "",
    note: str = "",
) -> Row:
    """One line of the table. `ratio` is this row's median over the baseline's, or with
    `compare="p99_ms"` the ratio of their p99 medians; `short` names the row where it is
    another's baseline."""
    out: Row = {"measure": measure, "unit": unit, **stat(values), "short": short or measure}
    if p50_ms:
        out["p50_ms"] = stat(p50_ms)
    if p99_ms:
        out["p99_ms"] = stat(p99_ms)
    if baseline is not None:
        mine = out[compare]["median"] if compare else out["median"]
        theirs = baseline[compare]["median"] if compare else baseline["median"]
        out["baseline"] = baseline["measure"]
        out["baseline_short"] = baseline["short"]
        out["ratio_of"] = compare.removesuffix("_ms") or "median"
        out["ratio"] = mine / theirs if theirs else 0.0
    if note:
        out["note"] = note
    return out


def target(text: str, value: float, met: bool, shown: str) -> dict[str, Any]:
    return {"target": text, "value": value, "shown": shown, "met": met}


def machine(conninfo: str) -> dict[str, Any]:
    """What the figures were measured on."""
    facts: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": round(_mem_total_kb() / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "packages": {
            name: _version(name)
            for name in ("eventsourcing", "litestar", "msgspec", "psycopg", "uvicorn")
        },
        "wrk": _wrk_version(),
        # uvicorn picks these when installed; without them it parses HTTP in Python (h11).
        "uvicorn_http": "httptools" if find_spec("httptools") else "h11",
        "uvicorn_loop": "uvloop" if find_spec("uvloop") else "asyncio",
    }
    with psycopg.connect(conninfo, autocommit=True) as conn:
        facts["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        for name in ("fsync", "synchronous_commit", "shared_buffers", "max_connections"):
            facts[name] = conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
    return facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_kb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _wrk_version() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        return "not installed"
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)  # noqa: S603
    return (done.stdout or done.stderr).splitlines()[0].split(" Copyright")[0].strip()


# Writing ------------------------------------------------------------------------------


def write(results: dict[str, Any], json_path: Path, markdown_path: Path) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.write_text(markdown(results))


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ms(r: Row, key: str) -> str:
    return _num(r[key]["median"]) if key in r else ""


def _range(r: Row) -> str:
    return "" if r["n"] < 2 else f"{_num(r['min'])}{DASH}{_num(r['max'])}"


def _ratio(r: Row) -> str:
    if "ratio" not in r:
        return ""
    of = "" if r["ratio_of"] == "median" else f" ({r['ratio_of']})"
    return f"{r['ratio']:.2f}{TIMES}{of} {r['baseline_short']}"


def table_rows(scenario: dict[str, Any]) -> list[list[str]]:
    return [
        [
            r["measure"],
            f"{_num(r['median'])} {r['unit']}",
            _range(r),
            _ms(r, "p50_ms"),
            _ms(r, "p99_ms"),
            _cores(r),
            _ratio(r),
        ]
        for r in scenario["rows"]
    ]


def _cores(r: Row) -> str:
    if "server_cores" not in r:
        return ""
    return f"{r['server_cores']:.2f} / {r['client_cores']:.2f} / {r['machine_cores']:.2f}"


HEAD = [
    "measure",
    "median",
    f"min{DASH}max",
    "p50 ms",
    "p99 ms",
    "CPU cores: server / wrk / machine",
    "ratio to baseline",
]


def markdown(results: dict[str, Any]) -> str:
    suite, m = results["suite"], results["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"`{suite['command']}` on {suite['started_at'][:10]}: {suite['events_stored']:,} "
        f"events stored, {suite['repeats']} repeat(s) of {suite['duration_s']} s per load "
        f"run, {suite['connections']} connections unless said; the whole run took "
        f"{suite['wall_s'] / 60:.1f} min. Each ratio is to a baseline measured in the same "
        "run on the same machine: only ratios compare across runs. Medians over repeats, "
        "with their range; p50 and p99 are each run's percentiles, medians over repeats. "
        "CPU cores: what the server process, the load generator and the whole machine "
        "(everything running) used during a run.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; RAM {m['ram_gb']} GB; Linux {m['kernel']}",
        f"- PostgreSQL {m['postgresql']} on loopback: fsync {m['fsync']}, synchronous_commit "
        f"{m['synchronous_commit']}, shared_buffers {m['shared_buffers']}",
        f"- Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items())
        + f" (HTTP parser {m['uvicorn_http']}, event loop {m['uvicorn_loop']})",
        f"- load generator: {m['wrk']}, in its own process on the same machine",
        f"- load average at start: {', '.join(str(x) for x in m['load_average_at_start'])}",
        "",
        "## Targets",
        "",
        "| # | target | measured | met |",
        "|---|---|---|---|",
    ]
    for s in results["scenarios"]:
        for t in s["targets"]:
            lines.append(
                f"| {s['id']} | {t['target']} | {t['shown']} | {'yes' if t['met'] else '**no**'} |"
            )
    lines += [
        "",
        "What bounds each unmet target, read from the CPU columns and the profiles below, "
        "is written up in the README's Benchmarks section.",
    ]
    for s in results["scenarios"]:
        lines += [
            "",
            f"## {s['id']}. {s['title']}",
            "",
            "| " + " | ".join(HEAD) + " |",
            "|" + "|".join("---" for _ in HEAD) + "|",
            *("| " + " | ".join(cells) + " |" for cells in table_rows(s)),
            "",
            " ".join([*s.get("notes", []), *(r["note"] for r in s["rows"] if r.get("note"))]),
        ]
    lines += profiles_markdown(results.get("profiles", {}))
    lines += [
        "",
        "## Phases of the run",
        "",
        *(f"- {name}: {seconds:,.1f} s" for name, seconds in suite["phases_s"].items()),
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/suite.py`; every run's "
        "figures are in the JSON written with this file.",
        "",
    ]
    return "\n".join(lines)


def profiles_markdown(profiles: dict[str, Any], n: int = 12) -> list[str]:
    """Per profiled process: the functions most often running, with the share of samples
    in which each was running (self) and on the stack (total)."""
    if not profiles:
        return []
    lines = [
        "",
        "## Profiles",
        "",
        "py-spy sampled the process in question (`bench/profile.py`) during one extra load "
        "run of each HTTP scenario (the API process), the rebuild (the process rebuilding) "
        "and the backfill (the `timeline backfill` process). Self: the share of samples in "
        "which the function itself was running; total: in which it was on the stack. Time "
        "waiting (for PostgreSQL, for a request) counts where the wait happens.",
    ]
    for name, p in profiles.items():
        lines += ["", f"### {name}", ""]
        if not p.get("samples"):
            lines.append("No samples: py-spy could not attach (it needs ptrace).")
            continue
        lines += [
            f"{p['samples']:,} samples at {p['rate_hz']} Hz.",
            "",
            "| function | self | total |",
            "|---|---|---|",
            *(f"| `{t['function']}` | {t['self']:.1%} | {t['total']:.1%} |" for t in p["top"][:n]),
        ]
    return lines


def print_table(results: dict[str, Any]) -> None:
    rows = [["#", *HEAD]]
    for s in results["scenarios"]:
        rows += [[str(s["id"]), *cells] for cells in table_rows(s)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)))
    print()
    for s in results["scenarios"]:
        for t in s["targets"]:
            print(f"{s['id']}  {'met    ' if t['met'] else 'NOT met'}  {t['target']}: {t['shown']}")
