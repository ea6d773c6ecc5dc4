"""The `timeline` command line."""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any, Literal, NoReturn, cast

import psycopg
import typer

from domain.application import Timeline
from domain.errors import TimelineError
from domain.records import RecordKind
from domain.when import parse_when
from domain.writers import Author
from drafting.scoring import score
from drafting.text import MAX_CHARS, TextRefused
from projections.view import Entity, TimelineQuery, TimelineView
from service.files.backfill import (
    BATCH_SIZE,
    GZIP_MAGIC,
    REVIEW_FILE,
    Report,
    load,
    load_files,
    new_batch_id,
    open_lines,
    seed_files,
)
from service.files.backup import (
    BackupRefused,
    export_events,
    open_backup,
    read_backup,
    restore_events,
)
from service.files.drafts import draft, published, source
from service.files.replay import (
    all_items,
    backfill_lines,
    items_csv,
    position_for,
    replay,
    timelinejs,
    who_said,
    write_answer,
)
from service.http.metrics import MULTIPROCESS_DIR
from service.process import tune_gc
from service.settings import Settings
from service.store.database import (
    Store,
    StoreError,
    StoreUnreachable,
    capacity_warning,
    open_timeline,
    parse_url,
)
from service.store.keys import KeyProblem, KeyStore, open_keys
from service.store.keys import Scope as Scope
from service.store.readmodels import open_read_models

# The closed sets the options take, written as types so that `--help` shows them as choices
# (a test holds each to the set the code checks: FORMATS, EXPORTS, QUESTIONS). A key's
# scope and a record's kind are the types the keys and the domain write them as.
Format = Literal["json", "ndjson", "csv"]
Kind = RecordKind
ReplayModel = Literal["timeline", "who-said-what"]
Export = Literal["ndjson", "csv", "timelinejs", "events"]

# How uvicorn serves the API (`serve`, `demo`): its HTTP parser and event loop in C
# (decision 024).
SERVER: dict[str, Any] = {"http": "httptools", "loop": "uvloop"}

app = typer.Typer(
    help="Geopolitical Timeline: an event-sourced timeline of world politics.",
    no_args_is_help=True,
    add_completion=False,
)


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(2)


def _settings() -> Settings:
    """The settings from the environment, or a clear error and exit status 2."""
    try:
        return Settings()
    except ValueError as e:
        _fail(str(e))


def _open() -> tuple[Store, Timeline]:
    """The configured store and its write model, or a clear error and exit status 2."""
    settings = Settings()
    try:
        store = parse_url(settings.database_url, pool_size=settings.pool_size)
        return store, open_timeline(store)
    except StoreError as e:
        _fail(str(e))


@app.command()
def seed(writer: Annotated[str, typer.Option(help="recorded as the writer")] = "seed") -> None:
    """Load the bundled seed data (idempotent: a second load adds nothing)."""
    _, timeline = _open()
    _print_report(load_files(timeline, seed_files(), Author(writer)))


@app.command()
def backfill(
    files: Annotated[list[str], typer.Argument(help="NDJSON files (gzip too), or - for stdin")],
    dry_run: Annotated[bool, typer.Option(help="check every line, write nothing")] = False,
    atomic: Annotated[bool, typer.Option(help="all lines or none")] = False,
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="lines per transaction")
    ] = BATCH_SIZE,
    report: Annotated[
        Path | None, typer.Option(help="write the JSON report here (a summary is printed)")
    ] = None,
    api: Annotated[str | None, typer.Option(help="import through this service's API")] = None,
    key: Annotated[str | None, typer.Option(help="an admin key, with --api")] = None,
    writer: Annotated[str, typer.Option(help="recorded as the writer")] = "backfill",
) -> None:
    """Import NDJSON history in batches; the report says what was accepted, what was
    already there, and each rejected line with its reason."""
    for name in files:
        if name != "-" and not Path(name).is_file():
            _fail(f"no file {name}")
    if api is not None:
        result = _backfill_api(api, key, files, dry_run=dry_run, atomic=atomic)
    else:
        result = _backfill_here(
            files, writer, dry_run=dry_run, atomic=atomic, batch_size=batch_size
        )
    if report is not None:
        report.write_text(json.dumps(result, indent=2) + "\n")
        typer.echo(_summary(result, report))
    else:
        typer.echo(json.dumps(result, indent=2))
    if result["rejected"]:
        raise typer.Exit(1)


