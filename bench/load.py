"""The load generator: wrk (in its own process, written in C) driven by Lua scripts made
here, each reporting one JSON line: throughput, latency percentiles, status codes, and
for read-your-writes the POST, GET and pair times measured in the script itself.

    python -m bench.load http://127.0.0.1:8000 --path /health --connections 64

Needs `wrk` on the PATH (Debian: `apt-get install wrk`, built with LuaJIT). The report
includes wrk's own CPU time, so a run can show that the client was not the bottleneck.
Percentiles of the scripts' own timings are computed here from every sample.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

MARK = "BENCH_RESULT "

# Per thread: a monotonic clock (LuaJIT FFI), and a file of samples (status codes and
# named timings, one a line) that Python reads once wrk has exited: wrk 4.1's
# `thread:get` corrupts the Lua stack when it copies nested tables, so no table crosses
# threads. `done` prints wrk's own summary as one JSON line.
PRELUDE = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

local out = nil
local function sample(line)
  if out == nil then
    out = assert(io.open(string.format("%s.%d", samples, id or 0), "w"))
  end
  out:write(line, "\n")
end
local function count(status)
  sample("s " .. status)
end
local function record(name, ms)
  sample(string.format("t %s %.3f", name, ms))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '__MARK__{"requests":%d,"duration_us":%d,"bytes":%d,'
    .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
    .. '"latency_us":{"min":%.17g,"max":%.17g,"mean":%.17g,"p50":%.17g,"p90":%.17g,'
    .. '"p99":%.17g}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
""".replace("__MARK__", MARK)


def _lua(value: Any) -> str:
    """A Lua literal of a JSON-like value (JSON strings are valid Lua strings here:
    only ASCII letters, digits and URL punctuation are passed)."""
    if isinstance(value, list | tuple):
        return "{" + ", ".join(_lua(v) for v in value) + "}"
    return json.dumps(value)


def get_paths(paths: list[str]) -> str:
    """GET each path in turn; each thread starts at another place in the list."""
    return (
        PRELUDE
        + f"local paths = {_lua(paths)}\n"
        + r"""
local reqs = {}
local i = 0
function init(args)
  for k, p in ipairs(paths) do reqs[k] = wrk.format("GET", p) end
  i = (id or 0) * 7
end
function request()
  i = i + 1
  return reqs[(i % #reqs) + 1]
end
"""
    )


# One new statement per request, unique by run tag, thread and counter; named actors
# and topics exist in the generated history. Said in 2013, before any page's window.
_STATEMENT = r"""
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
local n = 0
local function statement()
  n = n + 1
  local who = actors[((id or 0) * 31 + n) % #actors + 1]
  local about = topics[((id or 0) * 17 + n) % #topics + 1]
  return string.format(
    '{"key":"bench-%s-%d-%d","speaker":"%s","quote":"Bench statement %s %d %d",'
    .. '"occurred_at":"2013-01-%02d","channel":"interview","topics":["%s"],'
    .. '"sources":[{"publisher":"Bench Wire","url":"https://example.org/bench/%s/%d/%d"}]}',
    tag, id or 0, n, who, tag, id or 0, n, n % 28 + 1, about, tag, id or 0, n)
end
"""


def _statement_vars(key: str, tag: str, actors: list[str], topics: list[str]) -> str:
    return (
        f"key = {_lua(key)}\ntag = {_lua(tag)}\nactors = {_lua(actors)}\ntopics = {_lua(topics)}\n"
    )


def post_statements(path: str, key: str, tag: str, actors: list[str], topics: list[str]) -> str:
    """POST a new statement each request; counts the status codes."""
    return (
        PRELUDE
        + _statement_vars(key, tag, actors, topics)
        + _STATEMENT
        + f"local path = {_lua(path)}\n"
        + r"""
function request()
  return wrk.format("POST", path, nil, statement())
end
function response(status, headers, body)
  count(status)
end
"""
    )


def read_your_writes(key: str, tag: str, actors: list[str], topics: list[str]) -> str:
    """POST a statement, then GET it with `min_position` set to the position the POST
    answered. Needs one connection per thread: request and response alternate."""
    return (
        PRELUDE
        + _statement_vars(key, tag, actors, topics)
        + _STATEMENT
        + r"""
local posted, asked, pending = 0, 0, nil
function request()
  if pending ~= nil then
    local r = pending
    pending = nil
    asked = now_ms()
    return r
  end
  posted = now_ms()
  asked = nil
  return wrk.format("POST", "/statements", nil, statement())
end
function response(status, headers, body)
  local now = now_ms()
  if asked == nil then
    count("post " .. status)
    record("post", now - posted)
    local rid = body:match('"id":"([^"]+)"')
    local position = body:match('"position":(%d+)')
    if status < 300 and rid and position then
      pending = wrk.format("GET", "/statements/" .. rid .. "?min_position=" .. position)
    end
  else
    count("get " .. status)
    record("get", now - asked)
    record("pair", now - posted)
  end
end
"""
    )


