"""Waiting without holding a thread: for the read models to reach a position (`Watch`), or
for the log to grow (`Feed`, the live event streams).

The requests waiting are futures on the event loop, and one `Poller` a process, run only
while someone waits, looks at the store for all of them (in a worker thread, briefly),
woken early by a commit in this process or a notification from the database. Both are
capped: past the cap a request is refused at once, never queued behind a thread that a
write needs (decision 013).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio

log = logging.getLogger("timeline.waiting")

# How long a read as of now trusts the read models' position it last read, when nothing
# has said they advanced since (a notification lost while the listener reconnects costs
# at most this).
TRUSTED = 1.0


def _ignore(count: float) -> None:
    """No one is told."""


class Busy(Exception):
    """As many requests as allowed are waiting already: refuse this one at once."""


class Poller(ABC):
    """A task on the event loop that looks at the store while it has someone to serve:
    every `interval`, or sooner when poked, but never within `gap` of its last look."""

    def __init__(self, name: str, *, interval: float, gap: float = 0.0) -> None:
        self.name = name
        self.interval = interval
        self.gap = gap
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poked: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        """What it follows may have grown (a commit here, a notification): look now.
        Safe from any thread."""
        loop, poked = self._loop, self._poked
        if loop is not None and poked is not None and not loop.is_closed():
            loop.call_soon_threadsafe(poked.set)

    @abstractmethod
    def _busy(self) -> bool:
        """Whether anyone waits."""

    @abstractmethod
    async def _look(self) -> None:
        """Look at the store and serve whoever waits."""

    @abstractmethod
    def _restart(self) -> None:
        """A new event loop (an app started again): forget what belonged to the old."""

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._poked, self._task = loop, asyncio.Event(), None
            self._restart()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(), name=f"timeline-{self.name}")
        assert self._poked is not None
        self._poked.set()  # someone new: look now, not at the next interval

    async def _run(self) -> None:
        assert self._poked is not None
        while self._busy():
            self._poked.clear()
            try:
                await self._look()
            except Exception as e:  # the store is away: waiters time out, streams idle
                log.info("%s: %s", self.name, e)
            if self.gap:
                await asyncio.sleep(self.gap)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), self.interval - self.gap)


class Watch(Poller):
    """One number that only grows (the read models' position), and the requests that
    wait for it to reach theirs. Poked when it grows (a commit here, a notification)."""

    def __init__(self, read: Callable[[], int], *, limit: int, interval: float) -> None:
        super().__init__("watch", interval=interval)
        self._read = read  # blocking: the current value, from the store
        self.limit = limit
        self.known = 0  # the highest value read so far
        self._pokes = 0
        self._fresh: tuple[int, float] | None = None  # pokes and time when `known` was read
        self._waiters: dict[asyncio.Future[None], int] = {}
        self.counted: Callable[[float], None] = _ignore  # told each new count of waiters

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def poke(self) -> None:
        self._pokes += 1
        super().poke()

    def now(self) -> int:
        """The value now, read from the store only when it may have grown: after a poke,
        or `TRUSTED` seconds after the last read. Every read answering as of now takes it,
        not a statement a request. Blocking."""
        pokes, fresh = self._pokes, self._fresh
        if fresh is not None and fresh[0] == pokes and time.monotonic() - fresh[1] < TRUSTED:
            return self.known
        self.known = max(self.known, self._read())
        self._fresh = (pokes, time.monotonic())
        return self.known

    async def reached(self, value: int, timeout: float) -> bool:
        """True once the value is reached; False after the timeout. `Busy` at once when
        the cap of waiters is reached."""
        if value <= self.known:
            return True
        if len(self._waiters) >= self.limit:
            raise Busy(f"{self.limit} requests are waiting already")
        self._start()  # (its task runs once this one awaits)
        done = asyncio.get_running_loop().create_future()
        self._waiters[done] = value
        self.counted(len(self._waiters))
        try:
            await asyncio.wait_for(done, timeout)
        except TimeoutError:
            return False
        finally:
            self._waiters.pop(done, None)
            self.counted(len(self._waiters))
        return True

    def _busy(self) -> bool:
        return bool(self._waiters)

    def _restart(self) -> None:
        self._waiters.clear()
        self.counted(0)

    async def _look(self) -> None:
        self.known = max(self.known, await anyio.to_thread.run_sync(self._read))
        for done, value in list(self._waiters.items()):
            if value <= self.known and not done.done():
                done.set_result(None)


@dataclass(frozen=True, slots=True)
class Message:
    """One event of the feed, encoded once for every stream."""

    position: int
    frame: bytes  # as a stream sends it


Fetch = Callable[[int, int], list[Message]]  # (after, limit): blocking, from the store


class Feed(Poller):
    """The log's new events for every live stream of a process, read once.

    One reader, run while any stream is open, asks the store for the log's head every
    `interval` (or sooner when a write here or a notification says it grew, but never
    within `gap` of its last look), fetches the new events once and keeps the latest
    `keep` of them; a stream that has caught up takes them from there, all that came
    since it last looked at once. Only a stream that starts or falls behind that window
    reads the store itself. Streams are capped: past the cap a stream is refused at once.
    """

    def __init__(
        self,
        head: Callable[[], int],
        fetch: Fetch,
        *,
        limit: int,
        interval: float,
        gap: float,
        keep: int,
    ) -> None:
        super().__init__("feed", interval=interval, gap=gap)
        self._head = head
        self._fetch = fetch
        self.limit = limit
        self.keep = keep
        self.streams = 0
        self.counted: Callable[[float], None] = _ignore  # told each new count of streams
        self.recent: list[Message] = []  # every event after `complete_after`, in order
        self.complete_after = -1  # -1: not read yet
        self._grown = asyncio.Event()  # replaced each time the log grows

    @property
    def head(self) -> int:
        return self.recent[-1].position if self.recent else self.complete_after

    def admit(self) -> None:
        """Refuse a new stream at once (`Busy`) when the cap is reached."""
        if self.streams >= self.limit:
            raise Busy(f"{self.limit} streams are open already")

    async def follow(self, after: int, idle: float) -> AsyncIterator[list[Message]]:
        """The events after a position, then live, in batches; an empty batch after
        `idle` seconds without one (for a keep-alive)."""
        self.streams += 1
        self.counted(self.streams)
        try:
            self._start()
            while True:
                batch = await self._after(after)
                if batch:
                    after = batch[-1].position
                    yield batch
                    continue
                try:
                    await asyncio.wait_for(self._grown.wait(), idle)
                except TimeoutError:
                    yield []
        finally:
            self.streams -= 1
            self.counted(self.streams)

    async def _after(self, after: int) -> list[Message]:
        if self.complete_after < 0 or after >= self.head:
            return []  # the reader has not looked yet, or there is nothing new
        if after >= self.complete_after:
            start = bisect.bisect_right(self.recent, after, key=lambda m: m.position)
            return self.recent[start:]
        return await anyio.to_thread.run_sync(self._fetch, after, FETCH)

    def _restart(self) -> None:
        self.recent, self.complete_after, self._grown = [], -1, asyncio.Event()

    def _busy(self) -> bool:
        return self.streams > 0

    async def _look(self) -> None:
        head = await anyio.to_thread.run_sync(self._head)
        before = self.head
        if self.complete_after < 0:
            self.complete_after = head  # from here on; earlier events are read by streams
        while head > self.head:
            new = await anyio.to_thread.run_sync(self._fetch, self.head, FETCH)
            if not new:
                break
            self.recent += new
            if len(self.recent) > self.keep:
                self.complete_after = self.recent[-self.keep - 1].position
                del self.recent[: -self.keep]
        if self.head != before:  # wake the streams only when there is news
            grown, self._grown = self._grown, asyncio.Event()
            grown.set()


FETCH = 100  # events a stream or the reader takes from the store at a time
