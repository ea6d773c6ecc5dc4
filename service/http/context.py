"""What the handlers share: the write model, the read models, keys, settings, metrics.

Built once by `create_app` and kept on the application's state; never a module global.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Side:
    """Where a read is answered: a view, and the watch of the position it has reached."""

    view: Callable[[], TimelineView]
    reached: Watch


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
        return Side(self.models.view, self.reached)


def services(state: State | Any) -> Services:
    found = state.services
    assert isinstance(found, Services)
    return found
