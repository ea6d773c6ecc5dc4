"""What the runners of one process would each compute alike, computed once.

Runners that follow the same log (the live projection and a rebuild beside it, say)
would each decode every stored event, and build the same item for every record version
and encode it to JSON. Both are pure functions of the log up to that event, so a runner
may take the result that another one, at the same event, already made. Entries are
bounded: the runners of one process move together, so a few batches' worth is enough.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Memo(Generic[K, V]):
    """A bounded map, oldest entries evicted first; safe across threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        # Ordered, to evict the oldest in O(1): `next(iter(d))` on a plain dict walks
        # over every slot deleted before it, which made a long rebuild slow down as it
        # went (17% of a 1M-event rebuild in docs/benchmarks.md's first full run).
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: K) -> V | None:
        return self._entries.get(key)

    def get(self, key: K, make: Callable[[], V]) -> V:
        found = self._entries.get(key)
        if found is not None:
            return found
        value = make()
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value


@dataclass(frozen=True, slots=True)
class Item:
    """A record version as the view stores it."""

    body: dict[str, Any]
    state: dict[str, Any]
    body_text: str
    state_text: str
    start_at: datetime
    end_at: datetime
    links: list[tuple[str, str]]  # (rel, value): the actors and topics it names


class Shared:
    def __init__(self, size: int = 20_000) -> None:
        self.events: Memo[int, Any] = Memo(size)  # decoded domain events by position
        self.items: Memo[tuple[str, int], Item] = Memo(size)  # by (record id, version)
        self.batches: Memo[tuple[int, int], Any] = Memo(32)  # log reads by (after, limit)