def _summary(result: dict[str, Any], report: Path) -> str:
    rejected = len(result["rejected"]) + result.get("rejected_omitted", 0)
    dry = " (dry run: nothing written)" if result.get("dry_run") else ""
    return (
        f"accepted {result['accepted']}, duplicates {result['duplicates']}, "
        f"rejected {rejected}{dry}; the report, with each rejected line: {report}"
    )


def _backfill_here(
    files: list[str], writer: str, *, dry_run: bool, atomic: bool, batch_size: int
) -> dict[str, object]:
    _, timeline = _open()
    by = Author(writer, batch_id=new_batch_id())
    total = Report(batch_id=by.batch_id)
    with progress_bar(files) as advance:
        for name in files:
            lines = open_lines(name, sys.stdin.buffer)
            total.add(
                load(
                    timeline,
                    lines,
                    by,
                    source=Path(name).name,
                    batch_size=batch_size,
                    atomic=atomic,
                    dry_run=dry_run,
                    progress=advance,
                )
            )
    timeline.close()
    return {**total.as_dict(), "dry_run": dry_run}


def _backfill_api(
    api: str, key: str | None, files: list[str], *, dry_run: bool, atomic: bool
) -> dict[str, object]:
    import httpx

    if not key:
        _fail("--api needs --key (an admin key)")
    out: dict[str, object] = {}
    for name in files:
        source = sys.stdin.buffer if name == "-" else open(name, "rb")  # noqa: SIM115
        with source:
            # A gzip file is sent as it is, and said to be gzip: the service inflates it.
            gzipped = isinstance(source, io.BufferedReader) and source.peek(2)[:2] == GZIP_MAGIC
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
            if gzipped:
                headers["Content-Encoding"] = "gzip"
            try:
                response = httpx.post(
                    f"{api.rstrip('/')}/admin/backfill",
                    params={"dry_run": str(dry_run).lower(), "atomic": str(atomic).lower()},
                    content=iter(functools.partial(source.read, 1 << 16), b""),
                    timeout=httpx.Timeout(30.0, read=3600.0),
                    headers=headers,
                )
            except (httpx.HTTPError, httpx.InvalidURL) as e:
                _fail(f"{name}: cannot reach the service at {api}: {e}")
        if response.status_code != 200:
            _fail(f"{name}: {response.status_code} {response.text[:500]}")
        out = response.json()
    return out


