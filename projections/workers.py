"""The workers: leases, batches and status of the one projection and its view.

A runner reads the events after its view's tracking position in batches and applies each
batch in one transaction with the new tracking position, so that a crash loses or repeats
nothing. It sleeps until woken by a write in this process, a PostgreSQL notification, or
its poll interval. A handler that raises halts the projection at that event, with the
error in its status; a restart resumes there.

`ReadModels` runs the runner in a background thread while it holds the lease (a hot
standby waits for it otherwise), hands readers the view of the generation in use, and
rebuilds: in place, or beside the live generation before switching readers to it.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from eventsourcing.persistence import Notification, Tracking

from domain.application import Timeline
from projections.rows import APPLICATION, Carry, Pending, TrackingConflict
from projections.shared import Shared
from projections.timeline import TimelineProjection
from projections.view import TimelineView

log = logging.getLogger("timeline.projections")


@dataclass(frozen=True, slots=True)
class Status:
    name: str
    state: str  # running | rebuilding | failed | stopped | standby
    position: int
    head: int
    error: str | None = None
    error_position: int | None = None

    @property
    def lag(self) -> int:
        return max(self.head - self.position, 0)


class ProjectionFailed(Exception):
    def __init__(self, position: int, error: BaseException) -> None:
        super().__init__(f"event {position}: {type(error).__name__}: {error}")
        self.position = position
        self.error = error


class Runner:
    """Applies the projection to one generation of the view, batch by batch."""

    def __init__(
        self,
        app: Timeline,
        projection: TimelineProjection,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
    ) -> None:
        self.app = app
        self.projection = projection
        self.view: TimelineView = projection.view
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
        notes = self._settled(notes)
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

    def _settled(self, notes: Sequence[Notification]) -> Sequence[Notification]:
        """The batch ends before an event that reads the view as stored, and such an
        event starts its batch once every batch before it is stored."""
        for index, note in enumerate(notes):
            try:
                event = self._event(note)
            except Exception:  # `_build` reports it
                return notes
            if self.projection.settles(event):
                if index:
                    return notes[:index]
                self.flush()
        return notes

    def _event(self, note: Notification) -> object:
        """A notification's domain event, decoded once for every runner of the process."""
        return self.projection.shared.events.get(
            note.id, partial(self.app.mapper.to_domain_event, note)
        )

    def _build(
        self, after: int, notes: Sequence[Notification], carry: Carry
    ) -> tuple[Pending | None, tuple[int, BaseException] | None]:
        """Fold the events into a batch of rows, or say which event failed."""
        events = []
        for index, note in enumerate(notes):
            try:
                events.append(self._event(note))
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


REGISTRY_TTL = 1.0  # how long readers trust the generation they looked up


class Lease(Protocol):
    def acquire(self) -> bool: ...
    def release(self) -> None: ...


ViewFactory = Callable[[int], TimelineView]  # the view of a generation
LeaseFactory = Callable[[], Lease]


