"""The `timeline` command line."""

from __future__ import annotations

import logging
import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from domain.application import Author
from projections.models import PROJECTIONS
from service.keys import KeyProblem, KeyStore
from service.loader import Report, load_files, seed_files
from service.readmodels import open_read_models
from service.settings import Settings
from service.store import StoreError, open_timeline, parse_url

app = typer.Typer(
    help="Geopolitical Timeline: an event-sourced timeline of world politics.",
    no_args_is_help=True,
    add_completion=False,
)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(2)


@app.command()
def seed(writer: Annotated[str, typer.Option(help="recorded as the writer")] = "seed") -> None:
    """Load the bundled seed data (idempotent: a second load adds nothing)."""
    settings = Settings()
    try:
        store = parse_url(settings.database_url)
        timeline = open_timeline(store)
    except StoreError as e:
        _fail(str(e))
        return
    _print_report(load_files(timeline, seed_files(), Author(writer)))


@app.command()
def backfill(
    files: Annotated[
        list[Path], typer.Argument(help="NDJSON files (SPEC §7)", exists=True, dir_okay=False)
    ],
    writer: Annotated[str, typer.Option(help="recorded as the writer")] = "backfill",
) -> None:
    """Import NDJSON files into the store and report every line."""
    settings = Settings()
    try:
        timeline = open_timeline(parse_url(settings.database_url))
    except StoreError as e:
        _fail(str(e))
        return
    report = load_files(timeline, files, Author(writer))
    _print_report(report)
    if report.rejected:
        raise typer.Exit(1)


@app.command()
def project(
    batch_size: Annotated[int, typer.Option(min=1, max=100_000)] = 500,
) -> None:
    """Run the projection workers until stopped (a second worker waits as hot standby)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings()
    try:
        store = parse_url(settings.database_url)
        timeline = open_timeline(store)
    except StoreError as e:
        _fail(str(e))
        return
    models = open_read_models(store, timeline)
    models.batch_size = batch_size
    signal.signal(signal.SIGTERM, lambda *_: models.stop())
    typer.echo(f"projecting {', '.join(PROJECTIONS)} from {store.kind}", err=True)
    try:
        models.run_forever()
    except KeyboardInterrupt:
        models.stop()


@app.command()
def rebuild(
    name: Annotated[str | None, typer.Argument(help="one projection; all when omitted")] = None,
    beside: Annotated[bool, typer.Option(help="build next to the live one, then switch")] = False,
) -> None:
    """Rebuild read models from position 0."""
    settings = Settings()
    names = [name] if name else list(PROJECTIONS)
    for n in names:
        if n not in PROJECTIONS:
            _fail(f"no projection {n!r}; choose from {', '.join(PROJECTIONS)}")
    try:
        store = parse_url(settings.database_url)
        timeline = open_timeline(store)
    except StoreError as e:
        _fail(str(e))
        return
    models = open_read_models(store, timeline)
    for n in names:
        if beside:
            applied = models.rebuild_beside(n)
        else:
            lease = models.make_lease(n)
            if not lease.acquire():
                _fail(f"a worker is running {n}: stop it, or rebuild with --beside")
            try:
                applied = models.rebuild(n)
            finally:
                lease.release()
        typer.echo(f"{n}: rebuilt from {applied} events, at position {models.view(n).position()}")


keys = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
app.add_typer(keys, name="keys")


def _key_store() -> KeyStore:
    settings = Settings()
    try:
        store = parse_url(settings.database_url)
        timeline = open_timeline(store)
    except StoreError as e:
        _fail(str(e))
        raise
    return KeyStore(open_read_models(store, timeline).view("timeline"))


@keys.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="recorded as the writer of what the key writes")],
    scope: Annotated[str, typer.Option(help="read < write < admin")] = "write",
) -> None:
    """Make a key and print it once; only its hash is stored."""
    try:
        secret = _key_store().create(name, scope)
    except KeyProblem as e:
        _fail(str(e))
        return
    typer.echo(secret)


@keys.command("list")
def keys_list() -> None:
    """Names, scopes and dates of the keys (never the keys)."""
    for key in _key_store().list():
        state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
        typer.echo(f"{key.name}\t{key.scope}\tcreated {key.created_at}\t{state}")


@keys.command("revoke")
def keys_revoke(name: str) -> None:
    """Revoke a key by name: it stops working at once."""
    try:
        _key_store().revoke(name)
    except KeyProblem as e:
        _fail(str(e))
    typer.echo(f"revoked {name}")


@app.command()
def demo(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
) -> None:
    """Run the service on the embedded store with the seed data loaded."""
    import uvicorn

    from service.app import build_services, create_app

    settings = Settings()
    if not os.environ.get("TIMELINE_DATABASE_URL"):
        typer.echo(f"store: {settings.database_url}", err=True)
    try:
        services = build_services(settings)
    except StoreError as e:
        _fail(str(e))
        return
    report = load_files(services.timeline, seed_files(), Author("seed"))
    services.models.catch_up()  # answer with the seed from the first request
    secret = services.keys.create(f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}", "write")
    base = f"http://{host}:{port}"
    typer.echo(
        f"seed: {report.accepted} new, {report.duplicates} already stored\n"
        f"who said what about negotiations: {base}/topics/negotiations/who-said-what\n"
        f"the timeline since the 2014 annexation: {base}/timeline?since=2014-03-01\n"
        f"API docs: {base}/schema\n"
        f"a write key (shown once): {secret}"
    )
    uvicorn.run(
        create_app(settings, built=services),
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
) -> None:
    """Serve the API for production (projections run in `timeline project`)."""
    import uvicorn

    uvicorn.run(
        "service.asgi:app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        timeout_graceful_shutdown=30,
        access_log=False,
    )


def _print_report(report: Report) -> None:
    typer.echo(
        f"accepted {report.accepted}, duplicates {report.duplicates}, "
        f"rejected {len(report.rejected)}, positions {report.first_position}-"
        f"{report.last_position}, {report.elapsed:.2f}s"
    )
    for r in report.rejected:
        typer.echo(f"  {r.source}:{r.line} {r.key or ''} {r.error}", err=True)


def main() -> None:
    app(prog_name="timeline")


if __name__ == "__main__":
    main()
