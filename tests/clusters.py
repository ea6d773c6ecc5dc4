"""Throwaway PostgreSQL clusters for the fault and replica tests: `initdb` into a
temporary directory, a free port on 127.0.0.1, trust authentication, `fsync` on; started,
stopped in any `pg_ctl` mode (`immediate` is a crash), restarted, and always removed. A
streaming replica is a second cluster made by `pg_basebackup -R -X stream` from the first
(`primary_and_replica`), and can be promoted.

Run as root, every server command runs as the `postgres` user (`initdb` refuses root),
which owns the directory. The binaries come from `TIMELINE_PG_BIN`, else `pg_config
--bindir`, else the newest `/usr/lib/postgresql/*/bin`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg

SERVER_USER = "postgres"


class ClusterError(Exception):
    """The throwaway cluster could not be made, started or stopped."""


def pg_bindir() -> Path:
    """Where initdb, pg_ctl and postgres are."""
    configured = os.environ.get("TIMELINE_PG_BIN")
    if configured:
        return Path(configured)
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if found and (Path(found) / "initdb").exists():
            return Path(found)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not versions:
        raise ClusterError(
            "no PostgreSQL server binaries (initdb, pg_ctl): install Debian's `postgresql` "
            "package or set TIMELINE_PG_BIN"
        )
    return versions[-1].parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One throwaway server. `settings` are passed as `-c name=value` at every start."""

    def __init__(self, root: Path, *, settings: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.data = root / "data"
        self.logfile = root / "server.log"
        self.port = free_port()
        self.bindir = pg_bindir()
        self.settings = {
            "fsync": "on",
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "shared_buffers": "32MB",
            "max_connections": "100",
            **(settings or {}),
        }
        self._as_server_user = os.geteuid() == 0

    # Commands -------------------------------------------------------------------------

    def _run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_server_user:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def _checked(self, *args: str, timeout: float = 60.0) -> str:
        done = self._run(*args, timeout=timeout)
        if done.returncode != 0:
            raise ClusterError(
                f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip()}\n"
                f"{self.log_text()[-2000:]}"
            )
        return done.stdout

    def init(self) -> None:
        self._checked(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-instructions",
            "--no-sync",  # the template files only; the running server syncs every commit
        )

    def copy_of(self, primary: Cluster) -> None:
        """Instead of `init`: this cluster's data as a streaming standby of `primary`
        (a base backup with the WAL it needs, `-R` writing its connection to it)."""
        self._checked(
            "pg_basebackup",
            "-D",
            str(self.data),
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-R",
            "-X",
            "stream",
            "--checkpoint=fast",
            "--no-sync",
        )

    def promote(self, timeout: float = 30.0) -> None:
        """A standby becomes a primary (`pg_ctl promote`, waiting until it takes writes)."""
        self._checked("pg_ctl", "-D", str(self.data), "-w", "-t", str(int(timeout)), "promote")

    def start(self, timeout: float = 30.0) -> float:
        """Start and wait until it accepts connections; the seconds it took."""
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            "-c unix_socket_directories=''",
            *(f"-c {name}={value}" for name, value in self.settings.items()),
        ]
        started = time.monotonic()
        self._checked(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.logfile),
            "-o",
            " ".join(options),
            "-w",
            "-t",
            str(int(timeout)),
            "start",
            timeout=timeout + 10,
        )
        return time.monotonic() - started

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> float:
        """`pg_ctl stop -m MODE` (smart, fast or immediate); the seconds it took."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(mode)
        started = time.monotonic()
        self._checked(
            "pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", str(int(timeout)), "stop"
        )
        return time.monotonic() - started

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    # State ----------------------------------------------------------------------------

    def postmaster_pid(self) -> int | None:
        pidfile = self.data / "postmaster.pid"
        try:
            return int(pidfile.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status").returncode == 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def connect(
        self, *, autocommit: bool = True, **kwargs: Any
    ) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            dbname="postgres",
            autocommit=autocommit,
            connect_timeout=5,
            **kwargs,
        )

    def setting(self, name: str) -> str:
        with self.connect() as conn:
            row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
        assert row is not None
        return str(row[0])

    def log_text(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""

    # Clean-up -------------------------------------------------------------------------

    def destroy(self) -> None:
        """Stop at once (if running) and remove every file."""
        try:
            if (self.data / "postmaster.pid").exists():
                done = self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
                pid = self.postmaster_pid()
                if done.returncode != 0 and pid is not None:
                    with suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)  # our own postmaster, by its pid
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _root() -> Path:
    """A temporary directory, owned by `postgres` when run as root."""
    root = Path(tempfile.mkdtemp(prefix="timeline-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(SERVER_USER)
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            raise ClusterError(
                f"running as root, the cluster needs a `{SERVER_USER}` user to run as"
            ) from None
        os.chown(root, user.pw_uid, user.pw_gid)
    return root


@contextmanager
def throwaway_cluster(
    *, settings: Mapping[str, str] | None = None, start: bool = True
) -> Iterator[Cluster]:
    """A new cluster in a temporary directory, started unless asked not to; stopped and
    removed on exit, whatever happened."""
    cluster = Cluster(_root(), settings=settings)
    try:
        cluster.init()
        if start:
            cluster.start()
        yield cluster
    finally:
        cluster.destroy()


# A replica as docs/scaling.md asks for one: it tells the primary which rows its reads
# still need (so VACUUM there keeps them), each second; a conflict that remains cancels
# its query after a second rather than holding replay back for the default 30.
REPLICA_SETTINGS = {
    "hot_standby_feedback": "on",
    "wal_receiver_status_interval": "1s",
    "max_standby_streaming_delay": "1s",
}


@contextmanager
def primary_and_replica(
    *, settings: Mapping[str, str] | None = None
) -> Iterator[tuple[Cluster, Cluster]]:
    """A started primary and a started streaming replica of it; both removed on exit."""
    with throwaway_cluster(settings=settings) as primary:
        replica = Cluster(_root(), settings={**(settings or {}), **REPLICA_SETTINGS})
        try:
            replica.copy_of(primary)
            replica.start()
            yield primary, replica
        finally:
            replica.destroy()
