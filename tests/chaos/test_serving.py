"""The serving path under database faults: PostgreSQL stopped under a steady load, the
pool exhausted behind a held lock, a runaway query.

The service runs as its own uvicorn process against a throwaway cluster (so that its
sessions can be counted in `pg_stat_activity` and the server stopped at will). Every
answer is kept; a failure must be a `503` problem with `Retry-After`, never a `500`, and
never later than the client's timeout.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.writers import writing_as
from service.http.app import build_services
from service.settings import Settings
from service.store.database import ServingDatastore, open_timeline, parse_url, share
from service.store.readmodels import open_read_models
from tests.chaos.conftest import Figures
from tests.chaos.support import (
    AUTHOR,
    Answer,
    Load,
    api_server,
    health_probe,
    improper_failures,
    latency_figures,
    make_key,
    ms,
    server_errors,
    sessions_of,
    statement,
    write_model,
)
from tests.clusters import Cluster
from tests.projections.workers_support import seed

OUTAGE = 5.0  # seconds PostgreSQL is away
RECOVERY = 2.0  # seconds within which the service must answer again
CLIENT_TIMEOUT = 5.0


def _seeded(url: str) -> str:
    """Actors, topics and a few statements, in the read models too; one statement's id."""
    with write_model(url) as app:
        seed(app)
        with writing_as(AUTHOR):
            written = [app.record("statement", statement(f"seed-{n}")) for n in range(5)]
        models = open_read_models(parse_url(url), app)
        try:
            models.catch_up()
        finally:
            models.close()
        return str(written[0].id)


# 1. PostgreSQL stopped under load -------------------------------------------------------


# `make test` stops the server 2 s and allows 5 s to recover on a busy machine; `make
# chaos` stops it 5 s and wants every kind of request answered again within 2 s.
@pytest.mark.parametrize(
    ("outage", "recovery"),
    [(2.0, 5.0), pytest.param(OUTAGE, RECOVERY, marks=pytest.mark.chaos)],
    ids=["2s", "5s"],
)
def test_while_postgres_is_stopped_every_failure_is_a_503_and_service_resumes_within_2s(
    cluster: Cluster, tmp_path: Path, figures: Figures, outage: float, recovery: float
) -> None:
    url = cluster.url
    record = _seeded(url)
    auth = {"Authorization": f"Bearer {make_key(url, 'load-writer')}"}
    ops: dict[str, Any] = {
        "timeline": lambda c, _: c.get("/timeline", params={"limit": 20}),
        "record": lambda c, _: c.get(f"/statements/{record}"),
        "events": lambda c, _: c.get("/events", params={"limit": 50}),
        "actors": lambda c, _: c.get("/actors"),
        "projections": lambda c, _: c.get("/projections"),
        "write": lambda c, tag: c.post(
            "/statements", json=statement(f"load-{tag}-{uuid.uuid4().hex[:6]}"), headers=auth
        ),
    }
    health: list[Answer] = []
    with api_server(
        url, tmp_path, "chaos-api", run_projections=True, env={"TIMELINE_POOL_SIZE": "5"}
    ) as api:
        load = Load(api.base, ops, threads=4, pause=0.02, client_timeout=CLIENT_TIMEOUT).start()
        probe = Load(api.base, {"health": lambda c, _: c.get("/health")}, threads=1, pause=0.1)
        probe.start()
        try:
            time.sleep(3)  # steady state
            down = time.monotonic()
            cluster.stop("immediate")
            time.sleep(max(0.0, outage - (time.monotonic() - down)))
            cluster.start()
            up = time.monotonic()
            time.sleep(recovery + 3)
        finally:  # stopped even when the cluster fails to come back
            answers = load.stop()
            health = probe.stop()
        # The read models (projected in the service) follow again: a write made now is
        # read back, and the service is ready.
        with httpx.Client(base_url=api.base, timeout=10) as client:
            written = client.post("/statements", json=statement("after-outage"), headers=auth)
            assert written.status_code == 201, written.text
            position = written.json()["position"]
            own = client.get(
                f"/statements/{written.json()['id']}", params={"min_position": position}
            )
            ready = client.get("/ready")
        logs = api.log_text()
    failures = [a for a in answers if not a.ok]
    unanswered = [a for a in answers if a.status is None]
    improper = improper_failures(answers)
    # When each kind of request first succeeded again after the server accepted connections.
    recovered = {
        name: min(
            (a.ended for a in answers if a.op == name and a.ok and a.ended > up), default=up + 60
        )
        - up
        for name in ops
    }
    # Every write that was acknowledged is stored.
    acknowledged = [a for a in answers if a.op == "write" and a.status == 201]
    ids = [httpx.Response(201, text=a.body).json()["id"] for a in acknowledged]
    with cluster.connect() as conn:
        stored = {
            str(r[0])
            for r in conn.execute(
                "SELECT originator_id FROM timeline_events WHERE originator_id = ANY(%s::uuid[])",
                (ids,),
            ).fetchall()
        }
    failed = [a for a in failures if a.status == 503]
    figures(  # before the checks: a failing run's figures are kept too
        outage_s=round(up - down, 2),
        requests=len(answers),
        answered_503=len(failed),
        answered_otherwise=len(improper),
        unanswered=len(unanswered),
        **latency_figures("during_outage_503", failed),
        **latency_figures("ok", [a for a in answers if a.ok]),
        recovery_max_ms=ms(max(recovered.values())),
        recovery_ms={k: ms(v) for k, v in recovered.items()},
        health_max_ms=ms(max(a.elapsed for a in health)),
        writes_acknowledged=len(ids),
        writes_lost=len(set(ids) - stored),
    )
    # Every failure is a 503 problem with Retry-After; none hung past the client timeout.
    assert unanswered == [], unanswered[:3]
    assert improper == [], improper[:3]
    assert server_errors(logs) == [], server_errors(logs)[:5]
    # The outage was felt, and only while it lasted (plus the recovery bound).
    assert [a for a in failures if down <= a.ended <= up + recovery], "no request failed"
    before = [a for a in answers if a.ended < down]
    assert before and all(a.ok for a in before), [a for a in before if not a.ok][:3]
    late = [a for a in answers if a.started > up + recovery]
    assert late and all(a.ok for a in late), [a for a in late if not a.ok][:3]
    # Each kind of request answers again within the bound of the server accepting
    # connections.
    assert max(recovered.values()) <= recovery, recovered
    # /health never needed the database.
    assert health and all(a.ok for a in health)
    assert set(ids) <= stored
    # The read models (projected in the service) follow again: a write made after the
    # outage is read back, and the service is ready.
    assert own.status_code == 200, own.text
    assert ready.status_code == 200, ready.text


