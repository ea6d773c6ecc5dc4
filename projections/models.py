"""The four read models over one database: their views, workers, status and rebuilds.

The four read models (timeline, who-said-what, actors, topics) are four sets of queries
over one set of versioned rows, written by one projection (decision 008): each event is
folded once, and all four answer from the same position.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Protocol

from domain.application import Timeline
from projections.base import RowsProjection
from projections.rows import RowsView
from projections.runner import Runner, Status
from projections.shared import Shared
from projections.timeline import TimelineProjection

log = logging.getLogger("timeline.projections")

PROJECTIONS: dict[str, type[RowsProjection]] = {TimelineProjection.name: TimelineProjection}
# Each read model, and the projection whose rows it reads.
READ_MODELS: dict[str, str] = {
    "timeline": "timeline",
    "who-said-what": "timeline",
    "actors": "timeline",
    "topics": "timeline",
}
REGISTRY_TTL = 1.0  # how long readers trust the generation they looked up


class Lease(Protocol):
    def acquire(self) -> bool: ...
    def release(self) -> None: ...


ViewFactory = Callable[[str, int], RowsView]
LeaseFactory = Callable[[str], Lease]


class ReadModels:
    """Views for readers (following rebuilds), and workers that keep them current."""

    def __init__(
        self,
        app: Timeline,
        make_view: ViewFactory,
        make_lease: LeaseFactory,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        parallel: bool = False,
    ) -> None:
        self.app = app
        self.parallel = parallel  # the database takes concurrent writers (not SQLite)
        self.make_view = make_view
        self.make_lease = make_lease
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.shared = Shared()  # decoded events and items, computed once for all four
        self._views: dict[str, tuple[RowsView, float]] = {}
        self._runners: dict[str, Runner] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.on_close: list[Callable[[], None]] = []
        # Told when a read model may have advanced (a commit here, or elsewhere as the
        # database notifies), and when the log may have grown (written elsewhere).
        self.on_advance: list[Callable[[], None]] = []
        self.on_log: list[Callable[[], None]] = []
        # Told while a worker does its job: after each step of a leader, and each time a
        # hot standby finds the lease held by another.
        self.on_beat: list[Callable[[], None]] = []
        for name in PROJECTIONS:
            self._views[name] = (self._open(name), time.monotonic())
        app.listeners.append(self._nudge)

    def _open(self, name: str) -> RowsView:
        probe = self._make(name, 1)
        probe.create_tables()
        generation = probe.generation_in_use()
        if generation is None:
            probe.use_generation(1)
            return probe
        if generation == 1:
            return probe
        view = self._make(name, generation)
        view.create_tables()
        return view

    def _make(self, name: str, generation: int) -> RowsView:
        view = self.make_view(name, generation)
        view.listeners.append(self.advanced)
        return view

    def advanced(self) -> None:
        """A read model may have advanced: tell whoever waits."""
        for listener in self.on_advance:
            listener()

    # Reading ------------------------------------------------------------------------

    def view(self, name: str) -> RowsView:
        """The view readers use now (of a read model or a projection); follows a rebuild
        beside the live one."""
        name = READ_MODELS.get(name, name)
        view, checked = self._views[name]
        if time.monotonic() - checked > REGISTRY_TTL:
            generation = view.generation_in_use() or view.generation
            if generation != view.generation:
                view = self._make(name, generation)
            self._views[name] = (view, time.monotonic())
        return view

    def status(self) -> list[Status]:
        head = self.app.head_position()
        out = []
        for name in PROJECTIONS:
            view = self.view(name)
            state, error, error_position = view.status()
            served = tuple(m for m, p in READ_MODELS.items() if p == name)
            out.append(Status(name, state, view.position(), head, error, error_position, served))
        return out

    # Working ------------------------------------------------------------------------

    def start(self) -> None:
        """Run every projection in a background thread (as leader or hot standby)."""
        self._stop.clear()  # again after stop(): e.g. once a failed projection is fixed
        for name in PROJECTIONS:
            thread = threading.Thread(
                target=self._work, args=(name,), name=f"projection-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for runner in list(self._runners.values()):
            runner.wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def close(self) -> None:
        self.stop()
        if self._nudge in self.app.listeners:
            self.app.listeners.remove(self._nudge)
        for closer in self.on_close:
            closer()

    def run_forever(self) -> None:
        self.start()
        try:
            while any(t.is_alive() for t in self._threads):
                time.sleep(0.5)
        finally:
            self.stop()

    def _work(self, name: str) -> None:
        lease = self.make_lease(name)
        try:
            while not self._stop.is_set():
                try:
                    if not lease.acquire():
                        self._beat()
                        self._stop.wait(1.0)  # hot standby: take over when the leader goes
                        continue
                    runner = self.runner(name)
                    runner.run(self._stop, still_current=partial(self._is_current, runner))
                except Exception as e:  # the store is away between batches: again, later
                    log.warning("projection %s: %s; retrying", name, e)
                    lease.release()  # its session may have died with the server
                    self._stop.wait(1.0)
                    continue
                if runner.state == "failed":
                    return
        finally:
            lease.release()

    def runner(self, name: str) -> Runner:
        view = self.view(name)
        runner = Runner(
            self.app,
            PROJECTIONS[name](view, self.shared),
            batch_size=self.batch_size,
            poll_interval=self.poll_interval,
        )
        runner.beat = self._beat
        self._runners[name] = runner
        return runner

    def _beat(self) -> None:
        for listener in self.on_beat:
            listener()

    def _is_current(self, runner: Runner) -> bool:
        view = runner.view
        return (view.generation_in_use() or view.generation) == view.generation

    def _nudge(self, _: int) -> None:
        # A copy: writers and the listener call this while worker threads add runners.
        for runner in list(self._runners.values()):
            runner.wake.set()

    def wake_all(self) -> None:
        """The log has grown (written by another process)."""
        self._nudge(0)
        for listener in self.on_log:
            listener()

    def catch_up(self) -> None:
        """Bring every view to the head of the log (tests, commands). With `parallel`,
        one thread each: while one waits for the database, another computes. Otherwise
        batch by batch in turn, so that each batch is read and decoded once."""
        runners = [self.runner(name) for name in PROJECTIONS]
        if not self.parallel:
            while sum([runner.step() for runner in runners]):
                pass
            return
        with ThreadPoolExecutor(len(runners), thread_name_prefix="catch-up") as pool:
            for done in [pool.submit(runner.catch_up) for runner in runners]:
                done.result()

    # Rebuilding ---------------------------------------------------------------------

    def rebuild(self, name: str) -> int:
        """Rebuild in place from position 0. The caller holds the projection's lease."""
        view = self.view(name)
        view.drop_tables()
        view.create_tables()
        view.save_status("rebuilding", None, None)
        runner = Runner(self.app, PROJECTIONS[name](view, self.shared), batch_size=self.batch_size)
        applied = runner.catch_up()
        view.save_status("running", None, None)
        return applied

    def rebuild_beside(self, name: str, on_progress: Callable[[int], None] | None = None) -> int:
        """Build a new generation next to the live one; switch readers once caught up."""
        old = self.view(name)
        new = self._make(name, old.generation + 1)
        new.drop_tables()
        new.create_tables()
        runner = Runner(self.app, PROJECTIONS[name](new, self.shared), batch_size=self.batch_size)
        applied = 0
        while step := runner.step():
            applied += step
            if on_progress:
                on_progress(new.position())
        new.use_generation(new.generation)
        applied += runner.catch_up()
        self._views[name] = (new, time.monotonic())
        # Readers trust their lookup for REGISTRY_TTL: keep the old tables until then.
        time.sleep(REGISTRY_TTL * 2)
        old.drop_tables()
        return applied