@contextmanager
def progress_bar(files: list[str]) -> Iterator[Callable[[int], None]]:
    """A bar with rate and ETA on a terminal; a line every few seconds otherwise."""
    total = sum(_count_lines(n) for n in files if n != "-") or None
    if sys.stderr.isatty():
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("backfill"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task("lines", total=total, rate="")
            started = time.monotonic()

            def advance(done: int) -> None:
                bar.advance(task, done)
                elapsed = time.monotonic() - started
                rate = bar.tasks[0].completed / elapsed if elapsed else 0
                bar.update(task, rate=f"{rate:,.0f} lines/s")

            yield advance
        return
    state = {"done": 0, "said": time.monotonic(), "started": time.monotonic()}

    def tell(done: int) -> None:
        state["done"] += done
        now = time.monotonic()
        if now - state["said"] >= 5:
            state["said"] = now
            rate = state["done"] / (now - state["started"])
            of = f"/{total}" if total else ""
            typer.echo(f"backfill: {state['done']:.0f}{of} lines, {rate:,.0f} lines/s", err=True)

    yield tell


def _count_lines(name: str) -> int:
    return sum(1 for _ in open_lines(name))


@app.command()
def project(
    batch_size: Annotated[
        int | None, typer.Option(min=1, max=100_000, help="default: TIMELINE_BATCH_SIZE")
    ] = None,
    heartbeat: Annotated[
        Path | None,
        typer.Option(help="touched while this worker leads or stands by: a healthcheck's file"),
    ] = None,
) -> None:
    """Run the projection workers until stopped (a second worker waits as hot standby)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    opened = _open_when_reachable(stop)
    if opened is None:
        return  # stopped while the database was away
    store, timeline = opened
    _warn_capacity(store, Settings().pool_size)
    models = open_read_models(store, timeline)
    models.batch_size = batch_size or Settings().batch_size
    if heartbeat is not None:
        models.on_beat.append(heartbeat.touch)
    signal.signal(signal.SIGTERM, lambda *_: models.stop())
    if stop.is_set():  # asked to stop while the store was being opened
        models.close()
        return
    typer.echo(f"projecting the timeline from {store.kind}", err=True)
    try:
        models.run_forever()
    except KeyboardInterrupt:
        models.stop()


@app.command()
def rebuild(
    beside: Annotated[bool, typer.Option(help="build next to the live one, then switch")] = False,
) -> None:
    """Rebuild the timeline's view from position 0: every answer the API reads."""
    store, timeline = _open()
    models = open_read_models(store, timeline)
    if beside:
        applied = models.rebuild_beside()
    else:
        lease = models.make_lease()
        if not lease.acquire():
            _fail("a worker is running the projection: stop it, or rebuild with --beside")
        try:
            applied = models.rebuild()
        finally:
            lease.release()
    typer.echo(f"timeline: rebuilt from {applied} events, at position {models.view().position()}")


keys = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
app.add_typer(keys, name="keys")


@contextmanager
def _key_store() -> Iterator[KeyStore]:
    """The configured store's keys, and the store closed after."""
    store, timeline = _open()
    try:
        yield open_keys(store, timeline)
    finally:
        timeline.close()


@keys.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="recorded as the writer of what the key writes")],
    scope: Annotated[Scope, typer.Option(help="what it may do: read < write < admin")] = "write",
) -> None:
    """Make a key and print it once; only its hash is stored."""
    try:
        with _key_store() as key_store:
            secret = key_store.create(name, scope)
    except KeyProblem as e:
        _fail(str(e))
    typer.echo(secret)


@keys.command("list")
def keys_list() -> None:
    """Names, scopes and dates of the keys (never the keys)."""
    with _key_store() as key_store:
        listed = key_store.list()
    for key in listed:
        state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
        typer.echo(f"{key.name}\t{key.scope}\tcreated {key.created_at}\t{state}")


@keys.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="the key's name")]) -> None:
    """Revoke a key by name: it stops working at once."""
    try:
        with _key_store() as key_store:
            key_store.revoke(name)
    except KeyProblem as e:
        _fail(str(e))
    typer.echo(f"revoked {name}")


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="the address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="the port to listen on")] = 8000,
) -> None:
    """Run the service on the embedded store with the seed data loaded (its settings,
    TIMELINE_CORS_ORIGINS among them, as for `serve`)."""
    settings = _settings()
    listener = _listen(host, port)  # before anything is printed or minted
    with listener:  # closed however the demo ends
        _demo(settings, listener, host, port)


