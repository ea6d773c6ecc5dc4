"""Writers racing on one record or one key, over HTTP, on every store.

- 16 threads correct one record, all expecting the same version (`If-Match`), round
  after round: exactly one wins each round, the other fifteen get `409` (with the new
  version as `ETag`), the event store holds versions 1..N with no gap and no repeat, and
  its corrections are exactly the winners', in order. No `500`.
- 16 threads correct one record without `If-Match`: nobody asked for a version, so every
  correction is stored (a writer that loses the race reloads and applies again), each
  once, versions contiguous.
- The same POST (same key) sent 3 times at once: one event, one `201` and two `200`
  duplicates naming the same id, version, position and recorded time; the same key with
  another body (sent alone, or three different bodies at once): `409`.

The requests run concurrently through the app in-process (the handlers run in worker
threads, as under uvicorn), with a barrier so that each round's requests start together.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, cast
from uuid import UUID

import httpx
import pytest

from domain.errors import ConcurrentWrite
from tests.reliability.conftest import Figures, contiguous, stored_versions
from tests.service.conftest import (
    Api,
    ApiFactory,
    announcement,
    occurrence,
    statement,
    unique,
)

WRITERS = 16
PROBLEM = "application/problem+json"


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=WRITERS) as executor:
        yield executor


# (store, group commit): the three stores with the default, concurrent writes sharing
# transactions; and PostgreSQL with one transaction per write (TIMELINE_GROUP_COMMIT=off).
MODES = [("memory", "on"), ("sqlite", "on"), ("postgres", "on"), ("postgres", "off")]


def modes(chosen: list[tuple[str, str]]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(
        "racing_api",
        chosen,
        indirect=True,
        ids=[f"{store}-group-commit-{commit}" for store, commit in chosen],
    )


@pytest.fixture
def racing_api(
    request: pytest.FixtureRequest, api_factory: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> Api:
    store, commit = request.param
    monkeypatch.setenv("TIMELINE_GROUP_COMMIT", commit)
    api = api_factory(store, seed=True)
    assert (api.services.timeline.group is not None) == (commit == "on")
    return api


def together(
    pool: ThreadPoolExecutor, calls: Sequence[Callable[[], httpx.Response]]
) -> list[httpx.Response]:
    """Run the calls at once: each thread waits at a barrier, then sends."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait(timeout=30)
        return call()

    return list(pool.map(run, calls))


