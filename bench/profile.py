"""Where a process spends its time while a scenario runs: py-spy samples it from outside
(no change to the process, no pause with `--nonblocking`), and the samples are summed by
function, as the share of samples in which the function was running (`self`) or on the
stack (`total`).

    with Sampler(pid, seconds=10) as sampler:
        ...  # the load
    sampler.top(15)  # [{"function", "self", "total"}]

`py-spy` is a development dependency (decision 005).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

RATE = 100  # samples a second


def executable() -> str | None:
    """py-spy from this virtual environment, or else from the PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def available() -> bool:
    return executable() is not None


class Sampler:
    """py-spy recording one process, in its own process, while the block runs (at most
    `seconds`)."""

    def __init__(self, pid: int, seconds: float, *, subprocesses: bool = False) -> None:
        self.pid = pid
        self.seconds = seconds
        self.subprocesses = subprocesses
        self._dir = tempfile.TemporaryDirectory(prefix="timeline-profile-")
        self.path = Path(self._dir.name) / "stacks.txt"
        self._proc: subprocess.Popen[bytes] | None = None
        self.stacks: Counter[str] = Counter()

    def __enter__(self) -> Sampler:
        args = [
            executable() or "py-spy",
            "record",
            "--pid",
            str(self.pid),
            "--duration",
            str(max(1, round(self.seconds))),
            "--rate",
            str(RATE),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(self.path),
        ]
        if self.subprocesses:
            args.append("--subprocesses")
        self._proc = subprocess.Popen(  # noqa: S603 (a fixed command line)
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._proc is not None
        if self._proc.poll() is None:  # the block is the window: stop, write the samples
            self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                if stack and count.isdigit():
                    self.stacks[stack] += int(count)
        self._dir.cleanup()

    @property
    def samples(self) -> int:
        return sum(self.stacks.values())

    def top(self, n: int = 15) -> list[dict[str, Any]]:
        """The functions most often running (self) and most often on the stack (total),
        ordered by self time; shares of all samples."""
        total = self.samples or 1
        own: Counter[str] = Counter()
        on_stack: Counter[str] = Counter()
        for stack, count in self.stacks.items():
            frames = [_frame(f) for f in stack.split(";") if f]
            if not frames:
                continue
            own[frames[-1]] += count
            for frame in set(frames):
                on_stack[frame] += count
        return [
            {"function": f, "self": c / total, "total": on_stack[f] / total}
            for f, c in own.most_common(n)
        ]

    def summary(self, n: int = 15) -> dict[str, Any]:
        return {"samples": self.samples, "rate_hz": RATE, "top": self.top(n)}


def _frame(raw: str) -> str:
    """`function (path/to/file.py:12)` as `function (file.py)`: lines vary within one."""
    name, _, where = raw.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(file).parts
    short = "/".join(parts[-2:]) if len(parts) >= 2 else file
    return f"{name} ({short})"
