"""The timeline as the service stores it: a save for its own events, and group commit.

`StoreTimeline` is the domain's `Timeline` with two things only a store needs. Its
`save` collects the events of this service's aggregates without the library's generic
checks: `collect_events` tests each object against runtime-checkable Protocols, which took
a tenth of a backfill's Python time (decision 011). And once `enable_group_commit` is
called, concurrent writes (of other threads) share transactions: each is still answered
only after its own events are committed.

Group commit: a write hands its new events to the committer and waits. One thread takes
everything waiting, saves it in one transaction and wakes each writer with its own
recordings; while it commits, the next group gathers. A group that fails on a conflict (two writers
changed one aggregate, or created one id) is saved again writer by writer, so that each
gets its own answer: the first wins, the others learn of the conflict. Any other error
(the store is away) is each writer's answer. Nothing is acknowledged before its commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Recording

from domain.application import Timeline
from domain.errors import ConcurrentWrite

Save = Callable[[Sequence[Any]], list[Recording[Any]]]


@dataclass(slots=True)
class _Waiting:
    events: list[Any]
    done: threading.Event = field(default_factory=threading.Event)
    recordings: list[Recording[Any]] = field(default_factory=list)
    error: BaseException | None = None


class GroupCommit:
    def __init__(self, save: Save, *, max_events: int = 500) -> None:
        self._save = save  # events -> recordings, in one transaction
        self.max_events = max_events
        self._queue: list[_Waiting] = []
        self._ready = threading.Condition()
        self._closed = False
        self.groups = 0  # transactions committed, for metrics and tests
        self.writes = 0
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def save(self, events: list[Any]) -> list[Recording[Any]]:
        """Store the events in the next group; their recordings once committed."""
        waiting = _Waiting(events)
        with self._ready:
            if self._closed:
                raise RuntimeError("the group committer is closed")
            self._queue.append(waiting)
            self._ready.notify()
        waiting.done.wait()
        if waiting.error is not None:
            raise waiting.error
        return waiting.recordings

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join(10)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if not self._queue:
                    return  # closed, and nothing left waiting
                group: list[_Waiting] = []
                size = 0
                while self._queue and (
                    not group or size + len(self._queue[0].events) <= self.max_events
                ):
                    size += len(self._queue[0].events)
                    group.append(self._queue.pop(0))
            self._commit(group)

    def _commit(self, group: list[_Waiting]) -> None:
        try:
            recordings = self._save([e for w in group for e in w.events])
        except ConcurrentWrite as e:
            if len(group) == 1:
                self._answer(group[0], error=e)
            else:
                for waiting in group:  # each on its own: one conflict fails only its writer
                    self._commit([waiting])
            return
        except BaseException as e:
            for waiting in group:
                self._answer(waiting, error=e)
            return
        self.groups += 1
        start = 0
        for waiting in group:
            self._answer(waiting, recordings[start : start + len(waiting.events)])
            start += len(waiting.events)

    def _answer(
        self,
        waiting: _Waiting,
        recordings: list[Recording[Any]] | None = None,
        error: BaseException | None = None,
    ) -> None:
        waiting.recordings = recordings or []
        waiting.error = error
        self.writes += 1
        waiting.done.set()


class StoreTimeline(Timeline):
    """The domain's timeline with the service's save, and group commit when enabled."""

    name = "Timeline"  # the library names the tables and settings after it: the domain's

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self.group: GroupCommit | None = None  # see enable_group_commit

    def enable_group_commit(self, max_events: int = 500) -> None:
        """Concurrent writes (of other threads) share transactions from now on; each is
        still answered only after its own events are committed. Creations then stop
        looking for an existing aggregate first (see `Timeline.optimistic_creates`)."""
        if self.group is None:
            self.group = GroupCommit(self.save_atomically, max_events=max_events)
        self.optimistic_creates = True

    def close(self) -> None:
        if self.group is not None:
            self.group.close()
        super().close()

    def store(self, aggregate: Aggregate, *more: Aggregate) -> list[Recording[UUID]]:
        # With `more` (a topic's move) not in a group: saved as aggregates, snapshots of
        # them are taken.
        if self.group is not None and not more:
            return self.group.save(list(aggregate.collect_events()))
        return super().store(aggregate, *more)

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's `save`, for the aggregates and events of this service only."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, Aggregate):
                processing.events.extend(obj.collect_events())
                processing.aggregates[obj.id] = obj
            elif obj is not None:
                processing.events.append(obj)
        processing.saved_kwargs.update(kwargs)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        return recordings