def created(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = api.post(path, body)
    assert answer.status_code == 201, answer.text
    found: dict[str, Any] = answer.json()
    return found


def correction(api: Api, path: str, text: str, version: int | None) -> Callable[[], httpx.Response]:
    headers = {} if version is None else {"If-Match": f'"{version}"'}
    body = {"changes": {"location": text}, "reason": f"race: {text}"}
    return lambda: api.post(path, body, headers=headers)


def count_store_collisions(api: Api) -> list[int]:
    """Counts the saves the event store refused because another writer stored that
    version first: a race that really reached the store."""
    timeline, seen, lock = api.services.timeline, [0], threading.Lock()
    # With group commit, the committer thread saves; otherwise the writer's own.
    owner: Any = timeline.group if timeline.group is not None else timeline
    name = "_save" if timeline.group is not None else "save_atomically"
    save = getattr(owner, name)

    def counting(aggregates: Any) -> Any:
        try:
            return save(aggregates)
        except ConcurrentWrite:
            with lock:
                seen[0] += 1
            raise

    setattr(owner, name, counting)
    return seen


def stored_since(api: Api, position: int) -> list[int]:
    """The positions of the events stored after a position."""
    notes = api.services.timeline.recorder.select_notifications(
        start=position, limit=100, inclusive_of_start=False
    )
    return [n.id for n in notes]


def stored_corrections(api: Api, id: UUID) -> list[str]:
    events = api.services.timeline.events.get(id)
    corrected = [cast(Any, e) for e in events if type(e).__name__ == "Corrected"]
    return [e.changes["location"] for e in corrected]


@modes(MODES)
def test_16_conditional_writers_race_one_winner_per_round_the_others_409(
    racing_api: Api, pool: ThreadPoolExecutor, figures: Figures
) -> None:
    race_conditional(racing_api, pool, figures, rounds=20)


@pytest.mark.chaos
@modes(MODES)
def test_16_conditional_writers_race_200_rounds(
    racing_api: Api, pool: ThreadPoolExecutor, figures: Figures
) -> None:
    race_conditional(racing_api, pool, figures, rounds=200)


def race_conditional(api: Api, pool: ThreadPoolExecutor, figures: Figures, *, rounds: int) -> None:
    rec = created(api, "/statements", statement(key=unique("race")))
    path, id = f"/statements/{rec['id']}/corrections", UUID(rec["id"])
    version, winners, statuses = rec["version"], [], Counter[int]()
    collisions = count_store_collisions(api)
    started = time.monotonic()
    for r in range(rounds):
        texts = [f"round {r} writer {w}" for w in range(WRITERS)]
        answers = together(pool, [correction(api, path, t, version) for t in texts])
        statuses.update(a.status_code for a in answers)
        won = [(t, a) for t, a in zip(texts, answers, strict=True) if a.status_code == 200]
        assert len(won) == 1, (r, [a.status_code for a in answers])
        text, winner = won[0]
        assert winner.json()["version"] == version + 1
        for lost in answers:
            if lost is winner:
                continue
            assert lost.status_code == 409, (r, lost.status_code, lost.text)
            assert lost.headers["content-type"].startswith(PROBLEM)
            assert lost.json()["errors"][0]["field"] == "if-match"
            assert lost.headers["etag"] == f'"{version + 1}"'
        winners.append(text)
        version += 1
    elapsed = time.monotonic() - started
    # The event store: versions 1..rounds+1, each once; the corrections are the winners'.
    versions = stored_versions(api, id)
    assert contiguous(versions) and len(versions) == rounds + 1
    assert stored_corrections(api, id) == winners
    # The read model agrees: the last winner's location, at the last version.
    read = api.read(f"/statements/{id}")
    assert (read.json()["version"], read.json()["location"]) == (rounds + 1, winners[-1])
    assert statuses[500] == 0 and set(statuses) == {200, 409}
    figures(
        store=api.services.store.kind,
        group_commit=api.services.timeline.group is not None,
        rounds=rounds,
        writers=WRITERS,
        requests=sum(statuses.values()),
        winners=statuses[200],
        conflicts_409=statuses[409],
        # saves the store refused because the winner had stored that version (with group
        # commit: the group's save, then each of its writers' own): the race is real
        store_collisions=collisions[0],
        server_errors=statuses[500],
        stored_versions=len(versions),
        duplicate_versions=len(versions) - len(set(versions)),
        seconds=round(elapsed, 1),
    )


@modes(MODES)
def test_16_unconditional_writers_all_succeed_each_stored_once(
    racing_api: Api, pool: ThreadPoolExecutor, figures: Figures
) -> None:
    api = racing_api
    rec = created(api, "/statements", statement(key=unique("free-for-all")))
    path, id = f"/statements/{rec['id']}/corrections", UUID(rec["id"])
    rounds, acknowledged, statuses = 5, [], Counter[int]()
    collisions = count_store_collisions(api)
    for r in range(rounds):
        texts = [f"free {r} writer {w}" for w in range(WRITERS)]
        answers = together(pool, [correction(api, path, t, None) for t in texts])
        statuses.update(a.status_code for a in answers)
        assert [a.status_code for a in answers] == [200] * WRITERS, [a.text for a in answers]
        acknowledged += texts
        # Each answer names the version its own correction made: all different.
        assert len({a.json()["version"] for a in answers}) == WRITERS
    versions = stored_versions(api, id)
    assert contiguous(versions) and len(versions) == 1 + rounds * WRITERS
    stored = stored_corrections(api, id)
    assert sorted(stored) == sorted(acknowledged)  # every acknowledged write, once
    figures(
        store=api.services.store.kind,
        group_commit=api.services.timeline.group is not None,
        rounds=rounds,
        writers=WRITERS,
        acknowledged=len(acknowledged),
        stored_corrections=len(stored),
        # saves refused by the store and applied again on the reloaded record
        store_collisions_retried=collisions[0],
        duplicate_versions=len(versions) - len(set(versions)),
        server_errors=statuses[500],
    )


CREATES: dict[str, Callable[[str], list[dict[str, Any]]]] = {
    # A body with this key, then two other bodies with the same key.
    "/statements": lambda k: (
        [statement(key=k)] + [statement(key=k, quote=f"other words {i}") for i in (1, 2)]
    ),
    "/announcements": lambda k: (
        [announcement(key=k)] + [announcement(key=k, summary=f"other {i}") for i in (1, 2)]
    ),
    "/occurrences": lambda k: (
        [occurrence(key=k)] + [occurrence(key=k, title=f"Another call {i}") for i in (1, 2)]
    ),
    "/actors": lambda k: [
        {"id": k, "name": name, "kind": "person"} for name in ("Race", "Other 1", "Other 2")
    ],
    "/topics": lambda k: [{"id": k, "label": label} for label in ("Race", "Other 1", "Other 2")],
}


def _slug(text: str) -> str:
    return text.replace(" ", "-").lower()[:64]


@modes(MODES)
def test_the_same_post_sent_3_times_at_once_stores_one_event_and_answers_alike(
    racing_api: Api, pool: ThreadPoolExecutor, figures: Figures
) -> None:
    same_post_at_once(racing_api, pool, figures, trials=8)


@pytest.mark.chaos
@modes(MODES)
def test_the_same_post_sent_3_times_at_once_50_times_a_route(
    racing_api: Api, pool: ThreadPoolExecutor, figures: Figures
) -> None:
    same_post_at_once(racing_api, pool, figures, trials=50)


def same_post_at_once(api: Api, pool: ThreadPoolExecutor, figures: Figures, *, trials: int) -> None:
    timeline = api.services.timeline
    stats, statuses = Counter[str](), Counter[int]()
    for path, bodies in CREATES.items():
        for t in range(trials):
            same, other, _ = bodies(_slug(unique(f"dup{t}")))
            head = timeline.head_position()
            answers = together(pool, [partial(api.post, path, same)] * 3)
            statuses.update(a.status_code for a in answers)
            assert sorted(a.status_code for a in answers) == [200, 200, 201], [
                a.text for a in answers
            ]
            seen = [a.json() for a in answers]
            assert sorted(b["duplicate"] for b in seen) == [False, True, True]
            # Identical answers: the same record, version, position and recorded time.
            alike = {(b["id"], b["version"], b["position"], b["recorded_at"]) for b in seen}
            assert len(alike) == 1, seen
            # One event stored, the one the answers name (PostgreSQL's positions may
            # have gaps where the losers' inserts failed).
            assert stored_since(api, head) == [seen[0]["position"]]
            # The same key with another body: 409, nothing stored.
            conflict = api.post(path, other)
            statuses[conflict.status_code] += 1
            assert conflict.status_code == 409, conflict.text
            assert stored_since(api, head) == [seen[0]["position"]]
            stats["trials"] += 1
            stats["events_stored"] += len(stored_since(api, head))
    # Three different bodies under one key at once: one is stored, the other two are 409.
    for path, bodies in CREATES.items():
        for t in range(trials):
            head = timeline.head_position()
            calls = [partial(api.post, path, b) for b in bodies(_slug(unique(f"mix{t}")))]
            answers = together(pool, calls)
            statuses.update(a.status_code for a in answers)
            assert sorted(a.status_code for a in answers) == [201, 409, 409], [
                a.text for a in answers
            ]
            winner = next(a for a in answers if a.status_code == 201)
            assert stored_since(api, head) == [winner.json()["position"]]
            stats["mixed_trials"] += 1
    assert statuses[500] == 0
    figures(
        store=api.services.store.kind,
        group_commit=api.services.timeline.group is not None,
        **stats,
        requests=sum(statuses.values()),
        created_201=statuses[201],
        duplicates_200=statuses[200],
        conflicts_409=statuses[409],
        server_errors=statuses[500],
    )
