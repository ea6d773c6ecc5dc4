"""Reads that wait, and live streams, cost no thread a write needs, and are capped.

- In one process, the requests waiting for a position share one poll of the store, and
  the live streams share one reader of the log: a hundred waiters or streams cost the
  store what one does.
- Through a real server whose worker is paused: a hundred reads waiting for a position
  the read models have not reached leave the writes free (a POST is answered while every
  one of them still waits); past the cap of waiters or of streams, a request is answered
  503 with Retry-After at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from service.http.waiting import Busy, Feed, Message, Watch
from tests.projections.workers_support import wait_until
from tests.reliability.serving import served_with_worker

# Waiters and streams ------------------------------------------------------------------


class Store:
    """A log and a read-model position that tests move, counting every read of them."""

    def __init__(self) -> None:
        self.position = 0
        self.log: list[Message] = []
        self.reads = 0
        self.fetches = 0
        self.lock = threading.Lock()

    def read(self) -> int:
        with self.lock:
            self.reads += 1
            return self.position

    def head(self) -> int:
        with self.lock:
            self.reads += 1
            return self.log[-1].position if self.log else 0

    def fetch(self, after: int, limit: int) -> list[Message]:
        with self.lock:
            self.fetches += 1
            return [m for m in self.log if m.position > after][:limit]

    def append(self, n: int) -> None:
        with self.lock:
            start = len(self.log)
            self.log += [
                Message(p, f"id: {p}\n\n".encode()) for p in range(start + 1, start + n + 1)
            ]


def test_a_hundred_waiters_share_one_poll_and_are_released_together() -> None:
    store = Store()
    watch = Watch(store.read, limit=150, interval=0.05)

    async def scenario() -> tuple[int, list[bool]]:
        waiters = [asyncio.ensure_future(watch.reached(7, timeout=30)) for _ in range(100)]
        await asyncio.sleep(0.5)  # about ten polls while nobody is released
        assert not any(w.done() for w in waiters)
        reads_while_waiting = store.reads
        store.position = 7
        watch.poke()
        return reads_while_waiting, list(await asyncio.gather(*waiters))

    reads_while_waiting, released = asyncio.run(scenario())
    assert released == [True] * 100
    # One poll for all of them: about ten reads in half a second, not a thousand.
    assert 2 <= reads_while_waiting <= 25, reads_while_waiting
    assert watch.waiting == 0


def test_past_the_cap_a_waiter_is_refused_at_once_and_a_timeout_says_false() -> None:
    store = Store()
    watch = Watch(store.read, limit=3, interval=0.05)

    async def scenario() -> tuple[list[bool], bool]:
        waiters = [asyncio.ensure_future(watch.reached(1, timeout=0.3)) for _ in range(3)]
        await asyncio.sleep(0)
        with pytest.raises(Busy, match="3 requests are waiting"):
            await watch.reached(1, timeout=10)
        # Already reached: no waiting, no cap.
        store.position = 0
        return list(await asyncio.gather(*waiters)), await watch.reached(0, timeout=0)

    timed_out, at_once = asyncio.run(scenario())
    assert timed_out == [False, False, False]
    assert at_once is True


def test_a_hundred_streams_share_one_reader_of_the_log() -> None:
    store = Store()
    store.append(5)
    feed = Feed(store.head, store.fetch, limit=200, interval=0.05, gap=0.01, keep=50)

    async def follow(after: int, count: int) -> list[int]:
        got: list[int] = []
        async for batch in feed.follow(after, idle=60):
            got += [message.position for message in batch]
            if len(got) >= count:
                break
        return got

    async def scenario() -> tuple[list[list[int]], int, int]:
        # A hundred streams that have seen everything, and one that starts from 0.
        followers = [asyncio.ensure_future(follow(5, 3)) for _ in range(100)]
        late = asyncio.ensure_future(follow(0, 8))
        await asyncio.sleep(0.5)
        fetches_idle, reads_idle = store.fetches, store.reads
        store.append(3)
        feed.poke()
        got = await asyncio.gather(*followers, late)
        return list(got), fetches_idle, reads_idle

    got, fetches_idle, reads_idle = asyncio.run(scenario())
    assert got[:100] == [[6, 7, 8]] * 100
    assert got[100] == [1, 2, 3, 4, 5, 6, 7, 8]
    # Idle, the streams cost one head query an interval between them; the late one read
    # its past itself; the new events were fetched once for all.
    assert reads_idle <= 25, reads_idle
    assert fetches_idle <= 3, fetches_idle
    assert store.fetches <= fetches_idle + 3, store.fetches
    assert feed.streams == 0


def test_past_the_cap_a_stream_is_refused() -> None:
    store = Store()
    feed = Feed(store.head, store.fetch, limit=2, interval=0.05, gap=0.01, keep=10)

    async def scenario() -> None:
        async def hold() -> None:
            async for _ in feed.follow(0, idle=0.05):
                await asyncio.sleep(10)

        held = [asyncio.ensure_future(hold()) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(Busy, match="2 streams are open"):
            feed.admit()
        for task in held:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)
        feed.admit()  # closed streams free their places

    asyncio.run(scenario())


# Through a real server ----------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def paused(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, str, int, Callable[[], None]]]:
    """A server (100 waiters, 3 streams at most) whose worker is paused behind a write:
    its URL, a write key, the position of that write, and what resumes the worker."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/store"
    else:
        url = f"{request.getfixturevalue('postgres_database')}?schema=wait_{uuid.uuid4().hex}"
    env = {
        "TIMELINE_WAIT_TIMEOUT": "60",
        "TIMELINE_MAX_WAITERS": "100",
        "TIMELINE_MAX_STREAMS": "3",
    }
    with served_with_worker(url, tmp_path, env) as served:
        base, key, worker = served.base, served.key, served.worker
        os.kill(worker.proc.pid, signal.SIGSTOP)

        def resume() -> None:
            os.kill(worker.proc.pid, signal.SIGCONT)

        try:
            yield base, key, post(base, key, "unprojected"), resume
        finally:
            resume()