@dataclass(frozen=True, slots=True)
class Load:
    url: str  # the server's base URL
    script: str  # Lua source, from one of the functions above
    connections: int = 64
    threads: int = 2
    duration: int = 10  # seconds (wrk takes whole seconds)
    timeout: int = 30  # a request slower than this counts as an error


@dataclass(frozen=True, slots=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]  # connect, read, write, timeout; status: answers >= 400
    statuses: dict[str, int]  # by status code, where the script counts them
    timings: dict[str, dict[str, float]]  # the script's own timings, in ms
    client_cpu: float  # wrk's CPU time over the run's length: cores used by the client

    @property
    def rate(self) -> float:
        """Answers per second, of every status."""
        return self.requests / self.seconds if self.seconds else 0.0

    def ok_rate(self, prefix: str = "") -> float:
        """Answers per second with a 2xx status (where the script counts statuses)."""
        if not self.statuses:
            return (self.requests - self.errors.get("status", 0)) / self.seconds
        ok = sum(
            n
            for status, n in self.statuses.items()
            if status.startswith(prefix) and status.removeprefix(prefix).startswith("2")
        )
        return ok / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "errors": self.errors,
            "statuses": self.statuses,
            "timings": self.timings,
            "client_cpu": round(self.client_cpu, 3),
        }


@dataclass
class Wrk:
    """Where wrk is; `available()` says whether it can run at all."""

    binary: str | None = field(default_factory=lambda: shutil.which("wrk"))

    def available(self) -> bool:
        return self.binary is not None

    def run(self, load: Load) -> Result:
        if self.binary is None:
            raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
        with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
            samples = Path(tmp) / "samples"
            script = Path(tmp) / "script.lua"
            script.write_text(f"samples = {_lua(str(samples))}\n" + load.script)
            result = self._run(load, script)
            statuses, timings = _read_samples(Path(tmp).glob("samples.*"))
        return replace(result, statuses=statuses, timings=timings)

    def _run(self, load: Load, script: Path) -> Result:
        assert self.binary is not None
        command = [
            self.binary,
            f"-t{load.threads}",
            f"-c{load.connections}",
            f"-d{load.duration}s",
            f"--timeout={load.timeout}s",
            "-s",
            str(script),
            load.url,
        ]
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(  # noqa: S603 (our own command line)
                command, stdout=subprocess.PIPE, stderr=errors
            )
            assert proc.stdout is not None
            with proc.stdout:
                out = proc.stdout.read().decode(errors="replace")
            # wait4 reaps the child and tells its CPU time: the client's share.
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            errors.seek(0)
            err = errors.read().decode(errors="replace")
        line = next((x for x in out.splitlines() if x.startswith(MARK)), None)
        if proc.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({proc.returncode}): {err.strip()[-2000:]}")
        data = json.loads(line[len(MARK) :])
        seconds = data["duration_us"] / 1e6
        latency = data["latency_us"]
        return Result(
            requests=int(data["requests"]),
            seconds=seconds,
            p50_ms=latency["p50"] / 1000,
            p90_ms=latency["p90"] / 1000,
            p99_ms=latency["p99"] / 1000,
            max_ms=latency["max"] / 1000,
            errors={k: int(v) for k, v in data["errors"].items()},
            statuses={},
            timings={},
            client_cpu=(usage.ru_utime + usage.ru_stime) / seconds if seconds else 0.0,
        )


def _read_samples(files: Iterable[Path]) -> tuple[dict[str, int], dict[str, dict[str, float]]]:
    """Status counts and timing percentiles from the threads' sample files."""
    statuses: dict[str, int] = {}
    times: dict[str, list[float]] = {}
    for path in files:
        for line in path.read_text().splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "s":
                statuses[rest] = statuses.get(rest, 0) + 1
            elif kind == "t":
                name, _, ms = rest.rpartition(" ")
                times.setdefault(name, []).append(float(ms))
    return statuses, {name: _summary(sorted(values)) for name, values in times.items()}


def _summary(ordered: list[float]) -> dict[str, float]:
    def at(p: float) -> float:
        return ordered[max(0, math.ceil(len(ordered) * p / 100) - 1)]

    return {
        "count": len(ordered),
        "mean": sum(ordered) / len(ordered),
        "p50": at(50),
        "p90": at(90),
        "p99": at(99),
        "max": ordered[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--path", action="append", default=[], help="GET paths, in turn")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    load = Load(
        args.url,
        get_paths(args.path or ["/"]),
        connections=args.connections,
        threads=args.threads,
        duration=args.duration,
    )
    print(json.dumps(Wrk().run(load).as_dict(), indent=2))


if __name__ == "__main__":
    main()