def test_after_a_restart_with_no_traffic_stale_connections_cost_at_most_one_request_a_pool(
    cluster: Cluster, tmp_path: Path, figures: Figures
) -> None:
    url = cluster.url
    record = _seeded(url)
    auth = {"Authorization": f"Bearer {make_key(url, 'idle-writer')}"}
    with (
        api_server(url, tmp_path, "chaos-idle", env={"TIMELINE_POOL_SIZE": "5"}) as api,
        httpx.Client(base_url=api.base, timeout=CLIENT_TIMEOUT) as client,
    ):
        # Fill both pools with connections, then restart the server while nobody asks.
        for n in range(20):
            assert client.get(f"/statements/{record}").status_code == 200
            written = client.post("/statements", json=statement(f"idle-{n}"), headers=auth)
            assert written.status_code == 201, written.text
        cluster.stop("immediate")
        cluster.start()
        up = time.monotonic()
        # One request after another: every pooled connection is stale now.
        answers: list[tuple[str, int, float]] = []
        for n in range(20):
            requests = [
                ("read", client.build_request("GET", f"/statements/{record}")),
                (
                    "write",
                    client.build_request(
                        "POST", "/statements", json=statement(f"after-{n}"), headers=auth
                    ),
                ),
            ]
            for op, request in requests:
                started = time.monotonic()
                r = client.send(request)
                answers.append((op, r.status_code, time.monotonic() - started))
                if r.status_code != 503:
                    assert r.status_code in (200, 201), r.text
                else:
                    assert r.headers.get("retry-after"), r.headers
        recovered = time.monotonic() - up
        logs = api.log_text()
    failed = [a for a in answers if a[1] == 503]
    # The read models' pool and the events' pool each lose at most one request to a
    # stale connection; the sweep that follows clears the rest.
    assert len(failed) <= 2, failed
    assert all(status in (200, 201) for _, status, _ in answers[4:]), answers[:6]
    assert server_errors(logs) == []
    figures(
        stale_connections_failed_requests=len(failed),
        failed=[(op, ms(t)) for op, _, t in failed],
        forty_requests_after_restart_s=round(recovered, 2),
    )


# 2. Pool exhaustion behind a held lock ---------------------------------------------------


