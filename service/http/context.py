"""What the handlers share: the write model, the read models, keys, settings, metrics.

Built once by `create_app` and kept on the application's state; never a module global.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import Notification
from litestar.datastructures import State

from projections.view import TimelineView
from projections.workers import ReadModels
from service.http.metrics import Metrics
from service.http.waiting import Feed, Watch
from service.settings import Settings
from service.store.commits import StoreTimeline
from service.store.database import Store
from service.store.keys import KeyStore
from service.store.replicas import Replica

# The log's events after a position (at most so many), and its head.
Log = Callable[[int, int], tuple[Sequence[Notification], int]]


@dataclass(frozen=True, slots=True)
class Side:
    """Where a read is answered: a view, the watch of the position it has reached, and
    the log as it has it."""

    view: Callable[[], TimelineView]
    reached: Watch
    log: Log


@dataclass
class Services:
    settings: Settings
    store: Store
    timeline: StoreTimeline
    models: ReadModels
    keys: KeyStore
    metrics: Metrics
    reached: Watch  # the read models' position, for the requests that wait for one
    feed: Feed  # the log's new events, for the live streams
    replica: tuple[Replica, Side] | None = None  # TIMELINE_READ_DATABASE_URL

    def reader(self) -> Side:
        """Where a read goes now: the replica while it serves, else the primary."""
        if self.replica is not None and self.replica[0].usable:
            return self.replica[1]
        return Side(self.models.view, self.reached, self.log)

    def log(self, after: int, limit: int) -> tuple[Sequence[Notification], int]:
        """The primary's log after a position, and its head."""
        recorder = self.timeline.recorder
        notes = recorder.select_notifications(after, limit, inclusive_of_start=False)
        return notes, self.timeline.head_position()


def services(state: State | Any) -> Services:
    found = state.services
    assert isinstance(found, Services)
    return found
