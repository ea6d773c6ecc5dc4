"""The read models' copy on PostgreSQL streaming replicas (`TIMELINE_READ_DATABASE_URL`).

Physical replication copies every table, so a replica holds the view, its tracking
position and the log as the primary had them a moment ago. Readers ask it while it
answers and is near enough (`max_lag` seconds behind the primary's view); otherwise, and
for any one query the replica fails, they ask the primary, which has at least as much. Writes, the
projection's worker, LISTEN/NOTIFY and the lease stay on the primary (decision 028).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import Notification
from psycopg_pool import PoolTimeout

from projections.postgres import PostgresView, make_pool
from projections.workers import ReadModels
from service.store.database import Bounds, Store, StoreError
from service.store.recorders import PostgresRecorder

log = logging.getLogger("timeline.replicas")
FAULTS = (psycopg.Error, PoolTimeout)  # anything a replica may answer instead of rows
# The replica is away, or cut the query off (recovery conflicts, shutdown, timeouts).
AWAY = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)


class ReplicaView(PostgresView):
    """The view on a replica; a query the replica fails (down, cancelled by recovery, a
    table it has not replayed yet) is asked of the primary's view instead, which has
    reached at least what the replica had (positions only grow)."""

    def __init__(self, replica: Replica, generation: int) -> None:
        super().__init__(replica.pool, generation)
        self.replica = replica
        self.own = PostgresView(replica.pool, generation)  # the replica's alone

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.replica.usable:
            try:
                return super().query(sql, params)
            except FAULTS as e:
                # Asked again of the primary, where an error of the query itself recurs;
                # only a replica that is away is skipped.
                if isinstance(e, AWAY):
                    self.replica.fault(e)
        primary = self.replica.primary.view()
        assert isinstance(primary, PostgresView)  # as `open_replica` requires
        return primary.query(sql, params)


class Replica:
    """Where readers' queries go while the replica serves, its read models' position, and
    a thread that looks every `interval` whether it answers and how far it trails."""

    def __init__(
        self,
        conninfo: str,
        primary: ReadModels,
        *,
        max_lag: float,
        bounds: Bounds,
        size: int,
        interval: float = 0.25,
    ) -> None:
        self.primary = primary
        self.max_lag = max_lag
        self.interval = interval
        self.pool = make_pool(
            conninfo,
            size=size,
            name="timeline-replica",
            timeout=bounds.pool_timeout,
            reconnect_timeout=bounds.reconnect_timeout,
        )
        self.usable = False  # until the first look finds it near enough
        self.lag = 0.0  # seconds since the primary's view first had what this one lacks
        self.known = 0  # the replica's position when last read
        # (time first seen, position) of the primary's view, beyond the replica's
        self._ahead: deque[tuple[float, int]] = deque()
        self.generation = primary.view().generation
        self._views: dict[int, ReplicaView] = {}
        self.on_look: list[Callable[[Replica], None]] = []  # told after every look
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replica-check", daemon=True)
        self._thread.start()

    def view(self) -> ReplicaView:
        """The replica's view of the generation that the primary's readers use (as the
        last look found it: a request never waits on the primary for it)."""
        view = self._views.get(self.generation)
        if view is None:
            view = self._views[self.generation] = ReplicaView(self, self.generation)
        return view

    def position(self) -> int:
        """The replica's own position (never the primary's: a read that waits for a
        position must find it here); the last one read if the replica fails now."""
        try:
            self.known = max(self.known, self.view().own.position())  # no fallback
        except FAULTS as e:
            self.fault(e)
        return self.known

    def log(
        self, recorder: PostgresRecorder, after: int, limit: int
    ) -> tuple[Sequence[Notification], int]:
        """The log's events after a position, and its head, as the replica has them;
        the primary's, if the replica fails."""
        if self.usable:
            try:
                with self.pool.connection() as conn:
                    return recorder.notifications_after(conn, after, limit), recorder.head_on(conn)
            except FAULTS as e:  # as `ReplicaView.query`
                if isinstance(e, AWAY):
                    self.fault(e)
        notes = recorder.select_notifications(after, limit, inclusive_of_start=False)
        return notes, recorder.max_notification_id() or 0

    def fault(self, error: BaseException) -> None:
        """A query failed on the replica: readers go to the primary until it answers."""
        if self.usable:
            log.warning("replica skipped, reads go to the primary: %s", error)
        self.usable = False

    def look(self) -> None:
        """Read both positions; the replica serves while it answers within `max_lag`."""
        try:
            self._measure()
        finally:
            for listener in self.on_look:
                listener(self)

    def _measure(self) -> None:
        now = time.monotonic()
        ahead = self._ahead
        try:
            view = self.primary.view()
            self.generation, primary = view.generation, view.position()
        except FAULTS as e:  # the primary is away: judged by what it had
            log.info("replica check: the primary did not answer: %s", e)
        else:
            if not ahead or primary > ahead[-1][1]:
                ahead.append((now, primary))
        try:
            replica = self.view().own.position()  # no fallback
        except FAULTS as e:
            self.fault(e)
            return
        self.known = max(self.known, replica)
        while ahead and ahead[0][1] <= replica:
            ahead.popleft()
        self.lag = now - ahead[0][0] if ahead else 0.0
        usable = self.lag <= self.max_lag
        if usable != self.usable:
            log.warning(
                "replica %s (%.1f s behind)", "serves reads" if usable else "skipped", self.lag
            )
        self.usable = usable

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                self.look()
            except Exception as e:  # never let the looking stop
                log.warning("replica check: %s", e)
            self._closed.wait(self.interval)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(5.0)
        self.pool.close()


def open_replica(url: str, store: Store, primary: ReadModels, max_lag: float) -> Replica:
    """The replicas at `url` (a libpq URL), for the read models of the primary `store`:
    the same schema, the same bounds on every statement."""
    if store.kind != "postgres":
        raise StoreError("TIMELINE_READ_DATABASE_URL needs a PostgreSQL TIMELINE_DATABASE_URL")
    if not url.startswith(("postgresql://", "postgres://")):
        raise StoreError("TIMELINE_READ_DATABASE_URL must start with postgresql://")
    bounds = store.bounds or Bounds()
    schema = store.env["POSTGRES_SCHEMA"]
    options = [*([f"-c search_path={schema}"] if schema else []), bounds.options()]
    try:
        # libpq waits at least 2 s for each host; a host that refuses is passed at once.
        conninfo = psycopg.conninfo.make_conninfo(url, options=" ".join(options), connect_timeout=2)
    except psycopg.ProgrammingError as e:
        raise StoreError(f"TIMELINE_READ_DATABASE_URL: {e}") from None
    return Replica(conninfo, primary, max_lag=max_lag, bounds=bounds, size=store.views)
