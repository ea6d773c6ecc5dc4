from __future__ import annotations

import subprocess
import sys

from service.process import GC_THRESHOLDS

# Prints, as the process ends, how its collector was set.
REPORT = (
    "import atexit, gc; "
    "atexit.register(lambda: print('gc', *gc.get_threshold(), gc.get_freeze_count() > 0)); "
)


def test_every_timeline_command_collects_garbage_less_often_and_never_walks_start_up() -> None:
    # Any command: the setting is made before the command runs.
    done = subprocess.run(
        [sys.executable, "-c", REPORT + "from service.cli import main; main()", "keys", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"gc {' '.join(map(str, GC_THRESHOLDS))} True"


def test_a_plain_python_process_keeps_the_interpreters_defaults() -> None:
    # Only our entry points change the collector: importing the package does not.
    done = subprocess.run(
        [sys.executable, "-c", REPORT + "import service.cli"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines()[-1] == "gc 700 10 10 False"
