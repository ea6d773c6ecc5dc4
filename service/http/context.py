"""What the handlers share: the write model, the read models, keys, settings, metrics.

Built once by `create_app` and kept on the application's state; never a module global.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.datastructures import State

from projections.workers import ReadModels
from service.http.metrics import Metrics
from service.http.waiting import Feed, Watch
from service.settings import Settings
from service.store.commits import StoreTimeline
from service.store.database import Store
from service.store.keys import KeyStore


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


def services(state: State | Any) -> Services:
    found = state.services
    assert isinstance(found, Services)
    return found
