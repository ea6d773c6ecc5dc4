"""Reads from a PostgreSQL streaming replica (`TIMELINE_READ_DATABASE_URL`): one primary and
one replica made for this module (`initdb`, `pg_basebackup -R -X stream`), one seeded app
writing to the first and reading from the second. The scenarios run in order: the last
promotes the replica.

Replay is paused on the replica (`pg_wal_replay_pause()`) to make it trail at will."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from projections.postgres import PostgresView
from service.http.app import build_services, create_app
from service.settings import Settings
from service.store.database import StoreError
from service.store.replicas import Replica
from tests.clusters import Cluster, ClusterError, primary_and_replica
from tests.conftest import REQUIRE_POSTGRES
from tests.projections.workers_support import wait_until
from tests.service.conftest import KEY_NAMES, Api, statement, unique

pytestmark = [pytest.mark.replica, pytest.mark.postgres]
POSITION = "X-Timeline-Position"


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Cluster, Cluster]]:
    try:
        with primary_and_replica() as built:
            yield built
    except ClusterError as e:
        if REQUIRE_POSTGRES:
            pytest.fail(f"a primary and a replica are required: {e}")
        pytest.skip(f"no primary and replica: {e}")


@pytest.fixture(scope="module")
def api(pair: tuple[Cluster, Cluster]) -> Iterator[Api]:
    primary, replica = pair
    # Both hosts, as after a failover the one that takes writes may be either.
    both = f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{replica.port}/postgres"
    settings = Settings(
        database_url=both,
        read_database_url=replica.url,
        replica_max_lag=30.0,  # the scenarios that pause replay must keep the replica
        wait_timeout=2.0,
        pool_size=6,
    )
    services = build_services(settings)
    secrets = {scope: services.keys.create(name, scope) for scope, name in KEY_NAMES.items()}
    client = TestClient(create_app(settings, built=services))
    client.__enter__()  # the lifespan: the projection starts
    started = Api(client, services, secrets, both)
    started.seed()
    wait_until("the replica serves reads", lambda: the_replica(started).usable)
    yield started
    started.stop()


def the_replica(api: Api) -> Replica:
    assert api.services.replica is not None
    return api.services.replica[0]


def write(api: Api) -> tuple[str, int]:
    """A new statement: its id and position."""
    written = api.post("/statements", statement(quote=unique("a quote")))
    assert written.status_code == 201, written.text
    return written.json()["id"], int(written.json()["position"])


def replay(replica: Cluster, paused: bool) -> None:
    with replica.connect() as conn:
        conn.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")


def get(api: Api, path: str, **params: Any) -> tuple[int, int, Any]:
    """Status, X-Timeline-Position and body of a read."""
    answer = api.client.get(path, params=params)
    body = answer.json() if answer.headers.get("content-type", "").endswith("json") else None
    return answer.status_code, int(answer.headers.get(POSITION, -1)), body


def test_a_write_then_a_read_with_min_position_through_the_replica_finds_it(
    api: Api, pair: tuple[Cluster, Cluster]
) -> None:
    _, replica = pair
    # Written on the primary, read from the replica once it has replayed it.
    record, position = write(api)
    status, reached, body = get(api, f"/statements/{record}", min_position=position)
    assert (status, body["id"]) == (200, record)
    assert reached >= position
    # The wait looks at the replica's own copy: with its replay paused, a newer write
    # is not there, and the wait runs out as any other (503 with Retry-After).
    replay(replica, paused=True)
    try:
        _, newer = write(api)
        wait_until("the primary's view has it", lambda: api.services.reached.now() >= newer)
        answer = api.client.get("/timeline", params={"min_position": newer})
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "1"
    finally:
        replay(replica, paused=False)
    assert get(api, "/timeline", min_position=newer)[0] == 200


def test_without_min_position_the_position_trails_and_then_catches_up(
    api: Api, pair: tuple[Cluster, Cluster]
) -> None:
    _, replica = pair
    replay(replica, paused=True)
    try:
        _, position = write(api)
        wait_until("the primary's view has it", lambda: api.services.reached.now() >= position)
        # The replica answers with what it has, and says so: its read models, its log.
        status, trailing, _ = get(api, "/timeline")
        assert status == 200
        assert trailing < position
        status, head, page = get(api, "/events", after=position - 1)
        assert (status, page["events"]) == (200, [])
        assert head < position
    finally:
        replay(replica, paused=False)
    wait_until("the replica's answer catches up", lambda: get(api, "/timeline")[1] >= position)
    assert get(api, "/events", after=position - 1)[2]["events"][0]["position"] == position


def test_a_replica_further_behind_than_the_bound_is_skipped_for_the_primary(
    api: Api, pair: tuple[Cluster, Cluster]
) -> None:
    _, replica = pair
    copy = the_replica(api)
    copy.max_lag = 0.3  # TIMELINE_REPLICA_MAX_LAG
    replay(replica, paused=True)
    try:
        _, position = write(api)
        wait_until("the replica is skipped", lambda: not copy.usable)
        # Now the primary answers, with all it has.
        status, reached, _ = get(api, "/timeline")
        assert (status, reached >= position) == (200, True)
        assert "timeline_replica_serving 0.0" in api.client.get("/metrics").text
    finally:
        replay(replica, paused=False)
    wait_until("the replica serves again", lambda: copy.usable)
    copy.max_lag = 30.0


def test_a_query_the_replica_refuses_for_what_it_asks_does_not_skip_it(api: Api) -> None:
    copy = the_replica(api)
    assert copy.usable
    # Asked again of the primary, which refuses it too; the replica still serves.
    with pytest.raises(psycopg.errors.UndefinedColumn):
        copy.view().query("SELECT no_such_column FROM rm_registry")
    assert copy.usable


def test_with_the_replica_stopped_reads_still_answer_from_the_primary(
    api: Api, pair: tuple[Cluster, Cluster]
) -> None:
    _, replica = pair
    record, position = write(api)
    assert get(api, f"/statements/{record}", min_position=position)[0] == 200
    replica.stop("immediate")
    try:
        # At once, before the replica's check has noticed, and after.
        for _ in range(2):
            for path, waits in (
                ("/timeline", "min_position"),
                (f"/statements/{record}", "min_position"),
                ("/timeline/counts", "min_position"),
                ("/changes", "to_position"),
                ("/events", "after"),
            ):
                status, reached, _ = get(api, path, **{waits: position})
                assert (path, status) == (path, 200)
                assert reached >= position
            wait_until("the replica is skipped", lambda: not the_replica(api).usable)
    finally:
        replica.start()
    wait_until("the replica serves again", lambda: the_replica(api).usable)


def test_a_long_read_on_the_replica_survives_vacuum_on_the_primary(
    api: Api, pair: tuple[Cluster, Cluster]
) -> None:
    primary, replica = pair
    record, position = write(api)
    assert get(api, f"/statements/{record}", min_position=position)[0] == 200
    view = api.services.models.view()
    assert isinstance(view, PostgresView)
    rows = f"{view.prefix}_rows"
    with replica.connect(autocommit=False) as reader:
        # A long read as of this position: one snapshot, read twice.
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        counted = f"SELECT count(*) FROM {rows} WHERE from_pos <= %s"
        before = reader.execute(counted, (position,)).fetchone()
        snapshot = reader.execute("SELECT txid_snapshot_xmin(txid_current_snapshot())").fetchone()
        assert before is not None and snapshot is not None
        with primary.connect() as conn:
            wait_until(
                "the primary hears which rows the replica's read needs",
                lambda: feedback_covers(conn, snapshot[0]),
            )
            # Corrections close row versions: dead to every read but the replica's.
            for n in range(5):
                fixed = api.post(
                    f"/statements/{record}/corrections",
                    {"changes": {"quote": unique(f"fix {n}")}, "reason": "r"},
                )
                assert fixed.status_code == 200, fixed.text
            wait_until("projected", lambda: api.services.reached.now() >= api.position)
            conn.execute(f"VACUUM {rows}")
            lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
        assert lsn is not None
        wait_until("the replica has replayed the vacuum", lambda: replayed(replica, lsn[0]))
        # Had the vacuum removed what the read sees, the replica would have cancelled it.
        assert reader.execute(counted, (position,)).fetchone() == before
        reader.execute("COMMIT")


def feedback_covers(primary: psycopg.Connection[Any], xmin: int) -> bool:
    found = primary.execute(
        "SELECT backend_xmin::text::bigint FROM pg_stat_replication WHERE backend_xmin IS NOT NULL"
    ).fetchone()
    return found is not None and int(found[0]) <= xmin


def replayed(replica: Cluster, lsn: str) -> bool:
    with replica.connect() as conn:
        row = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()
    return row is not None and bool(row[0])


def test_a_promoted_replica_takes_the_writes_without_a_restart(
    api: Api, pair: tuple[Cluster, Cluster]
) -> None:
    primary, replica = pair
    record, position = write(api)
    assert get(api, f"/statements/{record}", min_position=position)[0] == 200
    primary.stop("immediate")
    # The primary lost: reads answer from the replica, writes are refused (503, no 500).
    status, reached, body = get(api, f"/statements/{record}")
    assert (status, body["id"], reached >= position) == (200, record, True)
    refused = api.post("/statements", statement(quote=unique()))
    assert refused.status_code == 503, refused.text
    replica.promote()

    def taken() -> bool:
        answer = api.post("/statements", statement(quote=unique()))
        assert answer.status_code in (201, 503), answer.text
        return answer.status_code == 201

    # The URL lists both hosts: the sessions find the one that takes writes now.
    wait_until("a write is taken by the promoted replica", taken)
    assert api.position > position
    # The projection goes on there, from the position its copy had.
    assert get(api, "/timeline", min_position=api.position)[0] == 200
    assert get(api, f"/statements/{record}")[0] == 200


def test_a_read_url_needs_a_postgresql_primary() -> None:
    settings = Settings(database_url="memory://", read_database_url="postgresql://127.0.0.1/x")
    with pytest.raises(StoreError, match="TIMELINE_READ_DATABASE_URL"):
        build_services(settings)
