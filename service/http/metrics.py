"""Prometheus metrics: requests, latencies, appends, projection positions and lag, and
the reads and streams waiting.

Under `timeline serve --workers N` each worker is a process of its own: `serve` names a
fresh PROMETHEUS_MULTIPROC_DIR before they start, each worker writes its counts there, and
`/metrics` in any worker sums them all (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from service.store.replicas import Replica

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class _Projections(Collector):
    def __init__(self, status: Callable[[], Any]) -> None:
        self.status = status

    def collect(self) -> Iterable[GaugeMetricFamily]:
        position = GaugeMetricFamily(
            "timeline_projection_position", "Last position applied", labels=["projection"]
        )
        lag = GaugeMetricFamily(
            "timeline_projection_lag_events", "Events not yet applied", labels=["projection"]
        )
        failed = GaugeMetricFamily(
            "timeline_projection_failed", "1 when halted by an error", labels=["projection"]
        )
        head = GaugeMetricFamily("timeline_store_head_position", "Last stored position")
        try:
            statuses = [self.status()]
        except Exception:  # the store is away: report nothing rather than fail the scrape
            statuses = []
        for s in statuses:
            position.add_metric([s.name], s.position)
            lag.add_metric([s.name], s.lag)
            failed.add_metric([s.name], 1.0 if s.state == "failed" else 0.0)
        if statuses:
            head.add_metric([], statuses[0].head)
        yield from (position, lag, failed, head)


class Metrics:
    def __init__(self, status: Callable[[], Any]) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_DIR))
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "timeline_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "timeline_http_request_duration_seconds",
            "Time to answer",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.appends = Counter(
            "timeline_appends", "Domain events appended", ["kind"], registry=self.registry
        )
        self.duplicates = Counter(
            "timeline_duplicate_writes",
            "Writes answered as duplicates",
            ["kind"],
            registry=self.registry,
        )
        # The live gauges add up over the processes alive (each process sets its own).
        self.waiting = Gauge(
            "timeline_waiting_reads",
            "Reads waiting for a position (TIMELINE_MAX_WAITERS at most a process)",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.streams = Gauge(
            "timeline_open_streams",
            "Live event streams open (TIMELINE_MAX_STREAMS at most a process)",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.replica_lag = Gauge(
            "timeline_replica_lag_seconds",
            "How long the replica's read models trail the primary's (TIMELINE_REPLICA_MAX_LAG)",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.replica_serving = Gauge(
            "timeline_replica_serving",
            "1 while reads go to the replica, 0 while they go to the primary",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        if self.multiprocess:  # what every worker wrote, not this process's own registry
            self.registry = CollectorRegistry()
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        # The store's positions: the same whichever process reads them.
        self.registry.register(_Projections(status))

    def observe(self, method: str, route: str, status: int, started: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(time.perf_counter() - started)

    def replica(self, replica: Replica) -> None:
        """Told after each look at the replica."""
        self.replica_lag.set(replica.lag)
        self.replica_serving.set(1.0 if replica.usable else 0.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def close(self) -> None:
        """This process stops: its live gauges no longer count."""
        if self.multiprocess:
            mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