class ReadModels:
    """The view for readers (following rebuilds), and the worker that keeps it current."""

    def __init__(
        self,
        app: Timeline,
        make_view: ViewFactory,
        make_lease: LeaseFactory,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
    ) -> None:
        self.app = app
        self.make_view = make_view
        self.make_lease = make_lease
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.shared = Shared()  # decoded events and items, computed once for every runner
        self._runner: Runner | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.on_close: list[Callable[[], None]] = []
        # Told when the view may have advanced (a commit here, or elsewhere as the
        # database notifies), and when the log may have grown (written elsewhere).
        self.on_advance: list[Callable[[], None]] = []
        self.on_log: list[Callable[[], None]] = []
        # Told while the worker does its job: after each step of a leader, and each time
        # a hot standby finds the lease held by another.
        self.on_beat: list[Callable[[], None]] = []
        self._view = (self._open(), time.monotonic())
        app.listeners.append(self._nudge)

    def _open(self) -> TimelineView:
        probe = self._make(1)
        probe.create_tables()
        generation = probe.generation_in_use()
        if generation is None:
            probe.use_generation(1)
            return probe
        if generation == 1:
            return probe
        view = self._make(generation)
        view.create_tables()
        return view

    def _make(self, generation: int) -> TimelineView:
        view = self.make_view(generation)
        view.listeners.append(self.advanced)
        return view

    def advanced(self) -> None:
        """The view may have advanced: tell whoever waits."""
        for listener in self.on_advance:
            listener()

    # Reading ------------------------------------------------------------------------

    def view(self) -> TimelineView:
        """The view readers use now; follows a rebuild beside the live one."""
        view, checked = self._view
        if time.monotonic() - checked > REGISTRY_TTL:
            generation = view.generation_in_use() or view.generation
            if generation != view.generation:
                view = self._make(generation)
            self._view = (view, time.monotonic())
        return view

    def status(self) -> Status:
        head = self.app.head_position()
        view = self.view()
        state, error, error_position = view.status()
        return Status(TimelineProjection.name, state, view.position(), head, error, error_position)

    # Working ------------------------------------------------------------------------

    def start(self) -> None:
        """Run the projection in a background thread (as leader or hot standby)."""
        self._stop.clear()  # again after stop(): e.g. once a failed projection is fixed
        self._thread = threading.Thread(target=self._work, name="projection", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._runner is not None:
            self._runner.wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def close(self) -> None:
        self.stop()
        if self._nudge in self.app.listeners:
            self.app.listeners.remove(self._nudge)
        for closer in self.on_close:
            closer()

    def run_forever(self) -> None:
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                time.sleep(0.5)
        finally:
            self.stop()

    def _work(self) -> None:
        lease = self.make_lease()
        try:
            while not self._stop.is_set():
                try:
                    if not lease.acquire():
                        self._beat()
                        self._stop.wait(1.0)  # hot standby: take over when the leader goes
                        continue
                    runner = self.runner()
                    runner.run(self._stop, still_current=partial(self._is_current, runner))
                except Exception as e:  # the store is away between batches: again, later
                    log.warning("projection: %s; retrying", e)
                    lease.release()  # its session may have died with the server
                    self._stop.wait(1.0)
                    continue
                if runner.state == "failed":
                    return
        finally:
            lease.release()

    def runner(self) -> Runner:
        """A runner of the projection over the view readers use."""
        runner = self._runner = self._new_runner(self.view(), poll_interval=self.poll_interval)
        runner.beat = self._beat
        return runner

    def _new_runner(self, view: TimelineView, poll_interval: float = 1.0) -> Runner:
        projection = TimelineProjection(view, self.shared)
        return Runner(self.app, projection, batch_size=self.batch_size, poll_interval=poll_interval)

    def _beat(self) -> None:
        for listener in self.on_beat:
            listener()

    def _is_current(self, runner: Runner) -> bool:
        view = runner.view
        return (view.generation_in_use() or view.generation) == view.generation

    def _nudge(self, _: int) -> None:
        # Read once: writers and the listener call this while the worker replaces it.
        runner = self._runner
        if runner is not None:
            runner.wake.set()

    def wake_all(self) -> None:
        """The log has grown (written by another process)."""
        self._nudge(0)
        for listener in self.on_log:
            listener()

    def catch_up(self) -> int:
        """Bring the view to the head of the log (tests, commands)."""
        return self.runner().catch_up()

    # Rebuilding ---------------------------------------------------------------------

    def rebuild(self) -> int:
        """Rebuild in place from position 0. The caller holds the lease."""
        view = self.view()
        view.drop_tables()
        view.create_tables(indexed=False)
        view.save_status("rebuilding", None, None)
        applied = self._new_runner(view).catch_up()
        view.create_tables()  # the readers' indexes, built once over the filled tables
        view.save_status("running", None, None)
        return applied

    def rebuild_beside(self, on_progress: Callable[[int], None] | None = None) -> int:
        """Build a new generation next to the live one; switch readers once caught up."""
        old = self.view()
        new = self._make(old.generation + 1)
        new.drop_tables()
        new.create_tables(indexed=False)
        runner = self._new_runner(new)
        applied = 0
        while step := runner.step():
            applied += step
            if on_progress:
                on_progress(new.position())
        new.create_tables()  # the readers' indexes, built once before readers switch
        new.use_generation(new.generation)
        applied += runner.catch_up()
        self._view = (new, time.monotonic())
        # Readers trust their lookup for REGISTRY_TTL: keep the old tables until then.
        time.sleep(REGISTRY_TTL * 2)
        old.drop_tables()
        return applied