def _demo(settings: Settings, listener: socket.socket, host: str, port: int) -> None:
    import uvicorn

    from service.http.app import build_services, create_app

    if not os.environ.get("TIMELINE_DATABASE_URL"):
        typer.echo(f"store: {settings.database_url}", err=True)
    try:
        services = build_services(settings)
    except StoreError as e:
        _fail(str(e))
    report = load_files(services.timeline, seed_files(), Author("seed"))
    review = load_files(services.timeline, [REVIEW_FILE], Author("demo-review"))
    services.models.catch_up()  # answer with the seed from the first request
    secret = services.keys.create(f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}", "write")
    base = f"http://{host}:{port}"
    typer.echo(
        f"seed: {report.accepted} new, {report.duplicates} already stored; "
        f"its review: {review.accepted} new, {review.duplicates} already stored\n"
        f"the page: {base}/\n"
        f"who said what about negotiations: {base}/topics/negotiations/who-said-what\n"
        f"the timeline since the 2014 annexation: {base}/timeline?since=2014-03-01\n"
        f"API docs: {base}/schema\n"
        f"a write key (shown once): {secret}"
    )
    config = uvicorn.Config(
        create_app(settings, built=services),
        log_level="warning",
        timeout_graceful_shutdown=10,
        **SERVER,
    )
    uvicorn.Server(config).run(sockets=[listener])


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to the address, or a clear error and exit status 2 if it is taken."""
    try:
        address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError as e:
        _fail(f"cannot listen on {host}:{port}: {e}")
    listener = socket.socket(address[0], socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address[4])
    except OSError as e:
        listener.close()
        _fail(f"cannot listen on {host}:{port}: {e.strerror} (is the demo running already?)")
    return listener


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="the address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="the port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="processes serving the API")] = 1,
) -> None:
    """Serve the API for production (projections run in `timeline project`).

    Settings come from TIMELINE_* variables (the README's table); among them
    TIMELINE_CORS_ORIGINS, the origins whose scripts may call the API from a browser
    (comma-separated, like https://a.example,http://localhost:3000; none by default:
    no CORS). Answers are gzipped when the client accepts it (docs/http.md)."""
    import uvicorn

    settings = _settings()
    try:
        store = parse_url(settings.database_url, pool_size=settings.pool_size)
    except StoreError as e:
        _fail(str(e))
    _warn_capacity(store, workers * settings.pool_size)
    with _metrics_shared(workers):
        uvicorn.run(
            "service.http.asgi:app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            timeout_graceful_shutdown=30,
            access_log=False,
            **SERVER,
        )


@contextmanager
def _metrics_shared(workers: int) -> Iterator[None]:
    """With many workers, a fresh directory where each writes its metrics, so that any of
    them answers `/metrics` for all (read when the workers import prometheus_client)."""
    if workers == 1:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="timeline-metrics-") as shared:
        os.environ[MULTIPROCESS_DIR] = shared
        try:
            yield
        finally:
            del os.environ[MULTIPROCESS_DIR]


def _open_when_reachable(stop: threading.Event) -> tuple[Store, Timeline] | None:
    """The store, once its database answers: a worker started while it is away (by a
    supervisor, after a crash) waits for it rather than exit. None if stopped first."""
    settings = Settings()
    said = 0.0
    while not stop.is_set():
        try:
            store = parse_url(settings.database_url, pool_size=settings.pool_size)
            return store, open_timeline(store)
        except StoreUnreachable as e:
            if time.monotonic() - said > 10:
                typer.echo(f"waiting for the database: {e}", err=True)
                said = time.monotonic()
            stop.wait(1.0)
        except StoreError as e:
            _fail(str(e))
    return None


def _warn_capacity(store: Store, wanted: int) -> None:
    """Say so when PostgreSQL cannot give what the processes may take (TIMELINE_POOL_SIZE
    connections each, at most)."""
    if store.kind != "postgres":
        return
    try:
        warning = capacity_warning(store, wanted)
    except psycopg.Error as e:
        warning = f"could not count PostgreSQL's free connections: {e}"
    if warning is not None:
        typer.secho(f"warning: {warning}", err=True, fg="yellow")


def _when(value: str | None, field: str, *, end: bool = False) -> datetime | None:
    if value is None:
        return None
    try:
        when = parse_when(value, field)
    except TimelineError as e:
        _fail(f"--{field.replace('_', '-')}: {e.message}")
        raise
    return when.end if end else when.start


def _question(
    as_of: str | None,
    as_of_position: int | None,
    since: str | None,
    until: str | None,
    topic: str | None,
    actor: str | None,
    kind: str | None,
) -> tuple[Timeline, TimelineView, TimelineQuery]:
    if as_of is not None and as_of_position is not None:
        _fail("give --as-of or --as-of-position, not both")
    instant = _when(as_of, "as_of")
    if as_of is not None and len(as_of) < 16:
        _fail("--as-of takes an instant with a UTC offset, like 2025-02-20T00:00:00Z")
    _, timeline = _open()
    view = replay(timeline)
    at = position_for(view, instant, as_of_position)
    named: tuple[tuple[Entity, str | None], ...] = (("topic", topic), ("actor", actor))
    for what, slug in named:
        if slug is not None and not view.knows(what, slug, at):
            _fail(f"--{what}: no {what} {slug!r}" + ("" if at is None else " at that point"))
    query = TimelineQuery(
        topic=topic,
        actor=actor,
        kind=kind,
        since=_when(since, "since"),
        until=_when(until, "until", end=True),
        at=at,
    )
    return timeline, view, query


@app.command(name="replay")
def replay_command(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="the file to write; - for standard output")
    ],
    model: Annotated[ReplayModel, typer.Option(help="the question to answer")] = "timeline",
    as_of: Annotated[str | None, typer.Option(help="an instant: as the service knew it")] = None,
    as_of_position: Annotated[
        int | None, typer.Option(min=0, help="a position of the log: as known there")
    ] = None,
    since: Annotated[str | None, typer.Option(help="occurred since (any precision)")] = None,
    until: Annotated[str | None, typer.Option(help="occurred until (any precision)")] = None,
    topic: Annotated[str | None, typer.Option(help="a topic, with its descendants")] = None,
    actor: Annotated[
        str | None, typer.Option(help="records naming this actor (speakers too)")
    ] = None,
    kind: Annotated[Kind | None, typer.Option(help="only records of this kind")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="how to write the answer")] = "json",
) -> None:
    """Rebuild the timeline's view offline from the event log and answer one question, as
    the service would have answered it then."""
    if model == "who-said-what" and topic is None:
        _fail("who-said-what needs --topic")
    timeline, view, query = _question(as_of, as_of_position, since, until, topic, actor, kind)
    answer: Any
    if model == "timeline":
        answer = all_items(view, query)
    else:
        assert topic is not None
        answer = who_said(view, topic, query)
        if answer is None:
            _fail(f"no topic {topic!r} at that point")
    if str(output) == "-":
        sys.stdout.write(write_answer(answer, fmt))
    else:
        output.write_text(write_answer(answer, fmt))
    typer.echo(f"{output}: as of position {query.at if query.at is not None else 'now'}", err=True)
    timeline.close()


@app.command()
def export(
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="the file to write, or - for stdout (--format events: gzip if it ends in .gz)",
        ),
    ],
    fmt: Annotated[
        Export,
        typer.Option(
            "--format", help="events: the whole log with its history, for `timeline restore`"
        ),
    ] = "ndjson",
    as_of: Annotated[str | None, typer.Option(help="an instant: as the service knew it")] = None,
    as_of_position: Annotated[
        int | None, typer.Option(min=0, help="a position of the log: as known there")
    ] = None,
) -> None:
    """Export the timeline: backfill NDJSON (re-imports with the same ids), CSV, TimelineJS
    JSON for the Knight Lab viewer, or every event of the log with its history (a backup)."""
    if fmt == "events":
        if as_of is not None or as_of_position is not None:
            _fail("--format events writes the whole log: it takes no --as-of or --as-of-position")
        _export_events(output)
        return
    timeline, view, query = _question(as_of, as_of_position, None, None, None, None, None)
    if fmt == "ndjson":
        lines = backfill_lines(view, query.at)
        text = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines)
    elif fmt == "csv":
        text = items_csv(all_items(view, query))
    else:
        document = timelinejs(all_items(view, query), "Geopolitical Timeline")
        text = json.dumps(document, ensure_ascii=False, indent=1)
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text)
        typer.echo(f"wrote {output}", err=True)
    timeline.close()


def _export_events(output: str) -> None:
    _, timeline = _open()
    with contextlib.ExitStack() as files:
        out: IO[bytes]
        if output == "-":
            out = sys.stdout.buffer
        elif output.endswith(".gz"):
            out = cast(IO[bytes], files.enter_context(gzip.open(output, "wb", compresslevel=6)))
        else:
            out = files.enter_context(open(output, "wb"))
        summary = export_events(timeline, out)
        out.flush()
    typer.echo(
        f"{'stdout' if output == '-' else output}: {summary.count} events, "
        f"up to position {summary.head}",
        err=True,
    )
    timeline.close()


@app.command()
def restore(
    file: Annotated[
        str,
        typer.Argument(
            help="a file of `timeline export --format events` (gzip too), or - for stdin"
        ),
    ],
) -> None:
    """Load a backup of the log into an empty store, with the same positions, ids, versions
    and recorded times, then build the view: every as_of answer is as before."""
    if file != "-" and not Path(file).is_file():
        _fail(f"no file {file}")
    store, timeline = _open()
    if store.kind == "memory":
        _fail("memory:// lasts only as long as one process: restore into SQLite or PostgreSQL")
    with open_backup(file) as lines:
        try:
            summary = restore_events(timeline, read_backup(lines))
        except BackupRefused as e:
            _fail(f"{file}: {e}; nothing was restored")
    typer.echo(f"restored {summary.count} events, up to position {summary.head}", err=True)
    models = open_read_models(store, timeline)
    lease = models.make_lease()
    if not lease.acquire():
        typer.echo("timeline: a worker is running it; it reads the restored log now", err=True)
    else:
        try:
            models.rebuild()
        finally:
            lease.release()
        typer.echo(f"timeline: built, at position {models.view().position()}", err=True)
    models.close()
    timeline.close()


# The options of `extract` by the fields of the source they give.
_OPTIONS = {"url": "source-url", "publisher": "publisher", "title": "title"}


@app.command()
def extract(
    files: Annotated[
        list[str], typer.Argument(help="articles: plain text or HTML (UTF-8), or - for stdin")
    ],
    published_at: Annotated[
        str, typer.Option(help="when the page was published: an instant with a UTC offset")
    ],
    source_url: Annotated[
        str | None, typer.Option(help="the page's URL (default: a URN of the text's digest)")
    ] = None,
    publisher: Annotated[str | None, typer.Option(help="who published it")] = None,
    title: Annotated[str | None, typer.Option(help="the page's title")] = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="the NDJSON file to write, or - for stdout")
    ] = "-",
    gold: Annotated[
        Path | None,
        typer.Option("--eval", help="a gold NDJSON file: print how well the drafts match it"),
    ] = None,
) -> None:
    """Draft the statements an article reports (who said what, when) as backfill lines
    with what found them; nothing is stored. Speakers are the store's actors."""
    try:
        at = published(published_at)
    except TimelineError as e:
        _fail(f"--published-at: {e.message}")
    if gold is not None and len(files) != 1:
        _fail("--eval scores the drafts of one article: give one file")
    texts = [(name, _article(name)) for name in files]
    store, timeline = _open()
    models = open_read_models(store, timeline)
    lease = models.make_lease()
    if lease.acquire():  # else a worker keeps the view current
        try:
            models.catch_up()
        finally:
            lease.release()
    lines, found = [], []
    try:
        for name, text in texts:
            try:
                drafts = draft(models.view(), text, source(text, at, source_url, publisher, title))
            except TextRefused as e:
                _fail(f"{name}: {e}")
            except TimelineError as e:
                _fail(f"--{_OPTIONS.get(e.field or '', 'source-url')}: {e.message}")
            found.append(drafts)
            lines += [json.dumps(line, ensure_ascii=False) + "\n" for line in drafts.lines]
    finally:
        models.close()
        timeline.close()
    if output == "-":
        sys.stdout.write("".join(lines))
    else:
        Path(output).write_text("".join(lines), encoding="utf-8")
    typer.echo(f"{len(lines)} drafts", err=True)
    if gold is not None:
        for line in score(found[0].text, found[0].lines, _gold(gold)).lines():
            typer.echo(line, err=True)


def _article(name: str) -> str:
    """A file's text (or stdin's), refused before it is read when far too large."""
    limit = MAX_CHARS * 4  # bytes: four to a character at most in UTF-8
    if name != "-":
        path = Path(name)
        if not path.is_file():
            _fail(f"no file {name}")
        if path.stat().st_size > limit:
            _fail(f"{name}: the text is longer than {MAX_CHARS:,} characters")
    with open(name, "rb") if name != "-" else contextlib.nullcontext(sys.stdin.buffer) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        _fail(f"{name}: the text is longer than {MAX_CHARS:,} characters")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        _fail(f"{name}: this is not UTF-8 text (binary data?)")


def _gold(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        _fail(f"no file {path}")
    lines = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as e:
            _fail(f"{path}:{number}: not JSON: {e.msg}")
        if not isinstance(line, dict):
            _fail(f"{path}:{number}: each line must be a JSON object")
        lines.append(line)
    return lines


def _print_report(report: Report) -> None:
    typer.echo(
        f"accepted {report.accepted}, duplicates {report.duplicates}, "
        f"rejected {len(report.rejected)}, positions {report.first_position}-"
        f"{report.last_position}, {report.elapsed:.2f}s"
    )
    for r in report.rejected:
        typer.echo(f"  {r.source}:{r.line} {r.key or ''} {r.error}", err=True)


def main() -> None:
    tune_gc()
    app(prog_name="timeline")


if __name__ == "__main__":
    main()
