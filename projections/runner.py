"""Running the projections: batches from the notification log, one worker per read model.

A runner reads the events after its view's tracking position in batches and applies each
batch in one transaction with the new tracking position, so that a crash loses or repeats
nothing. It sleeps until woken by a write in this process, a PostgreSQL notification, or
its poll interval. A handler that raises halts that projection only, at that event, with
the error in its status; a restart resumes there.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from functools import partial

from eventsourcing.persistence import Notification, Tracking

from domain.application import Timeline
from projections.base import RowsProjection
from projections.rows import APPLICATION, Carry, Pending, RowsView, TrackingConflict

log = logging.getLogger("timeline.projections")


@dataclass(frozen=True, slots=True)
class Status:
    name: str
    state: str  # running | rebuilding | failed | stopped | standby
    position: int
    head: int
    error: str | None = None
    error_position: int | None = None
    read_models: tuple[str, ...] = ()  # the read models served from its rows

    @property
    def lag(self) -> int:
        return max(self.head - self.position, 0)


class ProjectionFailed(Exception):
    def __init__(self, position: int, error: BaseException) -> None:
        super().__init__(f"event {position}: {type(error).__name__}: {error}")
        self.position = position
        self.error = error


class Runner:
    """Applies one projection to one view, batch by batch."""

    def __init__(
        self,
        app: Timeline,
        projection: RowsProjection,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
    ) -> None:
        self.app = app
        self.projection = projection
        self.view: RowsView = projection.view
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.wake = threading.Event()
        self.beat: Callable[[], None] = _unheard  # told after each step that reached the store
        self.state = "stopped"
        self._writing: Future[None] | None = None  # the batch being stored, on a pipelined view
        self._next: tuple[int, Carry] | None = None  # where the next batch starts

    def step(self) -> int:
        """Apply the next batch; the number of events applied (0: caught up, and every
        batch stored). On a pipelined view the batch may still be being written when
        this returns; the next step, or `flush`, waits for it."""
        try:
            return self._step()
        except BaseException:
            self._abandon()
            raise

    def _step(self) -> int:
        after, carry = self._next or (self.view.position(), {})
        notes = self._read(after)
        if not notes:
            self.flush()
            return 0
        built, failed_at = self._build(after, notes, carry)
        if failed_at is not None:
            # Keep what came before the failing event, then halt at it.
            self.flush()
            index, error = failed_at
            if index:
                prefix, _ = self._build(after, notes[:index], carry)
                assert prefix is not None
                self.view.commit(prefix, Tracking(APPLICATION, notes[index - 1].id))
            raise ProjectionFailed(notes[index].id, error)
        assert built is not None
        self.flush()  # the batch before: what this one was built on must be stored
        self._store(built, notes[-1].id)
        self._next = (notes[-1].id, built.carry())
        return len(notes)

    def _read(self, after: int) -> Sequence[Notification]:
        """The next batch of the log; the runners of one process share their reads.
        (Commit order is position order, so a batch once read stays a true prefix.)"""
        key = (after, self.batch_size)
        batches = self.projection.shared.batches
        found: Sequence[Notification] | None = batches.peek(key)
        if found is None:
            found = self.app.recorder.select_notifications(
                start=after, limit=self.batch_size, inclusive_of_start=False
            )
            if found:
                batches.get(key, lambda: found)
        return found

    def _build(
        self, after: int, notes: Sequence[Notification], carry: Carry
    ) -> tuple[Pending | None, tuple[int, BaseException] | None]:
        """Fold the events into a batch of rows, or say which event failed."""
        to_event = self.app.mapper.to_domain_event
        events = []
        for index, note in enumerate(notes):
            try:
                events.append(self.projection.shared.events.get(note.id, partial(to_event, note)))
            except Exception as e:  # an event that cannot be read: report it, never skip it
                return None, (index, e)
        with self.view.batch(after, carry) as pending:
            self.projection.prepare(events)
            process = self.projection.process_event  # bound once: binding costs a dispatch
            for index, (note, event) in enumerate(zip(notes, events, strict=True)):
                try:
                    process(event, Tracking(APPLICATION, note.id))
                except Exception as e:  # a poison event: report it, never skip it
                    return None, (index, e)
        return pending, None

    def _store(self, pending: Pending, position: int) -> None:
        """Commit a batch: here, or, on a pipelined view, in a thread of its own while
        the next batch is built (decision 010)."""
        tracking = Tracking(APPLICATION, position)
        if not self.view.pipelined:
            self.view.commit(pending, tracking)
            return
        self.view.reserve_ids(pending.rows)  # the next batch may close these rows
        self._writing = _in_thread(partial(self.view.commit, pending, tracking))

    def flush(self) -> None:
        """Wait for the batch being written; raise what its write raised."""
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def _abandon(self) -> None:
        """After a failure: drop what was built on a batch that may not be stored, wait
        for any write still going, and start again from the stored tracking."""
        self._next = None
        writing, self._writing = self._writing, None
        if writing is not None:
            wait([writing])

    def catch_up(self) -> int:
        """Apply batches until the view reaches the head of the log."""
        total = 0
        while applied := self.step():
            total += applied
        return total

    def run(self, stop: threading.Event, still_current: Callable[[], bool] = lambda: True) -> None:
        """Apply batches until stopped, failed, or the view replaced by a rebuild."""
        self._set_state("running")
        while not stop.is_set() and still_current():
            try:
                applied = self.step()
            except ProjectionFailed as failure:
                log.error(
                    "projection %s halted at event %s: %s\n%s",
                    self.view.name,
                    failure.position,
                    failure.error,
                    _trace(failure.error),
                )
                self._set_state("failed", str(failure), failure.position)
                return
            except TrackingConflict:
                log.warning("projection %s: another worker applied this batch", self.view.name)
                applied = 0
            except Exception as e:  # the store is away: try again, never skip
                log.warning("projection %s: %s; retrying", self.view.name, e)
                stop.wait(min(self.poll_interval, 1.0))
                continue
            self.beat()
            if applied == 0:
                self.wake.wait(self.poll_interval)
                self.wake.clear()
        try:
            self.flush()
        except Exception as e:  # the last batch is not stored: the next run applies it
            self._abandon()
            log.warning("projection %s: last batch not stored: %s", self.view.name, e)
        self._set_state("stopped")

    def _set_state(self, state: str, error: str | None = None, position: int | None = None) -> None:
        self.state = state
        try:
            self.view.save_status(state, error, position)
        except Exception as e:  # status is advice; the next loop tries again
            log.warning("projection %s: cannot save status: %s", self.view.name, e)


def _unheard() -> None:
    """No one listens for the heartbeat."""


def _in_thread(commit: Callable[[], None]) -> Future[None]:
    """Run one batch's commit in a thread of its own; its outcome in a future."""
    outcome: Future[None] = Future()

    def run() -> None:
        try:
            commit()
        except BaseException as e:  # handed to whoever waits for this write
            outcome.set_exception(e)
        else:
            outcome.set_result(None)

    threading.Thread(target=run, name="projection-write").start()
    return outcome


def _trace(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)).strip()