def post(base: str, key: str, text: str) -> int:
    body = {
        "key": text,
        "speaker": "mark-rutte",
        "quote": text,
        "occurred_at": "2025-02-13",
        "channel": "speech",
        "topics": [],
        "sources": [{"publisher": "BBC News", "url": "https://www.bbc.com/news/x"}],
    }
    answer = httpx.post(
        f"{base}/statements", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["position"])


def test_a_hundred_waiting_reads_leave_writes_free_and_the_next_one_is_refused(
    paused: tuple[str, str, int, Callable[[], None]],
) -> None:
    base, key, position, resume = paused
    with ThreadPoolExecutor(101) as pool:
        waiting: list[Future[httpx.Response]] = [
            pool.submit(
                httpx.get, f"{base}/timeline", params={"min_position": position}, timeout=90
            )
            for _ in range(100)
        ]
        wait_until(
            "a hundred reads wait in the server",
            lambda: "timeline_waiting_reads 100.0" in httpx.get(f"{base}/metrics").text,
            seen=lambda: [
                line
                for line in httpx.get(f"{base}/metrics").text.splitlines()
                if line.startswith("timeline_waiting_reads")
            ],
        )
        # A write goes through while every read still waits (before, they held every
        # worker thread and the write queued behind them until they timed out)...
        post(base, key, "written while a hundred reads wait")
        assert not any(w.done() for w in waiting)
        # ...and a hundred-and-first waiting read is refused at once.
        refused = httpx.get(f"{base}/timeline", params={"min_position": position}, timeout=10)
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"].isdigit()
        assert refused.json()["errors"][0]["field"] == "min_position"
        assert not any(w.done() for w in waiting)
        # Once the worker goes on, every one of them is answered.
        resume()
        assert {w.result().status_code for w in waiting} == {200}


def test_past_the_cap_of_streams_a_stream_is_refused_at_once(
    paused: tuple[str, str, int, Callable[[], None]],
) -> None:
    base, *_ = paused
    with httpx.Client(timeout=30) as client:
        streams = [client.stream("GET", f"{base}/events/stream") for _ in range(3)]
        opened = [s.__enter__() for s in streams]
        try:
            assert [r.status_code for r in opened] == [200, 200, 200]
            refused = httpx.get(f"{base}/events/stream", timeout=10)
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"].isdigit()
        finally:
            for s in streams:
                s.__exit__(None, None, None)
