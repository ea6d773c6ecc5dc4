"""Settings from the environment, each with a sane default (the README lists them)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path


def _home() -> Path:
    return Path(os.environ.get("TIMELINE_HOME", ".timeline"))


def _float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


_ORIGIN = re.compile(r"https?://([a-z0-9]([a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])(:[0-9]{1,5})?")


def parse_origins(value: str) -> tuple[str, ...]:
    """TIMELINE_CORS_ORIGINS: origins (`scheme://host[:port]`) separated by commas, or `*`
    for any; ValueError naming the first that is not one."""
    origins = tuple(o.strip().lower().rstrip("/") for o in value.split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise ValueError(
                f"TIMELINE_CORS_ORIGINS: {origin!r} is not an origin like "
                "https://example.org or http://localhost:3000, nor *"
            )
    return origins


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = field(
        default_factory=lambda: os.environ.get("TIMELINE_DATABASE_URL") or f"sqlite:///{_home()}"
    )
    # Streaming replicas that answer the reads (libpq's URL: several hosts may be listed,
    # `?target_session_attrs=prefer-standby`); none: every read goes to the primary.
    read_database_url: str | None = field(
        default_factory=lambda: os.environ.get("TIMELINE_READ_DATABASE_URL") or None
    )
    # How far, in seconds, a replica may trail the primary's read models and still serve.
    replica_max_lag: float = field(default_factory=lambda: _float("TIMELINE_REPLICA_MAX_LAG", 2.0))
    wait_timeout: float = field(default_factory=lambda: _float("TIMELINE_WAIT_TIMEOUT", 5.0))
    # Requests of one process waiting for a position, and live streams it keeps open;
    # past either, a request is answered 503 at once.
    max_waiters: int = field(default_factory=lambda: int(_float("TIMELINE_MAX_WAITERS", 500)))
    max_streams: int = field(default_factory=lambda: int(_float("TIMELINE_MAX_STREAMS", 500)))
    read_requires_key: bool = field(
        default_factory=lambda: (
            os.environ.get("TIMELINE_READ_REQUIRES_KEY", "").lower() in ("1", "true", "yes", "on")
        )
    )
    pool_size: int = field(default_factory=lambda: int(_float("TIMELINE_POOL_SIZE", 10)))
    # Events a projection transaction: 500 and 5,000 both caught up slower (decision 012).
    batch_size: int = field(default_factory=lambda: int(_float("TIMELINE_BATCH_SIZE", 1000)))
    # Concurrent API writes share transactions (each answered after its commit).
    group_commit: bool = field(
        default_factory=lambda: (
            os.environ.get("TIMELINE_GROUP_COMMIT", "on").lower() not in ("0", "false", "no", "off")
        )
    )
    # How long one request may wait on PostgreSQL before it is answered 503 (the serving
    # processes only: workers and commands keep the library's patient defaults).
    statement_timeout: float = field(
        default_factory=lambda: _float("TIMELINE_STATEMENT_TIMEOUT", 5.0)
    )
    lock_timeout: float = field(default_factory=lambda: _float("TIMELINE_LOCK_TIMEOUT", 0.5))
    pool_timeout: float = field(default_factory=lambda: _float("TIMELINE_POOL_TIMEOUT", 0.5))
    # Bytes of NDJSON one POST /admin/backfill may carry, as sent and once decompressed
    # (gzip): past it, 413. It cannot pass the endpoint's own bound, BACKFILL_MAX_BYTES.
    backfill_max_bytes: int = field(
        default_factory=lambda: int(_float("TIMELINE_BACKFILL_MAX_BYTES", 256 * 1024 * 1024))
    )
    # Origins whose scripts may call the API from a browser (comma-separated, or `*`):
    # none by default, and then no answer carries a CORS header (docs/http.md).
    cors_origins: tuple[str, ...] = field(
        default_factory=lambda: parse_origins(os.environ.get("TIMELINE_CORS_ORIGINS", ""))
    )