# `make test` holds the lock 3 s and lets /health take up to 1 s on a busy machine;
# `make chaos` holds it 10 s and wants /health under 50 ms throughout.
@pytest.mark.parametrize(
    ("hold", "health_bound"),
    [(3.0, 1.0), pytest.param(10.0, 0.05, marks=pytest.mark.chaos)],
    ids=["3s", "10s"],
)
def test_pool_exhaustion_behind_a_held_lock_answers_503_within_2s_and_health_stays_fast(
    cluster: Cluster, tmp_path: Path, figures: Figures, hold: float, health_bound: float
) -> None:
    url = cluster.url
    _seeded(url)
    auth = {"Authorization": f"Bearer {make_key(url, 'exhaust-writer')}"}
    pool_size = 5  # all of the process: 1 for the events, 2 for the read models, 2 of its own
    events, views = share(pool_size)
    name = "chaos-exhaust"
    ops: dict[str, Any] = {
        "write": lambda c, tag: c.post(
            "/statements", json=statement(f"held-{tag}-{uuid.uuid4().hex[:6]}"), headers=auth
        ),
        "read": lambda c, _: c.get("/timeline", params={"limit": 5}),
    }
    with (
        api_server(url, tmp_path, name, env={"TIMELINE_POOL_SIZE": str(pool_size)}) as api,
        cluster.connect() as watcher,
    ):
        # Warm up: every pool has connections, reads and writes pass.
        warm = Load(api.base, ops, threads=4, pause=0.01).start()
        time.sleep(1.0)
        assert all(a.ok for a in warm.stop())
        baseline = sessions_of(watcher, name)
        # Another session takes the events table's write lock (as a writer's insert does)
        # and an exclusive lock on the timeline's rows (as maintenance would).
        holder = cluster.connect(autocommit=False)
        # 5x both pools in concurrent requests (readers hold their connections while they
        # wait), /health probed meanwhile.
        load = Load(api.base, ops, threads=5 * (events + views), pause=0.0)
        load.client_timeout = 10
        try:
            holder.execute("LOCK TABLE timeline_events IN EXCLUSIVE MODE")
            holder.execute("LOCK TABLE rm_timeline_g1_rows IN ACCESS EXCLUSIVE MODE")
            held = time.monotonic()
            load.start()
            with health_probe(api.base, hold - 1) as health:
                time.sleep((hold - 1) / 2)
                during = sessions_of(watcher, name)
            time.sleep(max(0.0, hold - (time.monotonic() - held)))
        finally:  # the load stopped and the locks released, whatever happened
            answers = load.stop()
            holder.rollback()
            holder.close()
        released = time.monotonic()
        # Once the locks are gone, reads and writes pass again at once.
        with httpx.Client(base_url=api.base, timeout=5) as client:
            after = client.post("/statements", json=statement("after-lock"), headers=auth)
            read = client.get("/timeline", params={"limit": 5})
        resumed = time.monotonic() - released
        assert (after.status_code, read.status_code) == (201, 200), (after.text, read.text)
        # No connection leaks: no more sessions than the process may hold, none of them
        # in a transaction, running, or waiting for a lock.
        time.sleep(1.0)
        settled = sessions_of(watcher, name)
        waiting = watcher.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND a.application_name = %s",
            (name,),
        ).fetchone()
        logs = api.log_text()
    in_hold = [a for a in answers if a.started < released]
    reasons = Counter(
        httpx.Response(503, text=a.body).json()["detail"] for a in in_hold if a.status == 503
    )
    figures(  # before the checks: a failing run's figures are kept too
        pool_size=pool_size,
        hold_s=hold,
        concurrency=5 * (events + views),
        requests_in_hold=len(in_hold),
        answered_503=sum(a.status == 503 for a in in_hold),
        **latency_figures("read_503", [a for a in in_hold if a.op == "read"]),
        **latency_figures("write_503", [a for a in in_hold if a.op == "write"]),
        **latency_figures("health", health),
        resumed_ms=ms(resumed),
        sessions_before=baseline,
        sessions_during=during,
        sessions_after=settled,
        reasons=dict(reasons),
    )
    assert {a.op for a in in_hold} == {"read", "write"}
    assert all(a.status == 503 for a in in_hold), {a.status for a in in_hold}
    assert improper_failures(in_hold) == []
    assert max(a.elapsed for a in in_hold) < 2.0, latency_figures("held", in_hold)
    assert max(a.elapsed for a in health) < health_bound, latency_figures("health", health)
    assert all(a.ok for a in health) and len(health) >= 10
    assert any("no database connection was free" in r for r in reasons), reasons  # exhausted
    assert max(sum(during.values()), sum(settled.values())) <= pool_size, (during, settled)
    assert settled.get("idle in transaction", 0) == 0 and settled.get("active", 0) == 0, settled
    assert waiting is not None and waiting[0] == 0
    assert server_errors(logs) == []


# 3. A runaway query --------------------------------------------------------------------


