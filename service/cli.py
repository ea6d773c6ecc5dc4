"""The `timeline` command line."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from domain.application import Author
from projections.models import PROJECTIONS
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
