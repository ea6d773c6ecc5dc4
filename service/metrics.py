"""Prometheus metrics: requests, latencies, appends, projection positions and lag, and
the reads and streams waiting."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Projections(Collector):
    def __init__(self, status: Callable[[], Iterable[Any]]) -> None:
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
            statuses = list(self.status())
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
    def __init__(self, status: Callable[[], Iterable[Any]]) -> None:
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
        self.registry.register(_Projections(status))
        self.waiting = Gauge(
            "timeline_waiting_reads",
            "Reads waiting for a position (TIMELINE_MAX_WAITERS at most)",
            registry=self.registry,
        )
        self.streams = Gauge(
            "timeline_open_streams",
            "Live event streams open (TIMELINE_MAX_STREAMS at most)",
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, started: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(time.perf_counter() - started)

    def render(self) -> bytes:
        return generate_latest(self.registry)