def test_a_runaway_query_answers_503_at_the_statement_timeout_and_frees_its_worker(
    cluster: Cluster, tmp_path: Path, figures: Figures
) -> None:
    url = cluster.url
    _seeded(url)
    name = "chaos-runaway"
    timeout = 1.0
    env = {"TIMELINE_POOL_SIZE": "5", "TIMELINE_STATEMENT_TIMEOUT": str(timeout)}
    with api_server(url, tmp_path, name, env=env) as api, cluster.connect() as admin:
        client = httpx.Client(base_url=api.base, timeout=30)
        assert client.get("/timeline").status_code == 200
        # The timeline's rows become a view that sleeps a minute per row: every query on
        # them runs away.
        admin.execute(
            "CREATE FUNCTION crawl() RETURNS boolean LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(60); RETURN true; END $$"
        )
        admin.execute("ALTER TABLE rm_timeline_g1_rows RENAME TO rm_timeline_g1_rows_real")
        admin.execute(
            "CREATE VIEW rm_timeline_g1_rows AS SELECT * FROM rm_timeline_g1_rows_real "
            "WHERE crawl()"
        )
        # Three times the read models' pool in runaway reads at once.
        answers: list[Answer] = []
        lock = threading.Lock()

        def runaway() -> None:
            started = time.monotonic()
            with httpx.Client(base_url=api.base, timeout=30) as c:
                r = c.get("/timeline", params={"limit": 5})
            with lock:
                answers.append(
                    Answer(
                        "runaway",
                        started,
                        time.monotonic() - started,
                        r.status_code,
                        r.headers.get("retry-after"),
                        r.headers.get("content-type"),
                        r.text,
                    )
                )

        threads = [threading.Thread(target=runaway) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        # The database runs none of them any more, and the service answers other reads
        # (the event feed: every read model reads the rows made to crawl).
        running = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
            "AND state = 'active'",
            (name,),
        ).fetchone()
        started = time.monotonic()
        other = client.get("/events", params={"limit": 5})
        other_ms = ms(time.monotonic() - started)
        # Put the table back: the same read answers again.
        admin.execute("DROP VIEW rm_timeline_g1_rows")
        admin.execute("ALTER TABLE rm_timeline_g1_rows_real RENAME TO rm_timeline_g1_rows")
        again = client.get("/timeline", params={"limit": 5})
        settled = sessions_of(admin, name)
        client.close()
        logs = api.log_text()
    assert len(answers) == 6
    assert improper_failures(answers) == [] and all(a.status == 503 for a in answers)
    cancelled = [a for a in answers if "statement timeout" in a.body]
    assert cancelled, [a.body for a in answers]
    # Each runaway read was cut at the timeout; those that waited for a connection
    # behind them got theirs within another timeout.
    assert max(a.elapsed for a in cancelled) < timeout + 1.0
    assert max(a.elapsed for a in answers) < 2 * timeout + 1.0
    assert running is not None and running[0] == 0
    assert other.status_code == 200 and again.status_code == 200, (other.text, again.text)
    assert settled.get("active", 0) == 0 and settled.get("idle in transaction", 0) == 0
    assert server_errors(logs) == []
    figures(
        statement_timeout_s=timeout,
        runaway_requests=len(answers),
        cut_by_statement_timeout=len(cancelled),
        **latency_figures("runaway_503", answers),
        other_read_after_ms=other_ms,
        backends_still_running=0,
    )


# 4. The bounds are set on every connection a serving process uses ----------------------


@pytest.mark.parametrize("statement_timeout", [2.5])
def test_every_connection_of_a_serving_process_has_the_statement_timeout(
    statement_timeout: float, postgres_database: str
) -> None:
    url = f"{postgres_database}?schema=bounds_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        database_url=url, statement_timeout=statement_timeout, pool_timeout=0.7, pool_size=5
    )
    s = build_services(settings)
    try:
        datastore: Any = s.timeline.factory.datastore  # type: ignore[attr-defined]
        with datastore.get_connection() as conn:
            events = conn.execute("SHOW statement_timeout").fetchone()["statement_timeout"]
            # The events table's lock is waited for 0.5 s (the library's own statement).
            recorder: Any = s.timeline.recorder
            lock = recorder.lock_table_statements[0].as_string(conn)
        assert lock == "SET LOCAL lock_timeout = '0.5s'"
        view: Any = s.models.view()
        (views,) = view.query("SHOW statement_timeout")[0]
        assert (events, views) == ("2500ms", "2500ms")
        assert datastore.pool.timeout == view.pool.timeout == 0.7
    finally:
        s.models.close()
        s.timeline.close()
    # Workers and commands keep the library's patient defaults (long batches, retries).
    worker = open_timeline(parse_url(url))
    try:
        plain: Any = worker.factory.datastore  # type: ignore[attr-defined]
        assert not isinstance(plain, ServingDatastore)
        with plain.get_connection() as conn:
            assert conn.execute("SHOW statement_timeout").fetchone()["statement_timeout"] == "0"
        assert plain.lock_timeout == 5
    finally:
        worker.close()
